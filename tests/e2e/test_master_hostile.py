"""The master's own sockets and files against a hostile local user or client.

Stats clients that never send or read at a real descriptor limit, a ``procmaster``
planted in the start directory or a vassal's directory, a planted master FIFO, the
stats socket's mode.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import stat
import time
from pathlib import Path

import psutil
from support import free_port, http_get, raise_nofile, wait_for

APP = ("--module", "testapp:application")
NOBODY = 65534


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _idle_clients(port: int, n: int) -> list[socket.socket]:
    """``n`` connections that never send a byte (those the kernel will not
    complete are given up after a short wait)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(0.2)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def _closed_by_peer(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def _metrics(sport: int) -> bytes:
    status, _, body = http_get(sport, "/metrics", timeout=10)
    assert status == 200
    return body


def test_idle_stats_clients_at_a_low_fd_limit(procmaster):
    """``ulimit -n 200``, 250 idle stats-http connections: the master neither spins
    nor runs out; /metrics is answered meanwhile, idle clients are closed after
    their deadline, and SIGHUP reloads."""
    raise_nofile(1024)
    port, sport = free_port(), free_port()
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--processes", "2",
        "--stats", f"127.0.0.1:{sport}", "--stats-http", wait_port=port,
    )  # fmt: skip
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (200, 200))
    socks = _idle_clients(sport, 250)
    try:
        assert len(socks) >= 100
        cpu = _cpu(server.pid)
        time.sleep(3)  # measuring the master's CPU over an interval
        assert _cpu(server.pid) - cpu < 1.0
        assert b"procmaster_requests_total" in _metrics(sport)  # served despite the idle
        assert "Too many open files" not in server.log
        # the oldest idle clients were closed (cap or deadline), not held forever
        assert _closed_by_peer(socks[0], 20)
        server.signal(signal.SIGHUP)
        server.wait_log("reload (SIGHUP) done", 60)
        assert http_get(port, "/")[0] == 200
        assert b"procmaster_requests_total" in _metrics(sport)
        assert "cannot start the check" not in server.log
    finally:
        for s in socks:
            s.close()


def test_stats_accept_out_of_descriptors_pauses_and_says_so_once(procmaster):
    """The master at its descriptor limit: accept fails with EMFILE. One log line,
    no spinning, and a SIGHUP still reloads (stats clients are closed to free
    descriptors for the check)."""
    raise_nofile(1024)
    port, sport = free_port(), free_port()
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--processes", "1",
        "--stats", f"127.0.0.1:{sport}", "--stats-http", wait_port=port,
    )  # fmt: skip
    used = len(os.listdir(f"/proc/{server.pid}/fd"))
    limit = used + 6
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (limit, limit))
    socks = _idle_clients(sport, 60)
    try:
        server.wait_log("stats server: accept: Too many open files", 20)
        cpu = _cpu(server.pid)
        time.sleep(3)  # measuring the master's CPU over an interval
        assert _cpu(server.pid) - cpu < 1.0
        assert server.log.count("stats server: accept") == 1  # one line per episode
        assert http_get(port, "/")[0] == 200  # the workers serve on
        server.signal(signal.SIGHUP)
        server.wait_log("reload (SIGHUP) done", 60)
        log = server.log
        assert "stats client(s) to start the check" in log
        assert "reload failed" not in log
        assert http_get(port, "/")[0] == 200
    finally:
        for s in socks:
            s.close()
    # with the idle clients gone the stats are answered again
    wait_for(lambda: _answers(sport), 30, what="stats answered again")


def _answers(sport: int) -> bool:
    try:
        return b"procmaster_requests_total" in _metrics(sport)
    except OSError:
        return False


def _plant_procmaster(directory: Path, marker: Path) -> None:
    code = f"open({str(marker)!r}, 'a').write('planted {directory}\\n')\n"
    (directory / "procmaster.py").write_text(code)
    package = directory / "procmaster"
    package.mkdir()
    for name in ("__init__.py", "__main__.py", "cli.py"):
        (package / name).write_text(code)


def test_reload_never_imports_procmaster_from_the_start_directory(procmaster, tmp_path):
    port = free_port()
    start_dir = tmp_path / "start"
    start_dir.mkdir()
    marker = tmp_path / "marker"
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--processes", "1",
        cwd=start_dir, wait_port=port,
    )  # fmt: skip
    _plant_procmaster(start_dir, marker)  # after the start: the first start is the user's
    old = server.worker_pids()
    server.signal(signal.SIGHUP)
    server.wait_log("reload (SIGHUP) done", 60)
    wait_for(lambda: not set(server.worker_pids()) & set(old), 20, what="new workers")
    assert http_get(port, "/")[0] == 200
    assert not marker.exists(), marker.read_text()
    assert server.proc.poll() is None


def test_vassal_never_imports_procmaster_from_its_directory(procmaster, tmp_path):
    port = free_port()
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    marker = tmp_path / "marker"
    _plant_procmaster(vassals, marker)
    (vassals / "app.ini").write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesses = 1\n"
    )
    server = procmaster("--emperor", str(vassals), cwd=tmp_path, wait_port=port, timeout=30)
    vassal = [p for p in psutil.Process(server.pid).children() if p.status() != "zombie"]
    assert len(vassal) == 1
    vassal[0].send_signal(signal.SIGHUP)
    wait_for(lambda: "reload (SIGHUP) done" in server.log, 60, what=f"reload:\n{server.log}")
    assert http_get(port, "/")[0] == 200
    assert not marker.exists(), marker.read_text()


def test_planted_fifo_of_another_user_is_refused(procmaster, tmp_path):
    """``mkfifo -m 666`` by nobody, then ``master-fifo`` there: refused with the
    reason; nobody's ``Q`` does not stop the server."""
    port = free_port()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    fifo = shared / "x.fifo"
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)
    os.chown(fifo, NOBODY, NOBODY)
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--master-fifo", str(fifo), wait_port=port
    )
    server.wait_log(f"is a FIFO owned by uid {NOBODY}, not by us")
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # what nobody could do
    try:
        os.write(fd, b"Q")
        time.sleep(1)  # a reader would have acted by now; nothing may happen
    finally:
        os.close(fd)
    assert server.proc.poll() is None and http_get(port, "/")[0] == 200
    assert "master-fifo: 'Q'" not in server.log


def test_planted_fifo_symlink_is_not_followed(procmaster, tmp_path):
    port = free_port()
    target = tmp_path / "elsewhere.fifo"
    os.mkfifo(target, 0o600)
    link = tmp_path / "m.fifo"
    link.symlink_to(target)
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--master-fifo", str(link), wait_port=port
    )
    server.wait_log("is a symlink; refusing to follow it")
    assert link.is_symlink()


def test_own_fifo_is_private_and_works(procmaster, tmp_path):
    port = free_port()
    fifo = tmp_path / "m.fifo"
    os.mkfifo(fifo, 0o600)  # left by an earlier run of ours: made afresh
    old = os.umask(0)
    try:
        server = procmaster(
            "--http-socket", f"127.0.0.1:{port}", *APP, "--master-fifo", str(fifo),
            wait_port=port,
        )  # fmt: skip
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.lstat(fifo).st_mode) == 0o600
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b"q")
    os.close(fd)
    assert server.wait_exit(30) == 0


def test_chmod_socket_applies_to_the_stats_unix_socket(procmaster, tmp_path):
    port = free_port()
    path = tmp_path / "stats.sock"
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--stats", str(path),
        "--chmod-socket", "660", wait_port=port,
    )  # fmt: skip
    wait_for(path.exists, 10, what="stats socket")
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o660
    server.signal(signal.SIGHUP)  # taken over by the next image, mode kept
    server.wait_log("reload (SIGHUP) done", 60)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o660


def _post(port: int, size: int) -> tuple[int, bytes]:
    status, _, body = http_get(port, "/", method="POST", body=b"u" * size, timeout=30)
    return status, body


def test_request_body_that_cannot_be_spooled_is_a_500_not_a_dead_worker(procmaster, tmp_path):
    """A body over the spool threshold (1 MiB) goes to a temporary file: when the
    disk is full (the write fails; RLIMIT_FSIZE stands in for a full disk, as
    ``python bench/faults.py fulldisk`` does with a full tmpfs), the request gets a
    500 and one log line; the worker lives on and serves the next request."""
    port = free_port()
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--processes", "1", wait_port=port
    )
    [worker] = server.worker_pids()
    resource.prlimit(worker, resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    assert _post(port, 3 << 20)[0] == 500
    server.wait_log("cannot spool the request body to ")
    assert server.log.count("File too large") == 1
    assert _post(port, 1000)[0] == 200 and server.worker_pids() == [worker]
    assert _post(port, 3 << 20)[0] == 500
    assert "internal error" not in server.log and server.worker_pids() == [worker]


def test_emperor_stats_out_of_descriptors_does_not_spin(procmaster, tmp_path):
    """The emperor at its descriptor limit: its stats socket says so once and does
    not spin; with descriptors free again it answers."""
    port, sport = free_port(), free_port()
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    (vassals / "app.ini").write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesses = 1\n"
    )
    server = procmaster(
        "--emperor", str(vassals), "--emperor-stats", f"127.0.0.1:{sport}",
        cwd=tmp_path, wait_port=port, timeout=30,
    )  # fmt: skip
    used = len(os.listdir(f"/proc/{server.pid}/fd"))
    soft, hard = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (used, hard))
    socks = _idle_clients(sport, 5)
    try:
        server.wait_log("stats server: accept: Too many open files", 20)
        cpu = _cpu(server.pid)
        time.sleep(3)  # measuring the emperor's CPU over an interval
        assert _cpu(server.pid) - cpu < 1.0
        assert server.log.count("stats server: accept") == 1
    finally:
        for s in socks:
            s.close()
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (soft, hard))
    s = socket.create_connection(("127.0.0.1", sport), timeout=10)
    with s:
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert b'"vassals"' in data


def test_request_body_whose_last_bytes_cannot_be_spooled(procmaster):
    """The disk fills with the body's last few bytes, still in the spool file's
    buffer when the body ends: a 500 and one line, never an internal error."""
    port = free_port()
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--processes", "1", wait_port=port
    )  # fmt: skip
    [worker] = server.worker_pids()
    first = (1 << 20) + 1  # over the spool threshold: written to the file at once
    resource.prlimit(worker, resource.RLIMIT_FSIZE, (first + 50, first + 50))
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    with s:
        s.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (first + 100)
            + b"u" * first
        )
        time.sleep(0.5)  # the last bytes arrive alone (buffered in the spool file)
        s.sendall(b"u" * 100)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 500 "), reply[:200]
    server.wait_log("cannot spool the request body to ")
    assert "internal error" not in server.log
    assert _post(port, 1000)[0] == 200 and server.worker_pids() == [worker]
