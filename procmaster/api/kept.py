"""Processes the master keeps besides workers that run the app: spoolers and mules.

Theory of operation
-------------------
``Spoolers`` has the interface of the master's other extra processes
(``procmaster.daemons.Daemons``): ``start``, ``tick``, ``next_deadline``,
``reaped``, ``begin_stop``, ``stopped``, ``halted``, so the master runs it beside
them. Each slot (a spooler directory and index, a mule id) has at most one
process, forked through the ``fork`` callable the master gives with the slot's
argument (the child drops the master's descriptors and runs
``spooler.run_spooler`` or ``mules.run_mule``). A process that exits is forked
again: at once when it lived a second or more (``spooler-max-tasks`` ends them on
purpose), else after a back-off that doubles up to 30 seconds, said in the log.
``begin_stop`` sends SIGTERM (the current task finishes) and SIGKILL after the
mercy; before a reload's exec the master stops them and its next image starts
new ones, so no task is run by two images at once.

Must not know: the ``uwsgi`` module, workers, sockets, what a task or a mule does.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from ..ipc import describe_exit
from ..process import send_signal

__all__ = ["KeptProcesses"]

QUICK_DEATH = 1.0
MAX_BACKOFF = 30.0


class _Slot:
    __slots__ = ("label", "arg", "pid", "started", "restart_at", "backoff")

    def __init__(self, label: str, arg: object) -> None:
        self.label = label  # "spooler /var/spool", "mule 2"
        self.arg = arg
        self.pid = 0
        self.started = 0.0
        self.restart_at: float | None = None
        self.backoff = 0.0


class KeptProcesses:
    """Processes kept by the master (see the module docstring): ``slots`` is a list of
    (label, argument for ``fork``)."""

    def __init__(
        self,
        slots: list[tuple[str, object]],
        fork: Callable[[object], int],
        log: Callable[[str], None],
    ) -> None:
        self.fork = fork
        self.log = log
        self.slots = [_Slot(label, arg) for label, arg in slots]
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
            slot.pid = self.fork(slot.arg)
        except OSError as exc:
            self.log(f"{slot.label}: cannot fork: {exc}; trying again in 1s")
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
                            f"{slot.label} (pid {pid}) {describe_exit(status)}; starting another"
                        )
                    self._spawn(slot)
                else:
                    slot.backoff = min(max(slot.backoff * 2, 1.0), MAX_BACKOFF)
                    self.log(
                        f"{slot.label} (pid {pid}) {describe_exit(status)} "
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
                self.log(f"pid {pid} did not stop within {self.mercy:g}s: SIGKILL")
                send_signal(pid, signal.SIGKILL)
        return not self.pids()
