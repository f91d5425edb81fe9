"""Worker guards, end to end: harakiri, max-requests, reload-on-rss, crash-loop
back-off, threads, cheaper, uid/gid. Real procmaster processes, killed by PID."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import threading
import time

import psutil
import pytest
from support import Load, free_port, http_get, wait_for

APP = "guards_app:application"


def start(procmaster, *options, wait=True, **kwargs):
    port = free_port()
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        APP,
        *options,
        wait_port=port if wait else None,
        **kwargs,
    )
    return server, port


def get_pid(port: int) -> int:
    status, _, body = http_get(port, "/pid")
    assert status == 200
    return int(body)


def stuck_request(port: int, path: str) -> tuple[str, float]:
    """Send a request that should be ended by harakiri: what the client saw, and when."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        outcome = f"status {resp.status}"
    except (http.client.RemoteDisconnected, ConnectionResetError):
        outcome = "closed"
    finally:
        conn.close()
    return outcome, time.monotonic() - t0


def test_harakiri_kills_the_stuck_worker_logs_it_and_serving_goes_on(procmaster):
    server, port = start(procmaster, "--processes", "2", "--harakiri", "2", "--harakiri-verbose")
    outcome, took = stuck_request(port, "/sleep?s=30")
    assert outcome == "closed"
    assert 2.0 <= took <= 4.0, took
    log = server.wait_log("HARAKIRI")
    assert re.search(r"HARAKIRI: worker \d \(pid \d+\) request GET /sleep\?s=30 ran 2\.\d+s", log)
    server.wait_log("in stuck_handler")  # harakiri-verbose: the stuck frame
    server.wait_log("killed by signal 9 (SIGKILL)")
    assert http_get(port, "/")[2] == b"ok"
    wait_for(lambda: len(server.worker_pids()) == 2, what="the replacement worker")
    ran = [float(x) for x in re.findall(r"HARAKIRI: .* ran ([\d.]+)s", server.log)]
    print(f"harakiri detection: request ran {ran}s under harakiri = 2")


def test_harakiri_per_thread(procmaster):
    server, port = start(procmaster, "--processes", "1", "--threads", "2", "--harakiri", "1")
    pid = get_pid(port)
    outcome, took = stuck_request(port, "/sleep?s=30")
    assert outcome == "closed" and took < 3.0, (outcome, took)
    log = server.wait_log("HARAKIRI")
    assert re.search(rf"worker 1 \(pid {pid}\) thread [01] request GET /sleep\?s=30", log)
    wait_for(lambda: server.worker_pids() and pid not in server.worker_pids(), what="respawn")
    assert http_get(port, "/")[2] == b"ok"


def test_max_requests_replaces_workers_without_dropping_a_request(procmaster):
    server, port = start(procmaster, "--processes", "4", "--max-requests", "20")
    first = set(server.worker_pids())
    with Load(port, "/pid") as load:
        load.more(500)
    assert load.failures == []
    served_by = {int(b) for b in load.bodies}
    assert len(served_by - first) >= 4, (first, served_by)
    assert "max-requests: served 20 requests" in server.log
    assert "stopped to be replaced; respawning" in server.log
    assert "keeps dying" not in server.log


def test_max_requests_delta(procmaster):
    server, port = start(
        procmaster, "--processes", "1", "--max-requests", "3", "--max-requests-delta", "2"
    )
    pid = get_pid(port)
    wait_for(lambda: get_pid(port) != pid, what="a new worker")
    assert "max-requests: served 5 requests" in server.log  # worker 1: 3 + 1 * 2


def test_reload_on_rss_replaces_the_worker_after_its_request(procmaster):
    server, port = start(procmaster, "--processes", "1", "--reload-on-rss", "100")
    status, _, body = http_get(port, "/alloc?mb=200")
    assert status == 200  # the request completed
    pid = int(body)
    server.wait_log("reload-on-rss: rss")
    wait_for(lambda: server.worker_pids() and pid not in server.worker_pids(), what="respawn")
    assert get_pid(port) != pid
    assert "keeps dying" not in server.log


def test_max_worker_lifetime(procmaster):
    server, port = start(procmaster, "--processes", "1", "--max-worker-lifetime", "1")
    pid = get_pid(port)
    server.wait_log("max-worker-lifetime: 1s reached", timeout=5)
    wait_for(lambda: get_pid(port) != pid, what="a new worker")


def test_evil_reload_on_rss_kills_at_once(procmaster):
    """The master measures the workers and SIGKILLs one over evil-reload-on-rss at
    once, even in the middle of a request (reload-on-rss, the worker's own check,
    would finish the request first); the log names evil-reload-on-rss."""
    server, port = start(procmaster, "--processes", "1", "--evil-reload-on-rss", "100")
    pid = get_pid(port)
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.sendall(b"GET /alloc?mb=150&hold=120 HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = s.recv(65536)  # the worker dies mid-request: a close, no answer
        except ConnectionResetError:
            answer = b""
    finally:
        s.close()
    assert answer == b""
    log = server.wait_log(f"worker 1 (pid {pid}) killed by signal 9 (SIGKILL)", timeout=30)
    assert re.search(
        rf"worker 1 \(pid {pid}\) rss \d+ MB is over evil-reload-on-rss \(100 MB\): killing it",
        log,
    ), log
    assert "reload-on-rss: rss" not in log  # not the worker's own after-request check
    wait_for(lambda: get_pid(port) != pid, 30, what="a new worker")


def test_import_error_with_lazy_apps_backs_off_and_healthy_workers_serve(procmaster, tmp_path):
    port = free_port()
    t0 = time.monotonic()
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "import_error_app:application",
        "--lazy-apps",
        "--processes",
        "4",
        env={"IMPORT_OK_FLAG": str(tmp_path / "first-import")},
        wait_port=port,
    )
    deaths = "(the app failed to load) after"
    server.wait_log(deaths, count=7, timeout=30)
    elapsed = time.monotonic() - t0
    forks = server.log.count(deaths) + 1
    print(f"{forks} forks in {elapsed:.1f}s")
    assert forks / elapsed <= 5.0, (forks, elapsed)
    assert "RuntimeError: this worker cannot start" in server.log
    assert re.search(r"keeps dying at start-up \(exited with code 22", server.log)
    assert server.proc.poll() is None
    assert http_get(port, "/")[2] == b"ok"  # the one healthy worker


def test_threads_serve_slow_requests_at_once_in_one_worker(procmaster):
    server, port = start(procmaster, "--processes", "1", "--threads", "4")
    status, _, body = http_get(port, "/threads")
    assert json.loads(body)["multithread"] is True
    results: list = []

    def slow():
        results.append(http_get(port, "/sleep?s=1.5", timeout=10))

    t0 = time.monotonic()
    clients = [threading.Thread(target=slow) for _ in range(4)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(15)
    took = time.monotonic() - t0
    assert [r[0] for r in results] == [200] * 4
    assert len({r[2] for r in results}) == 1  # one worker pid served all four
    assert took < 3.0, took  # one at a time would take 6 s
    assert http_get(port, "/error-is-ok")[0] == 200


def test_threads_app_error_is_a_500(procmaster, tmp_path):
    port = free_port()
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp:application",
        "--threads",
        "2",
        wait_port=port,
    )
    assert http_get(port, "/error")[0] == 500
    assert http_get(port, "/echo", "POST", b"x" * 100000)[2] == b"x" * 100000
    assert http_get(port, "/stream?n=5")[0] == 200


def test_cheaper_adds_workers_under_load_and_stops_them_when_idle(procmaster):
    server, port = start(
        procmaster,
        "--processes",
        "4",
        "--cheaper",
        "1",
        "--cheaper-overload",
        "1",
        "--worker-reload-mercy",
        "5",
    )
    # the port is bound before the first worker is forked: wait for it (one, not four)
    wait_for(lambda: len(server.worker_pids()) == 1, 20, what="the one cheaper worker")
    with Load(port, "/sleep?s=0.2", threads=8):
        wait_for(lambda: len(server.worker_pids()) == 4, 20, what="4 workers under load")
    server.wait_log("cheaper: all")
    wait_for(lambda: len(server.worker_pids()) == 1, 20, what="back to 1 worker when idle")
    assert "idle for 1s: stopping one" in server.log
    assert http_get(port, "/")[2] == b"ok"


@pytest.mark.skipif(os.geteuid() != 0, reason="uid/gid drop needs root (run the tests as root)")
def test_uid_gid_dropped_after_binding_socket_perms_applied_before(procmaster, tmp_path):
    sock_dir = tmp_path / "sock"
    sock_dir.mkdir()
    path = str(sock_dir / "app.sock")
    server = procmaster(
        "--http-socket",
        path,
        "--module",
        APP,
        "--processes",
        "2",
        "--uid",
        "nobody",
        "--gid",
        "nogroup",
        "--chmod-socket",
        "660",
        "--chown-socket",
        "nobody:nogroup",
        wait_unix=path,
    )
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o660)
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b"GET /pid HTTP/1.0\r\n\r\n")
    reply = b""
    while chunk := s.recv(4096):
        reply += chunk
    s.close()
    assert reply.startswith(b"HTTP/1.0 200")
    worker = int(reply.split(b"\r\n\r\n", 1)[1])
    for pid in (server.pid, worker):
        uids, gids = psutil.Process(pid).uids(), psutil.Process(pid).gids()
        assert (uids.real, uids.effective, gids.real, gids.effective) == (65534,) * 4
    assert "privileges dropped: uid 65534 gid 65534" in server.log


def test_uid_unknown_user_is_an_error(procmaster):
    port = free_port()
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", "--module", APP, "--uid", "no-such-user-here"
    )
    assert server.wait_exit() == 1
    assert "uid: no such user 'no-such-user-here'" in server.log
