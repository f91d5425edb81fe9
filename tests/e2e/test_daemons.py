"""attach-daemon, smart-attach-daemon and cron: the schedule with an injected
clock (no real minute to wait), and real masters running real commands."""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil
import pytest
from support import free_port, wait_for

from procmaster.config import load
from procmaster.daemons import Daemons, from_config, parse_cron


def test_parse_cron_fields():
    job = parse_cron("-5 3 -1 -1 1 echo hi  there")
    assert job.fields == (-5, 3, -1, -1, 1) and job.cmd == "echo hi  there"
    for bad in ("-1 -1 -1 -1", "61 -1 -1 -1 -1 x", "a -1 -1 -1 -1 x", "-1 -1 0 -1 -1 x"):
        with pytest.raises(ValueError):
            parse_cron(bad)


def _t(minute, hour=12, mday=15, mon=6, wday_monday0=0):
    return time.struct_time((2026, mon, mday, hour, minute, 0, wday_monday0, 1, -1))


def test_cron_matching():
    every = parse_cron("-1 -1 -1 -1 -1 x")
    assert every.due(_t(0)) and every.due(_t(37))
    every5 = parse_cron("-5 -1 -1 -1 -1 x")
    assert every5.due(_t(10)) and not every5.due(_t(11))
    at = parse_cron("30 2 -1 -1 -1 x")
    assert at.due(_t(30, 2)) and not at.due(_t(30, 3)) and not at.due(_t(31, 2))
    sunday = parse_cron("-1 -1 -1 -1 0 x")  # 0 is Sunday, as cron and uWSGI
    assert sunday.due(_t(0, wday_monday0=6)) and not sunday.due(_t(0, wday_monday0=0))


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _reap(daemons: Daemons) -> None:
    for proc in daemons.procs:
        if proc.pid is not None:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                daemons.reaped(pid, status)


def test_cron_runs_each_due_minute_with_an_injected_clock(tmp_path):
    out = tmp_path / "runs"
    cfg = load(
        [
            "--cron",
            f"-1 -1 -1 -1 -1 echo every >> {out}",
            "--cron",
            f"-2 -1 -1 -1 -1 echo even >> {out}",
            "--http-socket",
            ":0",
        ],
        environ={},
    )
    lines: list[str] = []
    clock = Clock(1_800_000_000.0 - 30)  # a minute starting at an even minute number
    daemons = from_config(cfg, lines.append, clock)
    assert daemons is not None
    daemons.start()
    daemons.tick()  # same minute: nothing
    assert not out.exists()
    expected = []
    for _ in range(4):
        clock.now += 60
        minute = int(clock.now // 60)
        daemons.tick()
        expected.append("every")
        if minute % 2 == 0:
            expected.append("even")
        n = len(expected)
        wait_for(
            lambda n=n: out.exists() and len(out.read_text().split()) == n,
            what="the cron runs",
        )
        wait_for(lambda: all(p.popen is None for p in daemons.procs) or _reap(daemons), 5)
    assert sorted(out.read_text().split()) == sorted(expected)
    assert expected.count("even") == 2


def test_cron_does_not_start_a_job_still_running(tmp_path):
    cfg = load(["--cron", "-1 -1 -1 -1 -1 sleep 30"], environ={})
    lines: list[str] = []
    clock = Clock(1_800_000_000.0)
    daemons = from_config(cfg, lines.append, clock)
    daemons.start()
    clock.now += 60
    daemons.tick()
    first = daemons.procs[0].pid
    clock.now += 60
    daemons.tick()
    assert daemons.procs[0].pid == first
    assert any("still running" in line for line in lines)
    daemons.stop(mercy=2)
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie"


def _ini(tmp_path, port: int, extra: str) -> str:
    ini = tmp_path / "site.ini"
    ini.write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\nmaster = true\n{extra}"
    )
    return str(ini)


def _pids(path) -> list[int]:
    try:
        return [int(x) for x in path.read_text().split()]
    except FileNotFoundError:
        return []


def test_attach_daemon_restarts_and_stops_with_the_master(procmaster, tmp_path):
    port = free_port()
    pids = tmp_path / "daemon.pids"
    ini = _ini(tmp_path, port, f"attach-daemon = echo $$ >> {pids}; exec sleep 300\n")
    server = procmaster("--ini", ini, wait_port=port)
    wait_for(lambda: len(_pids(pids)) == 1, what="the daemon to start")
    first = _pids(pids)[0]
    assert psutil.Process(first).ppid() == server.pid
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: len(_pids(pids)) == 2, what="the daemon to be restarted")
    second = _pids(pids)[1]
    assert second != first and psutil.pid_exists(second)
    server.wait_log("restarting in")
    server.signal(signal.SIGTERM)
    assert server.wait_exit(20) == 0
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == "zombie"
    assert server.descendants() == []


def test_smart_attach_daemon_watches_its_pidfile(procmaster, tmp_path):
    port = free_port()
    pidfile = tmp_path / "worker.pid"
    script = tmp_path / "bg.py"
    # a command that daemonizes itself (double fork) and writes its pidfile
    script.write_text(
        "import os, sys, time\n"
        "if os.fork(): sys.exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): os._exit(0)\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(300)\n"
    )
    ini = _ini(tmp_path, port, f"smart-attach-daemon = {pidfile} {sys.executable} {script}\n")
    server = procmaster("--ini", ini, wait_port=port)
    first = wait_for(lambda: _pids(pidfile) and _pids(pidfile)[0], what="the pidfile")
    try:
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: _pids(pidfile) and _pids(pidfile)[0] != first, what="a new daemon")
        second = _pids(pidfile)[0]
        server.signal(signal.SIGTERM)
        assert server.wait_exit(20) == 0
        wait_for(lambda: not psutil.pid_exists(second), 5, what="the smart daemon to stop")
    finally:
        for pid in _pids(pidfile):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.slow
def test_cron_every_minute_for_real(procmaster, tmp_path):
    """The real clock, the real master: a ``cron`` line for every minute runs at
    the next minute boundary (its own ``date +%S`` says so; ``%%`` is the INI's %), not at start-up.
    Waits for that boundary: up to a minute, always run (CI included)."""
    port = free_port()
    out = tmp_path / "cron.out"
    ini = _ini(tmp_path, port, f"cron = -1 -1 -1 -1 -1 date +%%S >> {out}\n")
    server = procmaster("--ini", ini, wait_port=port)
    wait_for(lambda: out.exists() and out.read_text().strip(), 75, interval=0.2, what="the job")
    second = int(out.read_text().split()[0])
    assert second < 15, f"ran at second {second} of its minute, not at the boundary"
    server.signal(signal.SIGTERM)
    assert server.wait_exit(20) == 0
