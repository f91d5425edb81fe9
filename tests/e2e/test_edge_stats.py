"""The master's numbers where operators look: statsd lines to a UDP listener of
the test, the readiness and liveness probes on the stats server, and a graceful
stop (SIGTERM) under load that loses no request that reached the listener."""

from __future__ import annotations

import signal
import socket
import threading
import time

from support import free_port, http_get, raw_request, read_until_closed, wait_for


def _probe(port: int, path: str) -> int:
    status, _, _ = http_get(port, path, timeout=5)
    return status


def test_statsd_lines_reach_a_udp_listener(procmaster, tmp_path):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.5)
    port = free_port()
    try:
        procmaster(
            "--http-socket", f"127.0.0.1:{port}", "--module", "testapp", "--processes", "2",
            "--master", "--stats-push", f"statsd:127.0.0.1:{udp.getsockname()[1]},site",
            "--stats-pusher-default-freq", "1",
            wait_port=port,
        )  # fmt: skip
        for _ in range(3):
            raw_request(port, b"GET /echo HTTP/1.0\r\n\r\n")
        seen: dict[str, list[str]] = {}

        def counted() -> bool:
            try:
                name, _, value = udp.recv(4096).decode().partition(":")
            except TimeoutError:
                return False
            seen.setdefault(name, []).append(value)
            # the wait_port probe and our 3 requests, summed over the pushes' increments
            total = sum(int(v.split("|")[0]) for v in seen.get("site.worker.0.requests", []))
            return total >= 4 and "site.core.idle_workers" in seen

        wait_for(counted, 20, interval=0, what=f"statsd lines; got {sorted(seen)}")
        assert all(v.endswith("|c") for v in seen["site.worker.0.requests"])
        assert all(v.endswith("|g") for v in seen["site.core.idle_workers"])
        assert {"site.worker.1.requests", "site.worker.2.requests"} <= set(seen)
    finally:
        udp.close()


def test_ready_until_sigterm_and_no_request_lost_in_the_drain(procmaster):
    port, stats = free_port(), free_port()
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", "--module", "testapp", "--processes", "2",
        "--master", "--stats", f"127.0.0.1:{stats}", "--stats-http",
        "--listen", "64", "--worker-reload-mercy", "30",
        wait_port=port,
    )  # fmt: skip
    wait_for(lambda: _probe(stats, "/ready") == 200, 15, what="/ready = 200")
    assert _probe(stats, "/live") == 200

    outcomes: list[str] = []
    give_up = time.monotonic() + 120  # (only if the server never exits)

    def client() -> None:
        # until the closed port refuses it: a client preempted between its last
        # answer and the exit still ends on the closed port, counted below
        while time.monotonic() < give_up:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
            except ConnectionRefusedError:
                outcomes.append("refused")  # after the listener closed: not lost
                return
            try:
                s.sendall(b"GET /sleep?s=0.05 HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
                outcomes.append("ok" if data.startswith(b"HTTP/1.0 200") else f"bad {data[:60]!r}")
            except OSError as exc:  # connected, then reset or cut: a lost request
                outcomes.append(f"lost {exc!r}")
            finally:
                s.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: outcomes.count("ok") >= 20, 30, what="requests under load")
    # a long request keeps the master in its graceful stop while we ask the probes
    slow = threading.Thread(
        target=lambda: outcomes.append(
            "ok"
            if raw_request(port, b"GET /sleep?s=2 HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200")
            else "slow request lost"
        ),
        daemon=True,
    )
    slow.start()
    time.sleep(0.3)  # let it reach a worker (asserted below: it must succeed)
    before = len(outcomes)
    server.signal(signal.SIGTERM)
    # not ready from the first moment of the graceful stop; still live
    assert _probe(stats, "/ready") == 503
    assert _probe(stats, "/live") == 200
    assert server.wait_exit(60) == 0
    for t in [*threads, slow]:
        t.join(30)
    lost = [o for o in outcomes if o not in ("ok", "refused")]
    assert lost == [], f"{len(lost)} lost of {len(outcomes)}: {lost[:5]}"
    assert outcomes.count("refused") == len(threads)  # every client ended at a closed port
    assert len(outcomes) > before


def test_a_full_listen_queue_is_served_by_a_stopping_worker(procmaster):
    """250 clients wait in the listen queue while the only worker is busy; SIGTERM
    arrives: the worker takes every one of them (several accept batches of 64)
    before it closes the port, and each gets its answer."""
    port = free_port()
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", "--module", "testapp", "--processes", "1",
        "--master", "--listen", "400", "--worker-reload-mercy", "60",
        wait_port=port,
    )  # fmt: skip
    busy = threading.Thread(target=raw_request, args=(port, b"GET /sleep?s=3 HTTP/1.0\r\n\r\n"))
    busy.start()
    server.wait_log("sleeping 3s")
    queued = []
    for _ in range(250):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(b"GET /echo HTTP/1.0\r\n\r\n")
        queued.append(s)
    server.signal(signal.SIGTERM)
    answers = []
    for s in queued:
        answers.append(read_until_closed(s)[:12])
        s.close()
    busy.join(60)
    assert server.wait_exit(60) == 0
    assert answers.count(b"HTTP/1.0 200") == 250, sorted(set(answers))
