"""Slow and hostile clients, end to end (issue 10): a real procmaster, real sockets.

Each test holds many bad connections open against a small site (1 or 2 workers)
and checks that normal requests are still answered, each within a second; then
the limits (431, 413, EMFILE, a log that cannot grow, 1 GiB uploads) and the
faults (client gone, worker killed mid-response). No blind sleeps: every wait
is for a condition, with a deadline.
"""

from __future__ import annotations

import http.client
import os
import resource
import selectors
import signal
import socket
import subprocess
import threading
import time

import psutil
import pytest
from support import Background, free_port, http_get, raise_nofile, signal_pending, wait_for

MiB = 1 << 20


def start(
    procmaster, *extra, processes: int = 2, env: dict | None = None, nofile: int | None = None
):
    port = free_port()
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "hardapp",
        "--processes",
        str(processes),
        *extra,
        wait_port=port,
        env=env,
        nofile=nofile,
    )
    wait_for(lambda: len(server.worker_pids()) == processes, 10, what="workers")
    return server, port


def timed_get(port: int, path: str = "/") -> float:
    """One normal request on a fresh connection; returns its duration."""
    t0 = time.monotonic()
    status, _, body = http_get(port, path, timeout=30)
    took = time.monotonic() - t0
    assert status == 200, (status, body[:100])
    return took


# A normal request's bound while bad clients hold connections. A worker held by a
# slow client would make it wait for the client's socket-timeout (60 s in the
# tests that make this claim); 5 s is far from that and far above what a loaded
# 2-core machine adds (1 s was exceeded there: a scheduling delay, not a hold).
NORMAL_BOUND = 5.0


def normal_requests(port: int, n: int = 20) -> list[float]:
    times = [timed_get(port) for _ in range(n)]
    assert max(times) < NORMAL_BOUND, times
    return times


def workers_rss(server) -> int:
    return sum(psutil.Process(pid).memory_info().rss for pid in server.worker_pids())


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Read (and drop) until the server closes the connection, within ``timeout``."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


# -- slow clients ----------------------------------------------------------------------


def test_40_trickling_clients_do_not_slow_normal_requests(procmaster):
    server, port = start(procmaster, "--socket-timeout", "60")
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    stop = threading.Event()
    sent = [0]

    def trickle():
        pos = 0
        while not stop.is_set() and pos < len(request) - 1:
            for s in socks:
                s.send(request[pos : pos + 1])
            pos += 1
            sent[0] = pos
            stop.wait(0.02)

    t = Background(trickle)  # a trickler the server cut off fails the test at join
    t.start()
    try:
        wait_for(lambda: sent[0] > 20, 5, what="trickling under way")
        normal_requests(port, 30)
        assert sent[0] < len(request) - 1  # they were still trickling all along
    finally:
        stop.set()
        t.join(5)
        for s in socks:
            s.close()


def test_header_deadline_closes_a_trickler_and_counts_it(procmaster):
    server, port = start(procmaster, "--socket-timeout", "1", processes=1)
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    closed = False
    try:
        # one byte every 0.1 s: always progressing, never complete
        for ch in b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100:
            try:
                s.send(bytes([ch]))
            except OSError:
                closed = True
                break
            s.settimeout(0.1)
            try:
                if s.recv(100) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            except OSError:
                closed = True
                break
    finally:
        s.close()
    assert closed and time.monotonic() - t0 < 4
    server.signal(signal.SIGTERM)
    server.wait_exit()
    assert "connections closed by timeouts: header 1" in server.log


def test_keepalive_idle_timeout_and_stalled_write_are_counted(procmaster):
    server, port = start(procmaster, "--socket-timeout", "1", "--http-keepalive", "2", processes=1)
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    idle.request("GET", "/")
    assert idle.getresponse().read() == b"Hello, World!"
    t0 = time.monotonic()
    assert closed_by_server(idle.sock, 6)
    assert 1.5 < time.monotonic() - t0 < 5
    idle.close()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", port))
    stalled.sendall(b"GET /big?mb=5 HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(
        lambda: server.log.count("GET /big") or "during response" in server.log,
        10,
        what="the stalled write cut",
    )
    stalled.close()
    server.signal(signal.SIGTERM)
    server.wait_exit()
    assert "connections closed by timeouts: header 0, read 0, write 1, keepalive 1" in server.log


@pytest.mark.parametrize(
    "app", [("--module", "hardapp"), ("--asgi", "asgiapp:app")], ids=["wsgi", "asgi"]
)
def test_a_connection_that_never_sends_counts_as_a_header_timeout(procmaster, app):
    """A new connection that sends nothing waits for its head: closed at the header
    deadline (socket-timeout) and counted as ``header``; an idle connection after
    an answered request is counted as ``keepalive``."""
    port = free_port()
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *app, "--processes", "1",
        "--socket-timeout", "1", "--http-keepalive", "2", wait_port=port,
    )  # fmt: skip
    silent = socket.create_connection(("127.0.0.1", port))
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    idle.request("GET", "/")
    assert idle.getresponse().status == 200
    assert closed_by_server(silent, 6)
    assert closed_by_server(idle.sock, 6)
    silent.close()
    idle.close()
    server.signal(signal.SIGTERM)
    server.wait_exit()
    assert "connections closed by timeouts: header 1, read 0, write 0, keepalive 1" in server.log


def test_1000_idle_keepalive_connections_cost_memory_not_throughput(procmaster):
    raise_nofile(4096)
    server, port = start(procmaster, "--max-fd", "4096")
    for pid in server.worker_pids():
        assert psutil.Process(pid).rlimit(resource.RLIMIT_NOFILE)[0] >= 4096
    normal_requests(port, 5)
    before = workers_rss(server)
    socks = []
    try:
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        sel = selectors.DefaultSelector()
        pending = {}
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            pending[s] = b""
        deadline = time.monotonic() + 20
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(1):
                s = key.fileobj
                pending[s] += s.recv(4096)
                if pending[s].endswith(b"Hello, World!"):
                    del pending[s]
                    sel.unregister(s)
        assert not pending, f"{len(pending)} idle connections got no first answer"
        after = workers_rss(server)
        per_conn = (after - before) / 1000
        print(f"memory per idle keep-alive connection: {per_conn:.0f} bytes")
        assert per_conn < 16 * 1024
        normal_requests(port, 30)
        for s in socks[:50]:  # and the idle ones are still served
            s.setblocking(True)
            s.settimeout(5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while not data.endswith(b"Hello, World!"):
                chunk = s.recv(4096)
                assert chunk, data
                data += chunk
    finally:
        for s in socks:
            s.close()


def test_20_clients_that_never_read_5mib_hold_a_bounded_buffer(procmaster):
    server, port = start(procmaster, "--socket-timeout", "60")
    normal_requests(port, 5)
    before = workers_rss(server)
    socks = []
    try:
        for _ in range(20):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /big?mb=5 HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        wait_for(
            lambda: server.log.count("GET /big") == 0 and _busy_sends(server) >= 20,
            10,
            what="20 responses waiting on their clients",
        )
        normal_requests(port, 30)
        growth = workers_rss(server) - before
        print(f"worker RSS growth with 20 stalled 5 MiB responses: {growth / MiB:.1f} MiB")
        # at most HIGH_WATER plus one app chunk (1 MiB) queued per connection
        assert growth < 20 * 1.5 * MiB
    finally:
        for s in socks:
            s.close()


def _busy_sends(server) -> int:
    """Connections of the workers with bytes queued in the kernel to send."""
    n = 0
    for pid in server.worker_pids():
        for c in psutil.Process(pid).net_connections("tcp"):
            if c.status == psutil.CONN_ESTABLISHED and c.raddr:
                n += 1
    return n


# -- limits ----------------------------------------------------------------------------


def test_431_for_big_header_block_and_too_many_headers_seen_by_a_client(procmaster):
    server, port = start(procmaster, processes=1)
    status, _, _ = http_get(port, "/", headers={"X-Big": "a" * 5000})
    assert status == 431
    status, _, _ = http_get(port, "/", headers={f"X-H{i}": "v" for i in range(150)})
    assert status == 431
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/" + "a" * 5000)
    assert conn.getresponse().status == 414  # a too-long request target alone: 414
    conn.close()
    normal_requests(port, 3)


def test_413_then_lingering_close_seen_by_curl(procmaster, tmp_path):
    server, port = start(procmaster, "--limit-post", "65536", processes=1)
    blob = tmp_path / "blob"
    blob.write_bytes(b"z" * (5 * MiB))
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                *extra,
                "--data-binary",
                f"@{blob}",
                f"http://127.0.0.1:{port}/echo",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.stdout == "413", (extra, out.stderr)
        assert "reset" not in out.stderr.lower()


def _upload(port: int, path: str, size: int, rss_of, peak: list) -> bytes:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
    block = b"u" * MiB
    for i in range(size // MiB):
        s.sendall(block)
        if i % 64 == 0:
            peak[0] = max(peak[0], rss_of())
    s.settimeout(60)
    data = b""
    while not data.endswith(b"\r\n\r\n") or b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += s.recv(65536)
            s.close()
            peak[0] = max(peak[0], rss_of())
            return body
    s.close()
    return data


@pytest.mark.slow
@pytest.mark.parametrize(
    "path,answer", [("/ignore", b"ignored"), ("/count", str(1 << 30).encode())]
)
def test_1gib_upload_keeps_worker_rss_within_50mb(procmaster, path, answer):
    server, port = start(procmaster, processes=1)
    normal_requests(port, 3)
    worker = psutil.Process(server.worker_pids()[0])
    before = worker.memory_info().rss
    peak = [before]
    body = _upload(port, path, 1 << 30, lambda: worker.memory_info().rss, peak)
    assert body == answer
    growth = peak[0] - before
    print(f"worker RSS growth during a 1 GiB upload to {path}: {growth / MiB:.1f} MiB")
    assert growth < 50 * MiB
    normal_requests(port, 3)


def test_out_of_descriptors_pauses_accept_logs_once_and_recovers(procmaster):
    server, port = start(procmaster, "--listen", "300", processes=1, nofile=64)
    worker = psutil.Process(server.worker_pids()[0])
    assert worker.rlimit(resource.RLIMIT_NOFILE)[0] == 64
    socks = []
    try:
        for _ in range(200):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        server.wait_log("out of file descriptors")
        cpu0 = sum(worker.cpu_times()[:2])
        t0 = time.monotonic()
        # the worker is paused: it must not burn CPU while the connections stay
        wait_for(lambda: time.monotonic() - t0 > 1.0, 5, what="a second to pass")
        assert sum(worker.cpu_times()[:2]) - cpu0 < 0.2
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: _serves(port), 15, what="serving again")
    normal_requests(port, 10)
    assert server.log.count("out of file descriptors") == 1


def test_out_of_descriptors_held_by_the_app_resumes_by_itself(procmaster):
    # the worker has no connection whose close would free a descriptor: it must
    # retry accepting on its own (once a second), not stay paused forever
    server, port = start(procmaster, processes=1, nofile=64)
    assert http_get(port, "/hog?s=1.5", headers={"Connection": "close"})[2] == b"hogging"
    server.wait_log("hogged")
    t0 = time.monotonic()
    assert http_get(port, "/", timeout=10)[0] == 200  # queued until the app let go
    assert time.monotonic() - t0 < 5
    normal_requests(port, 5)


def _serves(port: int) -> bool:
    try:
        return http_get(port, "/", timeout=1)[0] == 200
    except OSError:
        return False


def test_log_file_that_cannot_grow_keeps_serving_and_says_so_once(procmaster, tmp_path):
    logfile = tmp_path / "site.log"
    server, port = start(procmaster, "--logto", str(logfile), processes=2)
    normal_requests(port, 3)
    limit = logfile.stat().st_size + 2000
    # SIGXFSZ: Python starts with it ignored, so a write past the limit gets EFBIG
    for pid in [server.pid, *server.worker_pids()]:
        psutil.Process(pid).rlimit(resource.RLIMIT_FSIZE, (limit, limit))
    for _ in range(100):
        assert http_get(port, "/", timeout=5)[0] == 200
    assert logfile.stat().st_size <= limit

    def notices(pid: int) -> int:
        return sum(1 for ln in server.log.splitlines() if f"pid {pid}): cannot write the log" in ln)

    server.signal(signal.SIGUSR1)  # the master writes its statistics to the log
    wait_for(lambda: notices(server.pid) >= 1, 30, what="the master's notice")
    # once more: the statistics fail to be written again, and nothing more is said.
    # To know the master has acted on this SIGUSR1, it is followed (once taken) by a
    # SIGTTOU, whose effect is visible: one worker fewer.
    for _ in range(50):
        assert http_get(port, "/", timeout=5)[0] == 200
    server.signal(signal.SIGUSR1)
    wait_for(lambda: not signal_pending(server.pid, signal.SIGUSR1), 30, what="SIGUSR1 taken")
    workers = server.worker_pids()
    server.signal(signal.SIGTTOU)
    wait_for(lambda: len(server.worker_pids()) == 1, 30, what="one worker fewer")
    assert notices(server.pid) == 1  # the master said it once, not once per failed write
    # the workers' request lines overflowed the limit too: each said it at most once
    workers_said = [notices(pid) for pid in workers]
    assert max(workers_said) == 1 and sum(workers_said) >= 1, workers_said


# -- faults ----------------------------------------------------------------------------


def test_client_gone_mid_response_closes_iterable_one_log_line(procmaster, tmp_path):
    server, port = start(procmaster, processes=1)
    marker = tmp_path / "closed.txt"
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /close-log?n=400&path={marker} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    s.recv(1000)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # a reset: the client is gone
    wait_for(lambda: marker.exists() and "closed" in marker.read_text(), 10, what="close()")
    normal_requests(port, 3)
    lines = [ln for ln in server.log.splitlines() if "during response to GET /close-log" in ln]
    assert len(lines) == 1, lines
    assert marker.read_text() == "closed\n"


def test_worker_killed_mid_response_closes_that_connection_at_once(procmaster):
    server, port = start(procmaster, processes=2)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /sleep?s=60 HTTP/1.1\r\nHost: x\r\n\r\n")
    server.wait_log("sleeping 60s")
    busy = [p for p in server.worker_pids() if psutil.Process(p).cpu_times() is not None]
    # the sleeping worker is the one whose connection to us is established
    mine = s.getsockname()
    victim = next(
        pid
        for pid in busy
        for c in psutil.Process(pid).net_connections("tcp")
        if c.raddr and (c.raddr.ip, c.raddr.port) == mine
    )
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    assert closed_by_server(s, 2)
    assert time.monotonic() - t0 < 1.0
    s.close()
    normal_requests(port, 10)
