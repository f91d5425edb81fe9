"""Production operations with real processes and the real tools: sd_notify,
systemd-analyze, supervisord/supervisorctl, the stats server (uwsgitop, a schema
check, prometheus_client's parser), pidfile commands and every master-FIFO letter."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
from support import APPS, ROOT, Load, free_port, http_get, wait_for

APP = ("--module", "testapp:application")


def stats_json(address: str) -> dict:
    if address.startswith("/"):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(address)
    else:
        host, port = address.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=5)
    chunks = []
    with s:
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return json.loads(b"".join(chunks))


def fifo_write(path: str, letters: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, letters.encode())
    finally:
        os.close(fd)


# -- sd_notify ---------------------------------------------------------------------------


class NotifyListener:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"procmaster-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.dir = tempfile.mkdtemp(prefix="pmn", dir="/tmp")
            self.address = os.path.join(self.dir, "notify")
            self.sock.bind(self.address)

    def next(self, timeout: float = 15.0) -> tuple[float, dict]:
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096)
        fields = dict(line.split("=", 1) for line in data.decode().splitlines())
        return time.monotonic(), fields

    def until(self, key: str, timeout: float = 15.0) -> tuple[float, dict, list[dict]]:
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            when, fields = self.next(max(0.1, deadline - time.monotonic()))
            seen.append(fields)
            if key in fields:
                return when, fields, seen

    def close(self) -> None:
        self.sock.close()
        if not self.address.startswith("@"):
            shutil.rmtree(self.dir, ignore_errors=True)


def test_sd_notify_ready_reload_stopping(procmaster):
    port = free_port()
    listener = NotifyListener()
    try:
        t0 = time.monotonic()
        server = procmaster(
            "--http-socket", f"127.0.0.1:{port}", "--module", "slowstart:application",
            "--lazy-apps", "--processes", "2",
            env={"NOTIFY_SOCKET": listener.address},
        )  # fmt: skip
        when, ready, seen = listener.until("READY")
        assert ready["READY"] == "1" and ready["MAINPID"] == str(server.pid)
        assert "2 worker(s)" in ready["STATUS"]
        assert when - t0 >= 0.8, "READY=1 before the workers had imported the app"
        # every worker accepts by now: the first request succeeds at once
        assert http_get(port, timeout=2)[0] == 200
        old = server.worker_pids()
        assert len(old) == 2

        server.signal(signal.SIGHUP)
        _, reloading, _ = listener.until("RELOADING")
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert reloading["RELOADING"] == "1"
        assert 0 <= now_usec - int(reloading["MONOTONIC_USEC"]) < 5_000_000
        _, ready2, _ = listener.until("READY")
        assert ready2["MAINPID"] == str(server.pid)  # the same master, re-executed
        assert "reload (SIGHUP) done" in server.log
        new = server.worker_pids()
        assert not set(new) & set(old) or len(new) > 2
        assert http_get(port, timeout=2)[0] == 200

        server.signal(signal.SIGTERM)
        _, stopping, _ = listener.until("STOPPING")
        assert stopping["STOPPING"] == "1"
        assert server.wait_exit() == 0
    finally:
        listener.close()


def test_sd_notify_watchdog_rate_abstract_socket(procmaster):
    port = free_port()
    listener = NotifyListener(abstract=True)
    try:
        procmaster(
            "--http-socket", f"127.0.0.1:{port}", *APP,
            env={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "200000"},
        )  # fmt: skip
        listener.until("READY")
        pings = []
        while len(pings) < 8:
            when, fields = listener.next(5)
            if "WATCHDOG" in fields:
                assert fields["WATCHDOG"] == "1"
                pings.append(when)
        gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
        # half of WATCHDOG_USEC: every 0.1 s, never much later
        assert 0.07 < sum(gaps) / len(gaps) < 0.15, gaps
        assert max(gaps) < 0.3, gaps
    finally:
        listener.close()


def test_no_watchdog_for_another_pid(procmaster):
    """WATCHDOG_PID names another process: the watchdog is not ours."""
    from procmaster.systemd import Notifier

    n = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert n.deadline() is None
    assert Notifier({}).enabled is False


# -- systemd units -------------------------------------------------------------------------


def test_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian package 'systemd')")
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    exe = shutil.which("procmaster") or sys.executable
    service = (ROOT / "systemd" / "procmaster@.service").read_text()
    assert "Type=notify" in service and "ExecReload=/bin/kill -HUP $MAINPID" in service
    # the unit names the installed command; verify checks that it exists
    (unit_dir / "procmaster@.service").write_text(service.replace("/usr/local/bin/procmaster", exe))
    shutil.copy(ROOT / "systemd" / "procmaster@.socket", unit_dir)
    proc = subprocess.run(
        [tool, "verify", "procmaster@site.service", "procmaster@site.socket"],
        cwd=unit_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 and "procmaster@" not in out:
        pytest.skip(f"systemd-analyze cannot run here: {out.strip()[:300]}")
    # systemd-analyze exits 0 even for "ignoring" warnings: none may name our units
    ours = [line for line in out.splitlines() if "procmaster@" in line]
    assert proc.returncode == 0 and ours == [], out


# -- supervisord ---------------------------------------------------------------------------


def test_supervisord_shipped_config(tmp_path):
    shipped = (ROOT / "configs" / "supervisord.conf").read_text()
    port = free_port()
    site = tmp_path / "site.ini"
    site.write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp:application\nprocesses = 2\n"
    )
    run = tmp_path / "run"
    run.mkdir()
    # the shipped file with this test's paths: every setting of [program:site] as shipped
    conf = (
        shipped.replace("/run/procmaster", str(run))
        .replace("/var/log/procmaster", str(tmp_path))
        .replace("/etc/procmaster/site.ini", str(site))
        .replace("/srv/site", str(tmp_path))
        .replace("command = procmaster", f"command = {sys.executable} -m procmaster")
    )
    conf_path = tmp_path / "supervisord.conf"
    conf_path.write_text(conf)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("NOTIFY_SOCKET", None)
    bindir = Path(sys.executable).parent

    def ctl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(bindir / "supervisorctl"), "-c", str(conf_path), *args],
            capture_output=True, text=True, timeout=90, env=env,
        )  # fmt: skip

    sup = subprocess.Popen(
        [str(bindir / "supervisord"), "-n", "-c", str(conf_path)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    known: set[int] = set()

    def master_pid() -> int:
        out = ctl("pid", "site").stdout.strip()
        return int(out) if out.isdigit() and int(out) > 0 else 0

    def workers(pid: int) -> list[int]:
        try:
            kids = [p.pid for p in psutil.Process(pid).children()]
        except psutil.NoSuchProcess:
            return []
        known.update(kids)
        return sorted(kids)

    try:
        wait_for(lambda: "RUNNING" in ctl("status", "site").stdout, 20, what="site RUNNING")
        pid = master_pid()
        known.add(pid)
        wait_for(lambda: len(workers(pid)) == 2, 10, what="2 workers")
        assert http_get(port)[0] == 200
        old = workers(pid)

        with Load(port) as load:
            assert "site" in ctl("signal", "HUP", "site").stdout
            wait_for(
                lambda: len(w := workers(pid)) == 2 and not set(w) & set(old),
                20,
                what="new workers after HUP",
            )
            load.more(100)
        assert load.failures == []
        assert master_pid() == pid  # the same master, reloaded in place

        every = [pid, *workers(pid)]
        assert "stopped" in ctl("stop", "site").stdout.lower()
        assert not [p for p in every if psutil.pid_exists(p)
                    and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]  # fmt: skip

        ctl("restart", "site")
        wait_for(lambda: "RUNNING" in ctl("status", "site").stdout, 20, what="RUNNING again")
        known.add(master_pid())
        wait_for(lambda: _ok(port), 10, what="serving after restart")
        assert "procmaster master pid" in (tmp_path / "site.log").read_text()  # log captured
    finally:
        ctl("shutdown")
        try:
            sup.wait(15)
        except subprocess.TimeoutExpired:
            sup.kill()
        for p in known:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _quiet_get(port: int, path: str) -> None:
    try:
        http_get(port, path)
    except OSError:
        pass  # the test may end (and kill the server) first


def _ok(port: int) -> bool:
    try:
        return http_get(port, timeout=2)[0] == 200
    except OSError:
        return False


# -- stats server --------------------------------------------------------------------------

WORKER_KEYS = {
    "id": int, "pid": int, "accepting": int, "requests": int, "delta_requests": int,
    "exceptions": int, "harakiri_count": int, "signals": int, "signal_queue": int,
    "status": str, "rss": int, "vsz": int, "running_time": int, "last_spawn": int,
    "respawn_count": int, "tx": int, "avg_rt": int, "apps": list, "cores": list,
}  # fmt: skip
TOP_KEYS = {
    "version": str, "listen_queue": int, "listen_queue_errors": int, "load": int,
    "pid": int, "uid": int, "gid": int, "cwd": str, "sockets": list, "workers": list,
}  # fmt: skip
SOCKET_KEYS = {
    "name": str, "proto": str, "queue": int, "max_queue": int, "shared": int,
    "can_offload": int,
}  # fmt: skip


def check_schema(doc: dict) -> None:
    for key, kind in TOP_KEYS.items():
        assert type(doc[key]) is kind, key
    for sock in doc["sockets"]:
        for key, kind in SOCKET_KEYS.items():
            assert type(sock[key]) is kind, key
    for worker in doc["workers"]:
        for key, kind in WORKER_KEYS.items():
            assert type(worker[key]) is kind, key
        assert worker["status"] in ("idle", "busy", "cheap", "pause")


def test_stats_schema_busy_workers_and_listen_queue(procmaster, tmp_path):
    port = free_port()
    stats = str(tmp_path / "stats.sock")
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--processes", "2", "--stats", stats,
        wait_port=port,
    )  # fmt: skip
    for _ in range(5):
        assert http_get(port)[0] == 200
    # a worker counts a request once its response is written: the client may be first
    wait_for(
        lambda: sum(w["requests"] for w in stats_json(stats)["workers"]) >= 5,
        10,
        what="5 requests counted",
    )
    doc = stats_json(stats)
    check_schema(doc)
    assert doc["pid"] == server.pid
    assert sorted(w["pid"] for w in doc["workers"]) == server.worker_pids()
    assert sum(w["requests"] for w in doc["workers"]) >= 5  # the readiness probe counts too
    assert sum(w["tx"] for w in doc["workers"]) > 5 * 13
    assert doc["sockets"][0]["name"] == f"127.0.0.1:{port}"
    assert doc["sockets"][0]["max_queue"] == 100

    # both workers busy in the app: the master still answers at once
    # (one at a time: a worker accepts what is waiting before it runs the app)
    sleepers = []
    for n in (1, 2):
        t = threading.Thread(target=_quiet_get, args=(port, "/sleep?s=3"), daemon=True)
        t.start()
        sleepers.append(t)
        wait_for(
            lambda n=n: [w["status"] for w in stats_json(stats)["workers"]].count("busy") == n,
            5,
            what=f"{n} worker(s) busy",
        )
    t0 = time.monotonic()
    doc = stats_json(stats)
    assert time.monotonic() - t0 < 0.5
    check_schema(doc)
    # connections nobody can accept now wait in the kernel's queue, and stats says so
    waiting = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        wait_for(lambda: stats_json(stats)["listen_queue"] == 3, 3, what="listen_queue 3")
        assert stats_json(stats)["sockets"][0]["queue"] == 3
    finally:
        for s in waiting:
            s.close()
    for t in sleepers:
        t.join(10)


def test_uwsgitop_in_a_pty(procmaster):
    import fcntl
    import pty
    import re
    import struct
    import termios

    tool = Path(sys.executable).parent / "uwsgitop"
    if not tool.exists():
        pytest.skip("uwsgitop is not installed (pip install uwsgitop)")
    port, sport = free_port(), free_port()
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--processes", "2",
        "--stats", f"127.0.0.1:{sport}", wait_port=port,
    )  # fmt: skip
    for _ in range(7):
        http_get(port)
    # 7 and the fixture's readiness request; a worker counts a request right
    # after writing its response, so wait for the last count to land
    doc = wait_for(
        lambda: (
            (d := stats_json(f"127.0.0.1:{sport}"))
            and sum(w["requests"] for w in d["workers"]) == 8
            and d
        ),
        5,
        what="8 requests counted",
    )
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    env = dict(os.environ, TERM="xterm", LINES="40", COLUMNS="200")
    proc = subprocess.Popen(
        [sys.executable, str(tool), "--frequency", "1", f"127.0.0.1:{sport}"],
        stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    screen = b""
    try:
        expected = {str(w["pid"]): w["requests"] for w in doc["workers"]}

        def shown() -> bool:
            nonlocal screen
            try:
                screen += os.read(master, 65536)
            except OSError:
                return False
            text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]", b" ", screen)
            text = text.decode("latin-1")
            # each worker line: WID  %  PID  REQ  RPS ...
            return all(re.search(rf"\b{pid}\s+{req}\b", text) for pid, req in expected.items())

        wait_for(shown, 10, what=f"worker pids and requests {expected} in uwsgitop")
        assert "req: " in screen.decode("latin-1")
    finally:
        try:
            os.write(master, b"q")
            proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(5)
        os.close(master)
    assert server.proc.poll() is None


def test_prometheus_metrics(procmaster):
    from prometheus_client.parser import text_string_to_metric_families

    port, sport = free_port(), free_port()
    procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--processes", "2",
        "--stats", f"127.0.0.1:{sport}", "--stats-http", wait_port=port,
    )  # fmt: skip
    # the fixture's readiness check made requests too (2xx): the 4xx and 5xx classes
    # are this test's alone
    for _ in range(20):
        assert http_get(port)[0] == 200
    for _ in range(3):
        assert http_get(port, "/missing")[0] == 404
    assert http_get(port, "/error")[0] == 500

    def classes_of(families: dict) -> dict:
        return {s.labels["status"]: s.value for s in families["procmaster_responses"].samples}

    def settled() -> dict | None:
        """One scrape in which all 24 requests are counted (a worker counts a request
        right after writing its response: the client can be faster than the counter)."""
        status, headers, body = http_get(sport, "/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        classes = classes_of(families)
        requests = sum(s.value for s in families["procmaster_requests"].samples)
        # a worker writes the status class and the histogram before the request
        # count: no scrape ever shows a request counted without its class
        assert requests <= sum(classes.values()), (requests, classes)
        if (
            classes.get("5xx") == 1
            and classes.get("4xx") == 3
            and classes.get("2xx", 0) >= 20
            and requests == sum(classes.values())
        ):
            return families
        return None

    families = wait_for(settled, 60, what="the test's 24 requests counted")
    requests = sum(s.value for s in families["procmaster_requests"].samples)
    assert sum(s.value for s in families["procmaster_exceptions"].samples) == 1
    hist = families["procmaster_request_duration_seconds"]
    count = [s.value for s in hist.samples if s.name.endswith("_count")][0]
    inf = [s.value for s in hist.samples if s.labels.get("le") == "+Inf"][0]
    assert count == inf == requests
    workers = {s.labels["state"]: s.value for s in families["procmaster_workers"].samples}
    assert workers["idle"] + workers["busy"] == 2
    for name in ("procmaster_worker_respawns", "procmaster_harakiri", "procmaster_reloads",
                 "procmaster_listen_queue", "procmaster_worker_rss_bytes"):  # fmt: skip
        assert name in families, name
    # the JSON document is still there on any other path
    assert "workers" in json.loads(http_get(sport, "/")[2])


def _metrics(sport: int) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    body = http_get(sport, "/metrics")[2].decode()
    return {f.name: f for f in text_string_to_metric_families(body)}


# -- pidfile commands ----------------------------------------------------------------------


def pm_command(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "procmaster", *args],
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip


def test_pidfiles_and_pidfile_commands(procmaster, tmp_path):
    port = free_port()
    pidfile, pidfile2, safe = (str(tmp_path / n) for n in ("a.pid", "b.pid", "c.pid"))
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--processes", "2", "--pidfile", pidfile,
        "--pidfile2", pidfile2, "--safe-pidfile", safe, "--vacuum", wait_port=port,
    )  # fmt: skip
    for path in (pidfile, pidfile2, safe):
        assert Path(path).read_text() == f"{server.pid}\n"
    old = server.worker_pids()

    result = pm_command("--reload", pidfile)
    assert result.returncode == 0, result.stderr
    server.wait_log("reload (SIGHUP) done")
    wait_for(lambda: not set(server.worker_pids()) & set(old), 10, what="new workers")

    old = server.worker_pids()
    result = pm_command("--chain-reload", pidfile)
    assert result.returncode == 0, result.stderr
    server.wait_log("reload (SIGURG) done")
    wait_for(lambda: not set(server.worker_pids()) & set(old), 10, what="chain-reloaded workers")
    assert _ok(port)

    result = pm_command("--stop", pidfile)
    assert result.returncode == 0, result.stderr
    assert server.wait_exit() == 0
    for path in (pidfile, pidfile2, safe):
        assert not os.path.exists(path)  # vacuum

    # stale pidfiles: a clear error, no signal sent
    result = pm_command("--reload", pidfile)
    assert result.returncode == 1 and "cannot read pidfile" in result.stderr
    dead = subprocess.Popen(["true"])
    dead.wait()
    Path(pidfile).write_text(f"{dead.pid}\n")
    result = pm_command("--stop", pidfile)
    assert result.returncode == 1
    assert f"stale pidfile '{pidfile}': no process {dead.pid} is running" in result.stderr
    # alive, but not procmaster, even with the word in its command line (as
    # ``pytest --cov=procmaster`` has it): a clear error, and it is not signalled
    sleeper = "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(60)"
    other = subprocess.Popen(
        [sys.executable, "-c", sleeper, "--cov=procmaster", "/venv/procmaster/bin"],
        stdout=subprocess.PIPE,
    )
    try:
        assert other.stdout.readline() == b"up\n"  # its command line is in place
        Path(pidfile).write_text(f"{other.pid}\n")
        result = pm_command("--reload", pidfile)
        assert result.returncode == 1 and "is not procmaster" in result.stderr
        assert other.poll() is None  # not signalled
    finally:
        other.kill()
        other.wait()


# -- master FIFO -----------------------------------------------------------------------------


def test_master_fifo_letters(procmaster, tmp_path):
    port, sport = free_port(), free_port()
    fifo = str(tmp_path / "master.fifo")
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--processes", "2", "--master-fifo", fifo,
        "--stats", f"127.0.0.1:{sport}", wait_port=port,
    )  # fmt: skip

    def reload_by(letter: str, done: str) -> None:
        old = server.worker_pids()
        n = server.log.count(done)
        fifo_write(fifo, letter)
        server.wait_log(done, count=n + 1)
        wait_for(lambda: not set(server.worker_pids()) & set(old), 10, what=f"{letter}: new pids")
        assert _ok(port)

    # several letters in one write run in order; an unknown one is logged and skipped
    fifo_write(fifo, "sx+")
    log = server.wait_log("workers: 2 -> 3")
    assert log.index("master-fifo: 's'") < log.index("unknown command 'x' ignored")
    assert log.index("unknown command 'x' ignored") < log.index("workers: 2 -> 3")
    assert "stats: " in log
    # the third worker is up and accepting, then one less
    wait_for(
        lambda: [w["accepting"] for w in stats_json(f"127.0.0.1:{sport}")["workers"]] == [1] * 3,
        10,
        what="3 workers accepting",
    )
    fifo_write(fifo, "-")
    wait_for(lambda: len(server.worker_pids()) == 2, 10, what="2 workers")

    reload_by("w", "reload (master-fifo w) done")
    reload_by("W", "reload (master-fifo W) done")
    reload_by("c", "reload (master-fifo c) done")
    reload_by("r", "reload (master-fifo r) done")
    reload_by("R", "reload (master-fifo R) done")

    # p: connections wait in the listen queue; p again: they are served
    fifo_write(fifo, "p")
    server.wait_log("paused: workers accept no new connections")
    wait_for(
        lambda: all(w["status"] == "pause" for w in stats_json(f"127.0.0.1:{sport}")["workers"]),
        5,
        what="workers paused",
    )
    # a worker respawned while paused starts paused too
    old = server.worker_pids()
    os.kill(old[0], signal.SIGKILL)
    wait_for(
        lambda: (
            len(set(server.worker_pids()) - set(old)) == 1
            and [w["status"] for w in stats_json(f"127.0.0.1:{sport}")["workers"]] == ["pause"] * 2
        ),
        10,
        what="the respawned worker paused",
    )
    result: list = []
    t = threading.Thread(target=lambda: result.append(http_get(port, timeout=10)), daemon=True)
    t.start()
    wait_for(lambda: stats_json(f"127.0.0.1:{sport}")["listen_queue"] == 1, 5, what="queued")
    assert result == []
    fifo_write(fifo, "p")
    t.join(10)
    assert result and result[0][0] == 200

    # SIGUSR2: each worker says what it is running
    sleeper = threading.Thread(target=_quiet_get, args=(port, "/sleep?s=1.5"), daemon=True)
    sleeper.start()
    server.wait_log("sleeping 1.5s")
    server.signal(signal.SIGUSR2)
    server.wait_log("GET /sleep?s=1.5 from 127.0.0.1 running for")
    server.wait_log(": idle")  # the other worker's line (each worker writes its own)
    sleeper.join(10)

    # SIGUSR1: the same statistics as the letter s
    server.signal(signal.SIGUSR1)
    server.wait_log("stats: ", count=2)

    fifo_write(fifo, "q")
    server.wait_log("SIGTERM: graceful shutdown")
    assert server.wait_exit() == 0


def test_master_fifo_digits_switch_to_another_fifo_as_uwsgi(procmaster, tmp_path):
    port = free_port()
    first, second = str(tmp_path / "a.fifo"), str(tmp_path / "b.fifo")
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--master-fifo", first,
        "--master-fifo", second, wait_port=port,
    )  # fmt: skip
    assert not os.path.exists(second)  # only the first is active
    fifo_write(first, "7")  # no seventh FIFO
    server.wait_log("there is no master-fifo number 7; ignored")
    fifo_write(first, "1")
    server.wait_log(f"active master fifo is now {second}")
    wait_for(lambda: os.path.exists(second), 5, what="the second FIFO")
    fifo_write(second, "Q")
    assert server.wait_exit(10) == 0


def test_master_fifo_immediate_stop_and_logs(procmaster, tmp_path):
    port = free_port()
    fifo = str(tmp_path / "master.fifo")
    logfile = tmp_path / "site.log"
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", *APP, "--master-fifo", fifo, "--logto",
        str(logfile), "--log-backupname", str(tmp_path / "site.log.old"), wait_port=port,
    )  # fmt: skip
    # l: a log moved away by an external rotation is reopened at its path
    os.rename(logfile, tmp_path / "moved.log")
    fifo_write(fifo, "l")
    wait_for(lambda: logfile.exists() and "log reopened" in logfile.read_text(), 5, what="l")
    assert _ok(port)
    wait_for(lambda: "GET /" in logfile.read_text(), 5, what="workers log to the new file")
    # L: procmaster renames the log and reopens it
    fifo_write(fifo, "L")
    wait_for(lambda: (tmp_path / "site.log.old").exists(), 5, what="rotated log")
    wait_for(lambda: "rotated to" in logfile.read_text(), 5, what="new log after L")
    workers = server.worker_pids()
    fifo_write(fifo, "Q")
    assert server.wait_exit(10) == 0
    wait_for(lambda: not any(psutil.pid_exists(p) for p in workers), 5, what="workers gone")
