"""Logs as people configure them: daemonize, log-maxsize rotation, req-logger /
logger files, log-format variables, memory-report; and process names."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import psutil
from support import APPS, ROOT, Background, free_port, http_get, wait_for


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT)])
    return env


def _gone(proc: psutil.Process) -> bool:
    """Exited (a detached master is reaped by init, which may take its time)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _kill_tree(pid: int) -> None:
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def test_daemonize_detaches_and_pidfile_holds_the_master(tmp_path):
    port = free_port()
    log = tmp_path / "site.log"
    pidfile = tmp_path / "site.pid"
    ini = tmp_path / "site.ini"
    ini.write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesses = 2\n"
        f"daemonize = {log}\npidfile = {pidfile}\nmaster = true\n"
        f"reload-mercy = 3\nsocket = {tmp_path}/site.sock\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "procmaster", "--ini", str(ini)],
            cwd=tmp_path,
            env=_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=20,
        )
        assert done.returncode == 0, done.stderr
        pid = wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the pidfile")
        master = psutil.Process(int(pid))
        assert master.pid != os.getpid() and master.ppid() != os.getpid()
        assert os.getsid(master.pid) != os.getsid(0)  # a session of its own
        wait_for(lambda: len(master.children()) == 2, what="two workers")
        status, _, body = http_get(port, "/")
        assert status == 200 and body == b"Hello, World!"
        wait_for(lambda: "GET / =>" in log.read_text(), what="the request line in the log")
        assert "procmaster master pid" in log.read_text()
        # as uWSGI's daemonize: umask 0 (a unix socket is srwxrwxrwx without chmod-socket)
        assert (tmp_path / "site.sock").stat().st_mode & 0o777 == 0o777
        kids = master.children(recursive=True)
        os.kill(master.pid, signal.SIGTERM)
        wait_for(lambda: _gone(master), 20, what="the master to stop")
        wait_for(lambda: all(_gone(k) for k in kids), 5, what="the workers to stop")
    finally:
        # whatever happened, the daemon is stopped by the pid it wrote (never by name)
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        if text.isdigit():
            _kill_tree(int(text))


def test_logto_host_port_logs_over_udp_as_uwsgi(procmaster, tmp_path):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(20)
    try:
        port = free_port()
        procmaster(
            "--http-socket", f"127.0.0.1:{port}", "--module", "testapp", "--logto",
            f"127.0.0.1:{sink.getsockname()[1]}", wait_port=port,
        )  # fmt: skip
        http_get(port, "/udp-logged")
        lines = []
        while not any("/udp-logged" in line for line in lines):
            lines.append(sink.recv(65536).decode())  # one datagram per line
        assert any(line.startswith("procmaster master pid") for line in lines)
        assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines), lines
        assert not (tmp_path / f"127.0.0.1:{sink.getsockname()[1]}").exists()
    finally:
        sink.close()


def test_umask_applies_before_the_sockets_are_made(procmaster, tmp_path):
    path = str(tmp_path / "u.sock")
    procmaster("--http-socket", path, "--module", "testapp", "--umask", "077", wait_unix=path)
    assert os.stat(path).st_mode & 0o777 == 0o700


def test_log_maxsize_rotation_loses_no_line(procmaster, tmp_path):
    port = free_port()
    log = tmp_path / "site.log"
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--processes",
        "3",
        "--logto",
        str(log),
        "--log-maxsize",
        "4k",
        "--log-format",
        "REQ %(uri) %(status)",
        wait_port=port,
    )
    threads, per_thread = 6, 150

    def hammer(t: int) -> None:
        for i in range(per_thread):
            assert http_get(port, f"/?t={t}&i={i}")[0] == 200

    workers = [Background(hammer, t) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)  # a failed request fails the test here
    expected = {f"/?t={t}&i={i}" for t in range(threads) for i in range(per_thread)}

    def lines() -> list[str]:
        out = []
        for path in tmp_path.glob("site.log*"):
            try:
                text = path.read_text()
            except FileNotFoundError:  # rotated away between the listing and the read
                text = ""
            out += [x.split()[1] for x in text.splitlines() if x.startswith("REQ /?t=")]
        return out

    # the request log line is written after the response, and a rotation may be
    # renaming a file while it is read (a line seen twice, or not at all, for a
    # moment): wait until one reading finds every line exactly once
    def differences() -> str:
        seen = lines()
        missing = sorted(expected - set(seen))
        twice = sorted({x for x in seen if seen.count(x) > 1})
        return f"missing {len(missing)} {missing[:5]}, twice {len(twice)} {twice[:5]}"

    try:
        wait_for(
            lambda: sorted(lines()) == sorted(expected),
            60,
            what=f"every request line exactly once ({len(expected)})",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {differences()}") from None
    backups = [p for p in tmp_path.glob("site.log.*")]
    assert len(backups) >= 3
    assert all(p.stat().st_size < 4 * 1024 + 4096 for p in backups)


def test_req_logger_logger_format_variables_and_names(procmaster, tmp_path):
    port = free_port()
    main_log = tmp_path / "main.log"
    req_log = tmp_path / "req.log"
    ini = tmp_path / "site.ini"
    ini.write_text(
        f"""[uwsgi]
http-socket = 127.0.0.1:{port}
module = testapp
processes = 1
logger = file:{main_log}
req-logger = file:{req_log}
log-x-forwarded-for = true
memory-report = true
procname-master = shop-master
procname = shop-proc
log-format = %(addr) [%(ltime)] "%(method) %(uri) %(proto)" %(status) %(size) %(rsize) %(hsize) %(msecs) %(micros) pid=%(pid) wid=%(wid) ua="%(uagent)" ref="%(referer)" t=%(time) e=%(epoch)
"""
    )
    server = procmaster("--ini", str(ini), wait_port=port)
    status, _, _ = http_get(
        port,
        "/?x=1",
        headers={
            "User-Agent": "corpus-test/1.0",
            "Referer": "http://example.com/from",
            "X-Forwarded-For": "203.0.113.9",
        },
    )
    assert status == 200
    wait_for(lambda: req_log.exists() and "/?x=1" in req_log.read_text(), what="the request line")
    line = [x for x in req_log.read_text().splitlines() if "/?x=1" in x][-1]
    m = re.match(
        r"\{address space usage: \d+ bytes/\d+MB\} \{rss usage: \d+ bytes/\d+MB\} "
        r"203\.0\.113\.9 \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
        r'"GET /\?x=1 HTTP/1\.1" 200 13 13 (\d+) \d+ \d+ pid=(\d+) wid=1 '
        r'ua="corpus-test/1\.0" ref="http://example\.com/from" t=(\d+) e=(\d+)\Z',
        line,
    )
    assert m, line
    assert int(m.group(1)) > 20 and int(m.group(2)) in server.worker_pids()
    assert m.group(3) == m.group(4)
    wait_for(lambda: "procmaster master pid" in main_log.read_text(), what="the master's line")
    assert "/?x=1" not in main_log.read_text()
    assert psutil.Process(server.pid).name() == "shop-master"
    assert [psutil.Process(p).name() for p in server.worker_pids()] == ["shop-proc"]
