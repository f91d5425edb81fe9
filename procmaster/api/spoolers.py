"""The master's spooler processes: ``spooler = DIR`` (repeatable) x ``spooler-processes``.

Theory of operation
-------------------
``Spoolers`` has the interface of the master's other extra processes
(``procmaster.daemons.Daemons``): ``start``, ``tick``, ``next_deadline``,
``reaped``, ``begin_stop``, ``stopped``, ``halted``, so the master runs it beside
them. Each (directory, index) slot has at most one process, forked through
the ``fork`` callable the master gives (the child drops the master's
descriptors and runs ``spooler.run_spooler``). A process that exits is forked
again: at once when it lived a second or more (``spooler-max-tasks`` ends them on
purpose), else after a back-off that doubles up to 30 seconds, said in the log.
``begin_stop`` sends SIGTERM (the current task finishes) and SIGKILL after the
mercy; before a reload's exec the master stops them and its next image starts
new ones, so no task is run by two images at once.

Must not know: the ``uwsgi`` module, workers, sockets, what a task does.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from ..ipc import describe_exit
from ..process import send_signal

__all__ = ["Spoolers"]

QUICK_DEATH = 1.0
MAX_BACKOFF = 30.0


class _Slot:
    __slots__ = ("directory", "index", "pid", "started", "restart_at", "backoff")

    def __init__(self, directory: str, index: int) -> None:
        self.directory = directory
        self.index = index
        self.pid = 0
        self.started = 0.0
        self.restart_at: float | None = None
        self.backoff = 0.0


class Spoolers:
    """Spooler processes kept by the master (see the module docstring)."""

    def __init__(
        self,
        directories: list[str],
        processes: int,
        fork: Callable[[str], int],
        log: Callable[[str], None],
    ) -> None:
        self.fork = fork
        self.log = log
        self.slots = [_Slot(d, i) for d in directories for i in range(max(1, processes))]
        self.halted = False
        self.kill_at: float | None = None
        self.mercy = 0.0

    def pids(self) -> list[int]:
        return [s.pid for s in self.slots if s.pid]

    def start(self) -> None:
        for slot in self.slots:
            self._spawn(slot)

    def _spawn(self, slot: _Slot) -> None:
        slot.restart_at = None
        try:
            slot.pid = self.fork(slot.directory)
        except OSError as exc:
            self.log(f"spooler {slot.directory}: cannot fork: {exc}; trying again in 1s")
            slot.restart_at = time.monotonic() + 1.0
            return
        slot.started = time.monotonic()

    def tick(self) -> None:
        if self.halted:
            return
        now = time.monotonic()
        for slot in self.slots:
            if not slot.pid and slot.restart_at is not None and now >= slot.restart_at:
                self._spawn(slot)

    def next_deadline(self) -> float | None:
        if self.halted:
            return self.kill_at
        due = [s.restart_at for s in self.slots if s.restart_at is not None]
        return min(due) if due else None

    def reaped(self, pid: int, status: int) -> bool:
        for slot in self.slots:
            if slot.pid == pid:
                slot.pid = 0
                if self.halted:
                    return True
                lived = time.monotonic() - slot.started
                code = os.waitstatus_to_exitcode(status)
                if lived >= QUICK_DEATH:
                    slot.backoff = 0.0
                    if code != 0:
                        self.log(
                            f"spooler {slot.directory} (pid {pid}) "
                            f"{describe_exit(status)}; starting another"
                        )
                    self._spawn(slot)
                else:
                    slot.backoff = min(max(slot.backoff * 2, 1.0), MAX_BACKOFF)
                    self.log(
                        f"spooler {slot.directory} (pid {pid}) {describe_exit(status)} "
                        f"after {lived:.1f}s; starting another in {slot.backoff:g}s"
                    )
                    slot.restart_at = time.monotonic() + slot.backoff
                return True
        return False

    def begin_stop(self, mercy: float = 5.0, smart: bool = True) -> None:
        self.halted = True
        self.mercy = mercy
        for slot in self.slots:
            slot.restart_at = None
            if slot.pid:
                send_signal(slot.pid, signal.SIGTERM)
        self.kill_at = time.monotonic() + mercy if self.pids() else None

    def stopped(self) -> bool:
        for slot in self.slots:
            if slot.pid:
                try:
                    pid, _ = os.waitpid(slot.pid, os.WNOHANG)
                except ChildProcessError:
                    pid = slot.pid
                if pid:
                    slot.pid = 0
        if self.pids() and self.kill_at is not None and time.monotonic() >= self.kill_at:
            self.kill_at = None
            for pid in self.pids():
                self.log(f"spooler pid {pid} did not stop within {self.mercy:g}s: SIGKILL")
                send_signal(pid, signal.SIGKILL)
        return not self.pids()
