"""The worker table: who the workers are, forking them, stopping and killing them.

Theory of operation
-------------------
``WorkerTable`` holds one ``WorkerProc`` per live worker (pid, worker id, its
scoreboard slot, its generation, ready or not, when it was asked to stop and
when it is killed if it has not stopped). A reload starts a new *generation*;
the workers of earlier ones are the old workers, draining.

* ``spawn(wid)``: a free scoreboard slot, then the fork (the ``fork`` callable
  the master hands in: the child never returns from it). No free slot (three
  generations draining at once) is logged and retried a second later, never
  raised out of the master's loop.
* ``ended(pid, status)``: the slot is released; the worker's harakiri count
  stays with its worker id (uWSGI's stats count them per worker, across
  respawns).
* ``schedule_respawn``: a worker that dies young (before it was ready or within
  a second) is respawned with a back-off that counts the young deaths of all
  workers, so N workers of an app that cannot start make only a few forks a second.
* ``stop``/``murder``: SIGTERM (or another signal) with a mercy, SIGKILL past it.
* ``resize``: SIGTTIN/SIGTTOU, the FIFO's ``+``/``-`` and cheaper change the number
  of workers, never above ``ceiling`` (``max(4 × processes, 16)``; said once in
  the log when reached).

Must not know: what a worker runs (the ``fork`` callable does), reload plans.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

from ..ipc import SIG_STOP
from ..process import send_signal
from ..scoreboard import Scoreboard, Slot

__all__ = ["TableOps", "WorkerProc", "WorkerTable", "forker", "worker_ceiling"]

NO_SLOT_RETRY = 1.0  # seconds before trying again to spawn when the scoreboard is full
YOUNG = 1.0  # seconds: a worker that dies sooner died young


def forker(
    run_child: Callable[[int, int], None],
    blocked: tuple[int, ...],
    before: Callable[[int], None] | None = None,
    after: Callable[[bool], None] | None = None,
):
    """The ``fork`` of a ``WorkerTable``: (worker id, slot) -> the child's pid; the
    child runs ``run_child`` and never returns. ``before(wid)`` runs just before,
    ``after(forked)`` in the master just after (also when the fork failed)."""

    def fork(wid: int, slot: int) -> int:
        if before is not None:
            before(wid)
        sys.stdout.flush()
        sys.stderr.flush()
        # the child inherits the mask: a SIGTERM that arrives before the worker has
        # its own handlers waits for them instead of hitting the master's no-op
        signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
            if after is not None:
                after(False)
            raise
        if pid:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
            if after is not None:
                after(True)
            return pid
        try:
            run_child(wid, slot)
        finally:
            os._exit(1)  # not reached: a worker exits on its own

    return fork


def worker_ceiling(processes: int) -> int:
    """The most workers SIGTTIN / FIFO ``+`` may run: 4 × ``processes``, at least 16."""
    return max(4 * max(processes, 1), 16)


class WorkerProc:
    __slots__ = (
        "wid",
        "pid",
        "slot",
        "board",
        "generation",
        "born",
        "ready",
        "stop_sent",
        "kill_at",
    )

    def __init__(
        self, wid: int, pid: int, slot: int, generation: int, board: Scoreboard | None
    ) -> None:
        self.wid = wid
        self.pid = pid
        self.slot = slot  # -1: none (its scoreboard was not handed over)
        self.board = board
        self.generation = generation
        self.born = time.monotonic()
        self.ready = False
        self.stop_sent = 0.0
        self.kill_at = 0.0

    def read_slot(self) -> Slot | None:
        return self.board.read(self.slot) if self.board is not None and self.slot >= 0 else None

    def busy(self) -> list[tuple[int, float, str]]:
        """The requests it runs: (core, start time, description)."""
        return self.board.busy(self.slot) if self.board is not None and self.slot >= 0 else []

    def count_harakiri(self) -> None:
        if self.board is not None and self.slot >= 0:
            self.board.count_harakiri(self.slot)


class WorkerTable:
    """The live workers; see the module docstring."""

    def __init__(
        self,
        board: Scoreboard,
        fork: Callable[[int, int], int],
        log: Callable[[str], None],
        processes: int,
        ceiling: int,
    ) -> None:
        self.board = board
        self.fork = fork  # (worker id, slot) -> pid, in the parent
        self.log = log
        self.procs: dict[int, WorkerProc] = {}  # pid -> worker
        self.generation = 1
        self.processes = processes  # how many workers are wanted now
        self.ceiling = ceiling
        self.ceiling_said = False
        self.respawn_at: dict[int, float] = {}  # wid -> when
        self.young_deaths: dict[int, int] = {}  # wid -> deaths in a row
        self.respawns: dict[int, int] = {}  # wid -> times forked
        self.harakiris: dict[int, int] = {}  # wid -> harakiri kills of that worker id

    # -- views ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.procs)

    def all(self) -> list[WorkerProc]:
        return list(self.procs.values())

    def get(self, pid: int) -> WorkerProc | None:
        return self.procs.get(pid)

    def current(self) -> list[WorkerProc]:
        return [w for w in self.procs.values() if w.generation == self.generation]

    def old(self) -> list[WorkerProc]:
        """Workers of earlier generations not yet asked to stop."""
        return [
            w for w in self.procs.values() if w.generation != self.generation and not w.stop_sent
        ]

    def all_ready(self) -> bool:
        current = self.current()
        return len(current) >= self.processes and all(w.ready for w in current)

    def slots(self) -> list[tuple[WorkerProc, Slot]]:
        """Every worker with a slot and its slot, by (worker id, pid)."""
        out = []
        for proc in sorted(self.procs.values(), key=lambda w: (w.wid, w.pid)):
            slot = proc.read_slot()
            if slot is not None:
                out.append((proc, slot))
        return out

    # -- forking -------------------------------------------------------------------------

    def spawn(self, wid: int) -> None:
        """A worker ``wid`` of the current generation, now."""
        self.respawn_at.pop(wid, None)
        slot = self.board.free_slot()
        if slot < 0:
            self.log(
                f"no free scoreboard slot for worker {wid} (old workers still draining): "
                f"trying again in {NO_SLOT_RETRY:g}s"
            )
            self.respawn_at[wid] = time.monotonic() + NO_SLOT_RETRY
            return
        self.board.claim(slot, harakiri=self.harakiris.get(wid, 0), wid=wid)
        pid = self.fork(wid, slot)
        self.board.set_pid(slot, pid)
        self.procs[pid] = WorkerProc(wid, pid, slot, self.generation, self.board)
        self.respawns[wid] = self.respawns.get(wid, 0) + 1

    def ensure(self, wid: int) -> None:
        """A current worker ``wid`` unless one is alive or its respawn is due."""
        if wid in self.respawn_at or any(w.wid == wid for w in self.current()):
            return
        self.spawn(wid)

    def adopt(self, pid: int, wid: int, slot: int, board: Scoreboard | None) -> None:
        """A worker of the previous image of this master (a reload's exec)."""
        proc = WorkerProc(wid, pid, slot, 0, board)
        proc.ready = True
        self.procs[pid] = proc
        if board is not None and slot >= 0:
            self.harakiris[wid] = max(self.harakiris.get(wid, 0), board.read(slot).harakiri)

    def new_generation(self) -> None:
        self.generation += 1
        self.respawn_at.clear()

    def ended(self, pid: int, status: int) -> WorkerProc | None:
        """The worker ``pid`` was reaped: forget it and free its slot."""
        proc = self.procs.pop(pid, None)
        if proc is None:
            return None
        if proc.board is not None and proc.slot >= 0:
            count = proc.board.read(proc.slot).harakiri
            if count:
                self.harakiris[proc.wid] = max(self.harakiris.get(proc.wid, 0), count)
            proc.board.release(proc.slot)
        return proc

    def schedule_respawn(self, proc: WorkerProc, describe: str) -> None:
        """Respawn ``proc``'s worker id: at once, or after a back-off if it died young."""
        now = time.monotonic()
        if not proc.ready or now - proc.born < YOUNG:
            self.young_deaths[proc.wid] = self.young_deaths.get(proc.wid, 0) + 1
            n = sum(self.young_deaths.values())
            delay = min(0.25 * (2 ** min(n - 1, 10)), 10.0)
            if n >= 2:
                self.log(
                    f"worker {proc.wid} keeps dying at start-up ({describe}; "
                    f"{n} times): next try in {delay:.1f}s"
                )
            self.respawn_at[proc.wid] = now + delay
        else:
            self.respawn_at[proc.wid] = now

    def respawn_now(self, wid: int) -> None:
        self.respawn_at[wid] = time.monotonic()

    def mark_ready(self, pid: int) -> None:
        proc = self.procs.get(pid)
        if proc is not None:
            proc.ready = True
            self.young_deaths.pop(proc.wid, None)

    def respawn_due(self) -> None:
        """Spawn the workers whose respawn time came."""
        now = time.monotonic()
        for wid, when in list(self.respawn_at.items()):
            if now >= when:
                alive = {w.wid for w in self.current()}
                if wid in alive or wid > self.processes:
                    self.respawn_at.pop(wid, None)
                    continue
                self.spawn(wid)

    def resize(self, delta: int, mercy: float) -> bool:
        """One worker more or less (SIGTTIN / SIGTTOU, cheaper); False if unchanged."""
        current = self.processes
        new = max(1, current + delta)
        if new > self.ceiling:
            if not self.ceiling_said:
                self.ceiling_said = True
                self.log(
                    f"workers: {current} is the maximum (4 x processes, at least 16): "
                    "asking for more is ignored"
                )
            return False
        if new == current:
            return False
        self.processes = new
        if delta > 0:
            self.spawn(new)
        else:
            for proc in self.current():
                if proc.wid == current:
                    self.stop(proc, mercy)
        self.log(f"workers: {current} -> {new}")
        return True

    # -- stopping ------------------------------------------------------------------------

    def stop(self, proc: WorkerProc, mercy: float, sig: int = SIG_STOP) -> None:
        if proc.stop_sent:
            return
        proc.stop_sent = time.monotonic()
        proc.kill_at = proc.stop_sent + mercy
        send_signal(proc.pid, sig)

    def stop_all(self, mercy: float) -> None:
        self.respawn_at.clear()
        for proc in list(self.procs.values()):
            self.stop(proc, mercy)

    def kill_all(self) -> None:
        self.respawn_at.clear()
        now = time.monotonic()
        for proc in list(self.procs.values()):
            proc.stop_sent = proc.stop_sent or now
            proc.kill_at = now + 3.0
            send_signal(proc.pid, signal.SIGKILL)

    def abandon_new(self, keep_ready: bool) -> None:
        """A reload's new workers cannot start: kill them (keeping the ready ones
        when ``keep_ready``); the survivors are the current generation."""
        for proc in list(self.procs.values()):
            if proc.generation == self.generation and not (keep_ready and proc.ready):
                self.stop(proc, 1.0, signal.SIGKILL)
                self.respawn_at.pop(proc.wid, None)
        for proc in self.procs.values():
            if not proc.stop_sent:
                proc.generation = self.generation

    def murder(self) -> None:
        """SIGKILL for the stopping workers past their mercy."""
        now = time.monotonic()
        for proc in list(self.procs.values()):
            if proc.kill_at and now >= proc.kill_at:
                self.log(
                    f"worker {proc.wid} (pid {proc.pid}) did not stop within its mercy: SIGKILL"
                )
                proc.kill_at = 0.0
                send_signal(proc.pid, signal.SIGKILL)

    def signal_all(self, sig: int) -> None:
        for proc in list(self.procs.values()):
            send_signal(proc.pid, sig)

    def next_deadline(self) -> float | None:
        times = [w.kill_at for w in self.procs.values() if w.kill_at]
        times.extend(self.respawn_at.values())
        return min(times) if times else None


class TableOps:
    """The planner's operations (``procmaster.master.reload.ReloadOps``): this
    table's, plus the three callables of a full reload and sd_notify."""

    def __init__(self, table: WorkerTable, mercy: float, start_probe, exec_master, reloading):
        self.table = table
        self.mercy = mercy
        self.start_probe = start_probe
        self.exec_master = exec_master
        self.reloading = reloading

    def wanted(self) -> int:
        return self.table.processes

    def current(self) -> list[WorkerProc]:
        return self.table.current()

    def old(self) -> list[WorkerProc]:
        return self.table.old()

    def worker(self, pid: int) -> WorkerProc | None:
        return self.table.get(pid)

    def new_generation(self) -> None:
        self.table.new_generation()

    def spawn(self, wid: int) -> None:
        self.table.ensure(wid)

    def stop(self, worker: WorkerProc, brutal: bool) -> None:
        self.table.stop(worker, 0.0 if brutal else self.mercy)

    def abandon_new(self, keep_ready: bool) -> None:
        self.table.abandon_new(keep_ready)
