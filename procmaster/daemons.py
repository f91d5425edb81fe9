"""Processes the master runs besides its workers: ``attach-daemon``,
``smart-attach-daemon`` and ``cron`` (uWSGI's syntax).

Theory of operation
-------------------
The master owns one ``Daemons`` object and calls it from its loop:

* ``start()`` once the workers are about to start: every ``attach-daemon``
  command is started (``/bin/sh -c CMD``, in its own session so stopping it stops
  what it started), every ``smart-attach-daemon`` whose pidfile does not name a
  live process is started;
* ``reaped(pid, status)`` from the master's ``waitpid`` loop: True when the pid
  was one of ours. An ``attach-daemon`` that exits is started again (at once when
  it ran for a second or more, else with a growing back-off, said in the log);
* ``tick()`` after every wake-up: due restarts, smart daemons whose pidfile
  process is gone, and cron jobs when a new wall-clock minute began;
* ``next_deadline()``: the monotonic time ``tick`` next has work (a restart, the
  next minute for cron, a second for pidfile checks), for the master's select;
* ``begin_stop()`` at shutdown (and, for plain daemons, before a reload's
  re-exec, as uWSGI): SIGTERM to each process group; from then on
  ``next_deadline`` is the SIGKILL deadline (``mercy`` seconds later) and
  ``stopped()`` says when every one is gone. Nothing sleeps: the master's loop
  waits (SIGCHLD wakes it for our children; a smart daemon's pidfile process,
  not our child, is looked at every ``STOP_POLL`` seconds). ``stop()`` is the
  blocking form for callers without a loop.

Cron lines are ``MINUTE HOUR DAY MONTH WEEKDAY COMMAND``; a field is a number, ``-1``
(any) or ``-N`` (every N: the value is a multiple of N). Weekday 0 is Sunday. A job
still running when its next time comes is not started twice (said in the log).
The clock is injectable (``clock``, seconds since the epoch) so cron is testable
without waiting for real minutes.

Must not know: workers, sockets, WSGI.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

__all__ = ["CronJob", "Daemons", "Group", "cron_due", "parse_cron", "from_config"]

QUICK_DEATH = 1.0  # seconds: a daemon that dies sooner is restarted with back-off
PIDFILE_CHECK = 1.0  # seconds between smart-attach-daemon pidfile checks
STOP_POLL = 0.1  # seconds between looks at a stopping process that is not our child


class _Proc:
    """One command the master keeps: its current process, when to (re)start it."""

    def __init__(self, kind: str, cmd: str, pidfile: str | None = None) -> None:
        self.kind = kind  # attach-daemon, smart-attach-daemon or cron
        self.cmd = cmd
        self.pidfile = pidfile
        self.popen: subprocess.Popen | None = None
        self.started = 0.0
        self.restart_at: float | None = None
        self.quick_deaths = 0

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None


class CronJob(_Proc):
    def __init__(self, fields: tuple[int, int, int, int, int], cmd: str) -> None:
        super().__init__("cron", cmd)
        self.fields = fields

    def due(self, t: time.struct_time) -> bool:
        """Does the job run in the minute ``t`` (local time)?"""
        return cron_due(self.fields, t)


def cron_due(fields: tuple[int, ...], t: time.struct_time) -> bool:
    """Whether uWSGI cron fields (minute, hour, day, month, weekday; -1 any, -N
    every N; weekday 0 is Sunday) match the minute ``t`` (local time)."""
    values = (t.tm_min, t.tm_hour, t.tm_mday, t.tm_mon, (t.tm_wday + 1) % 7)
    return all(_field_matches(f, v) for f, v in zip(fields, values, strict=True))


def _field_matches(field: int, value: int) -> bool:
    if field == -1:
        return True
    if field < -1:
        return value % -field == 0
    return value == field


def parse_cron(value: str) -> CronJob:
    """``"-5 -1 -1 -1 -1 cmd"`` -> a ``CronJob``; ValueError says what is wrong."""
    parts = value.split(None, 5)
    if len(parts) < 6:
        raise ValueError("expected MINUTE HOUR DAY MONTH WEEKDAY COMMAND")
    fields = []
    for text, (name, lo, hi) in zip(
        parts[:5],
        (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6)),
        strict=True,
    ):
        try:
            n = int(text)
        except ValueError:
            raise ValueError(
                f"{name} {text!r}: expected a number, -1 (any) or -N (every N)"
            ) from None
        if n >= 0 and not lo <= n <= hi:
            raise ValueError(f"{name} {n}: expected {lo}..{hi}, -1 (any) or -N (every N)")
        fields.append(n)
    return CronJob(tuple(fields), parts[5])  # type: ignore[arg-type]


def from_config(cfg, log: Callable[[str], None], clock: Callable[[], float] = time.time):
    """The ``Daemons`` for ``cfg``, or None when it asks for none."""
    daemons = Daemons(log, clock)
    for cmd in cfg.attach_daemon:
        daemons.procs.append(_Proc("attach-daemon", cmd))
    for value in cfg.smart_attach_daemon:
        pidfile, _, cmd = value.strip().partition(" ")
        if not cmd.strip():
            log(f"warning: smart-attach-daemon = {value}: expected PIDFILE COMMAND; ignored")
            continue
        daemons.procs.append(_Proc("smart-attach-daemon", cmd.strip(), pidfile))
    for value in cfg.cron:
        try:
            daemons.procs.append(parse_cron(value))
        except ValueError as exc:
            log(f"warning: cron = {value}: {exc}; ignored")
    return daemons if daemons.procs else None


class Daemons:
    """The master's extra processes. See the module docstring."""

    def __init__(self, log: Callable[[str], None], clock: Callable[[], float] = time.time) -> None:
        self.log = log
        self.clock = clock
        self.procs: list[_Proc] = []
        self.last_minute: int | None = None
        self.next_pidfile_check = 0.0
        self.halted = False  # stopping or stopped: nothing (re)starts
        self.stopping: dict[int, bool] = {}  # pid being stopped -> is it our child
        self.kill_at: float | None = None  # SIGKILL for what is left, then
        self.mercy = 0.0

    # -- the master's calls ------------------------------------------------------

    def start(self) -> None:
        self.last_minute = int(self.clock() // 60)
        for proc in self.procs:
            if proc.kind == "attach-daemon":
                self._spawn(proc)
            elif proc.kind == "smart-attach-daemon" and _pidfile_pid(proc.pidfile) is None:
                self._spawn(proc)

    def tick(self) -> None:
        if self.halted:
            return
        now = time.monotonic()
        for proc in self.procs:
            if proc.restart_at is not None and now >= proc.restart_at:
                proc.restart_at = None
                self._spawn(proc)
        if now >= self.next_pidfile_check:
            self.next_pidfile_check = now + PIDFILE_CHECK
            for proc in self.procs:
                if (
                    proc.kind == "smart-attach-daemon"
                    and proc.popen is None
                    and proc.restart_at is None
                    and _pidfile_pid(proc.pidfile) is None
                ):
                    self.log(f"smart-attach-daemon {proc.cmd!r}: no live pid in {proc.pidfile}")
                    self._spawn(proc)
        minute = int(self.clock() // 60)
        if self.last_minute is None:
            self.last_minute = minute
        if minute != self.last_minute:
            self.last_minute = minute
            t = time.localtime(minute * 60)
            for proc in self.procs:
                if isinstance(proc, CronJob) and proc.due(t):
                    if proc.popen is not None:
                        self.log(
                            f"cron {proc.cmd!r}: still running (pid {proc.pid}); not started again"
                        )
                        continue
                    self._spawn(proc)

    def next_deadline(self) -> float | None:
        """Monotonic time of the next thing ``tick`` has to do, or None."""
        now = time.monotonic()
        if self.halted:
            deadlines = [self.kill_at] if self.kill_at is not None else []
            if any(not child for child in self.stopping.values()):
                deadlines.append(now + STOP_POLL)
            return min(deadlines) if deadlines else None
        deadlines = [p.restart_at for p in self.procs if p.restart_at is not None]
        if any(p.kind == "smart-attach-daemon" for p in self.procs):
            deadlines.append(max(self.next_pidfile_check, now))
        if any(isinstance(p, CronJob) for p in self.procs):
            wall = self.clock()
            deadlines.append(now + (60 - wall % 60) + 0.01)
        return min(deadlines) if deadlines else None

    def reaped(self, pid: int, status: int) -> bool:
        """The master reaped ``pid``: True when it was one of ours."""
        if pid in self.stopping:
            self._stopped_child(pid, status)
            return True
        for proc in self.procs:
            if proc.pid == pid:
                self._ended(proc, status)
                return True
        return False

    def begin_stop(self, mercy: float = 5.0, smart: bool = True) -> None:
        """Stop our processes (smart daemons' pidfile processes too when ``smart``):
        SIGTERM to each process group now, SIGKILL after ``mercy`` seconds (see
        ``stopped``)."""
        self.halted = True
        self.mercy = mercy
        for proc in self.procs:
            proc.restart_at = None
            if proc.kind == "smart-attach-daemon":
                if not smart:
                    continue
                target = _pidfile_pid(proc.pidfile)
                if target is not None:
                    _signal(target, signal.SIGTERM)
                    self.stopping[target] = False
            if proc.popen is not None:
                _signal(-proc.popen.pid, signal.SIGTERM)
                self.stopping[proc.popen.pid] = True
        self.kill_at = time.monotonic() + mercy if self.stopping else None

    def stopped(self) -> bool:
        """True once every process ``begin_stop`` stopped is gone; past the mercy,
        what is left gets SIGKILL."""
        for pid, child in list(self.stopping.items()):
            if child:
                self._reap_one(pid)
            if not _alive(pid):
                self.stopping.pop(pid, None)
        if self.stopping and self.kill_at is not None and time.monotonic() >= self.kill_at:
            self.kill_at = None
            for pid in self.stopping:
                self.log(f"daemon pid {pid} did not stop within {self.mercy:g}s: SIGKILL")
                _signal(-pid, signal.SIGKILL)
                _signal(pid, signal.SIGKILL)
        if not self.stopping:
            for proc in self.procs:
                if proc.popen is not None and not _alive(proc.popen.pid):
                    proc.popen = None
        return not self.stopping

    def stop(self, mercy: float = 5.0, smart: bool = True) -> None:
        """``begin_stop`` and wait until ``stopped``: for callers without a loop
        (the master never calls it)."""
        self.begin_stop(mercy, smart)
        while not self.stopped():
            time.sleep(0.01)

    # -- inside ------------------------------------------------------------------

    def _spawn(self, proc: _Proc) -> None:
        try:
            # lazily: only a master with attach-daemon/cron lines starts processes
            # this way (in the try: out of descriptors, the import fails too)
            import subprocess

            proc.popen = subprocess.Popen(
                ["/bin/sh", "-c", proc.cmd],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            self.log(f"{proc.kind} {proc.cmd!r}: cannot start: {exc.strerror}")
            proc.restart_at = time.monotonic() + 5.0
            return
        proc.started = time.monotonic()
        self.log(f"{proc.kind} {proc.cmd!r} started (pid {proc.popen.pid})")

    def _ended(self, proc: _Proc, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        if proc.popen is not None:
            proc.popen.returncode = code  # reaped by the master, not by Popen
        proc.popen = None
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if proc.kind == "cron":
            if code != 0:
                self.log(f"cron {proc.cmd!r} {how}")
            return
        if proc.kind == "smart-attach-daemon":
            return  # the pidfile check decides whether it runs again
        age = time.monotonic() - proc.started
        if age < QUICK_DEATH:
            proc.quick_deaths += 1
            delay = min(0.1 * 2 ** min(proc.quick_deaths, 7), 10.0)
        else:
            proc.quick_deaths = 0
            delay = 0.0
        self.log(f"attach-daemon {proc.cmd!r} {how} after {age:.1f}s; restarting in {delay:.1f}s")
        proc.restart_at = time.monotonic() + delay

    def _reap_one(self, pid: int) -> None:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if got:
            self._stopped_child(got, status)

    def _stopped_child(self, pid: int, status: int) -> None:
        """A child ``begin_stop`` stopped was reaped (by the master or by us)."""
        self.stopping.pop(pid, None)
        for proc in self.procs:
            if proc.pid == pid and proc.popen is not None:
                proc.popen.returncode = os.waitstatus_to_exitcode(status)
                proc.popen = None


def _pidfile_pid(path: str | None) -> int | None:
    """The live pid named in ``path``, or None."""
    if not path:
        return None
    try:
        with open(path) as fh:
            pid = int(fh.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Group:
    """Several sets of extra processes (``Daemons``, the spoolers ...) behind the one
    interface the master calls: each call goes to every member."""

    def __init__(self, members: list) -> None:
        self.members = members

    @property
    def halted(self) -> bool:
        return all(m.halted for m in self.members)

    def start(self) -> None:
        for m in self.members:
            m.start()

    def tick(self) -> None:
        for m in self.members:
            m.tick()

    def next_deadline(self) -> float | None:
        due = [d for d in (m.next_deadline() for m in self.members) if d is not None]
        return min(due) if due else None

    def reaped(self, pid: int, status: int) -> bool:
        return any(m.reaped(pid, status) for m in self.members)

    def begin_stop(self, mercy: float = 5.0, smart: bool = True) -> None:
        for m in self.members:
            m.begin_stop(mercy, smart=smart)

    def stopped(self) -> bool:
        return all([m.stopped() for m in self.members])
