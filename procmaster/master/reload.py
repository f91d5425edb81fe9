"""Reloads: one request type for every trigger, one planner that carries it out.

Theory of operation
-------------------
Every way to ask for a reload (a signal, a touched file, a master FIFO letter, the
emperor, py-autoreload) builds a ``ReloadRequest``: its ``kind`` (``FULL``: re-read
the INI and re-import the app in a re-executed master; ``WORKERS``: new workers
forked from this master; ``CHAIN``: workers replaced one at a time), the reason
the log gives, and ``brutal`` (old workers killed as soon as the new ones are
ready, without finishing their requests). The tables that map triggers to
requests are in ``procmaster.master.triggers``.

``ReloadPlanner`` is a small state machine (``Phase``):

* ``IDLE`` -- a request starts at once (``reloads`` counts it);
* ``PROBING`` -- a full reload first checks the new config and app in a fresh
  interpreter; ``probe_done(ok)`` either aborts (the old workers go on serving)
  or moves to ``EXECUTING``, where the master re-executes itself; the next image
  ``adopt``\\ s the handed-over state and is ``STARTING``;
* ``STARTING`` -- a new generation starts; once all of it is ready the old
  workers are asked to stop (``progress``);
* ``CHAINING`` -- one old worker at a time: its replacement is ready before it
  is asked to stop, so capacity never drops.

While a reload runs, one more request is queued: the strongest of those asked
for (``FULL`` > ``CHAIN`` > ``WORKERS``; the later one on a tie). New workers
that die before they are ready abort the reload (``replacing``, ``abort``): the old
ones stay (in a chain, the replacements already up stay too).

The planner does nothing itself: it is handed ``ReloadOps``, the few operations
it needs (spawn a worker, stop one, start a generation, start the probe, exec),
so it is tested without processes. ``report`` (optional) is told when a request
starts (``running``) and how it ended (``done``, or ``aborted`` with why), which
the master writes beside its pidfile (``ipc.ReloadStatus``).

Must not know: processes, signals, sockets, the scoreboard, config values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from enum import Enum
from typing import NamedTuple, Protocol

from ..ipc import RELOAD_ABORTED, RELOAD_DONE, RELOAD_RUNNING, ReexecState

__all__ = ["Phase", "ReloadKind", "ReloadOps", "ReloadPlanner", "ReloadRequest", "WorkerView"]


class ReloadKind(Enum):
    """What a reload replaces. The values are the words of the option table's
    ``watch`` field and of a queued request handed across a re-exec."""

    WORKERS = "workers"
    CHAIN = "chain"
    FULL = "reload"

    @property
    def strength(self) -> int:
        """When two requests queue, the stronger one is kept."""
        return _STRENGTH.index(self)


_STRENGTH = (ReloadKind.WORKERS, ReloadKind.CHAIN, ReloadKind.FULL)


class ReloadRequest(NamedTuple):
    kind: ReloadKind
    reason: str
    brutal: bool = False


class Phase(Enum):
    IDLE = "idle"
    PROBING = "probing"  # a full reload's check runs in a fresh interpreter
    EXECUTING = "executing"  # the check passed: the master re-executes itself
    STARTING = "starting"  # a new generation starts; the old one waits
    CHAINING = "chaining"  # replacing the old workers one at a time


class WorkerView(Protocol):
    """What the planner reads of a worker."""

    wid: int
    pid: int
    ready: bool


class ReloadOps(Protocol):
    """The operations the planner is handed (the master's worker table and process)."""

    def wanted(self) -> int:
        """How many workers the master keeps."""

    def current(self) -> Sequence[WorkerView]:
        """The live workers of the current generation."""

    def old(self) -> Sequence[WorkerView]:
        """The live workers of earlier generations not yet asked to stop."""

    def worker(self, pid: int) -> WorkerView | None:
        """The live worker ``pid``, or None."""

    def new_generation(self) -> None:
        """From now on, spawned workers are the current generation."""

    def spawn(self, wid: int) -> None:
        """A current worker ``wid``, unless one is alive or its respawn is due."""

    def stop(self, worker: WorkerView, brutal: bool) -> None:
        """Ask ``worker`` to finish its requests and stop (at once when brutal)."""

    def abandon_new(self, keep_ready: bool) -> None:
        """Kill the current generation (but its ready workers when ``keep_ready``);
        the survivors become the current generation."""

    def start_probe(self, request: ReloadRequest) -> bool:
        """Check the new config and app in a fresh interpreter; False if it cannot start."""

    def exec_master(self, state: ReexecState) -> bool:
        """Re-execute the master with ``state`` (the old workers are added to it);
        False when that failed."""

    def reloading(self, status: str) -> None:
        """A reload starts (sd_notify)."""


class ReloadPlanner:
    """The reload state machine; see the module docstring."""

    def __init__(
        self,
        ops: ReloadOps,
        log: Callable[[str], None],
        lazy: bool = False,
        clock: Callable[[], float] = time.time,
        report: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.ops = ops
        self.log = log
        # (state, reason, detail) when a reload starts and ends (``ipc.ReloadStatus``)
        self.report = report
        self.lazy = lazy
        self.clock = clock
        self.phase = Phase.IDLE
        self.active: ReloadRequest | None = None
        self.pending: ReloadRequest | None = None
        self.t0 = 0.0
        self.old_pids: list[int] = []
        self.chain: list[int] = []  # old workers still to replace, in order
        self.reloads = 0
        self.closed = False  # shutting down: requests are ignored
        self._start = {
            ReloadKind.FULL: self._start_full,
            ReloadKind.WORKERS: self._start_workers,
            ReloadKind.CHAIN: self._start_chain,
        }

    @property
    def busy(self) -> bool:
        return self.phase is not Phase.IDLE

    @property
    def brutal(self) -> bool:
        return self.active is not None and self.active.brutal

    # -- requests ------------------------------------------------------------------------

    def request(self, req: ReloadRequest) -> None:
        if self.closed:
            return
        if self.busy:
            pending = self.pending
            if pending is None or req.kind.strength >= pending.kind.strength:
                self.pending = req
            if pending is None:
                self.log(f"reload requested ({req.reason}) during a reload: queued")
            return
        self.reloads += 1
        self.active = req
        self.t0 = self.clock()
        self._report(RELOAD_RUNNING)
        self.ops.reloading(f"reloading ({req.reason})")
        self._start[req.kind](req)

    def close(self) -> None:
        """Shutting down: nothing more starts."""
        self.closed = True
        self.pending = None

    def _start_full(self, req: ReloadRequest) -> None:
        self.log(f"reload requested ({req.reason}): checking the new configuration and app")
        self.phase = Phase.PROBING
        if not self.ops.start_probe(req):
            self._finish(RELOAD_ABORTED, "the check of the new code could not start")

    def _start_workers(self, req: ReloadRequest) -> None:
        self.old_pids = [w.pid for w in self.ops.current()]
        self.ops.new_generation()
        wanted = self.ops.wanted()
        self.log(f"reload requested ({req.reason}): starting {wanted} new worker(s)")
        self.phase = Phase.STARTING
        for wid in range(1, wanted + 1):
            self.ops.spawn(wid)

    def _start_chain(self, req: ReloadRequest) -> None:
        if not self.lazy:
            self.log(
                f"warning: {req.reason}: chain reload without lazy-apps forks the app the master "
                "loaded at start-up (new code needs lazy-apps, as in uWSGI)"
            )
        old = sorted(self.ops.current(), key=lambda w: w.wid)
        self.ops.new_generation()
        self.old_pids = [w.pid for w in old]
        self.chain = list(self.old_pids)
        self.phase = Phase.CHAINING
        self.log(
            f"chain reload requested ({req.reason}): replacing {len(old)} worker(s) one by one"
        )
        self.progress()

    # -- a full reload across the exec ---------------------------------------------------

    def probe_done(self, ok: bool, detail: str = "") -> None:
        if self.phase is not Phase.PROBING or self.active is None:
            return
        if not ok:
            self.log(
                f"reload ({self.active.reason}) aborted: the new configuration or app does not "
                "load (see above); the running workers go on serving"
            )
            why = "the new configuration or app does not load"
            self._finish(RELOAD_ABORTED, f"{why}: {detail}" if detail else why)
            return
        pending = self.pending
        state = ReexecState(
            reason=self.active.reason,
            t0=self.t0,
            pending=(pending.kind.value, pending.reason, pending.brutal) if pending else None,
            brutal=self.active.brutal,
            reloads=self.reloads,
        )
        self.phase = Phase.EXECUTING
        if not self.ops.exec_master(state):
            self._finish(RELOAD_ABORTED, "the master could not re-execute itself")

    def adopt(self, state: ReexecState) -> None:
        """In the re-executed image: the reload goes on (the old workers wait for
        the new ones)."""
        self.reloads = state.reloads
        self.active = ReloadRequest(ReloadKind.FULL, state.reason, state.brutal)
        self.t0 = state.t0 or self.clock()
        self.old_pids = [pid for pid, _ in state.old]
        self.phase = Phase.STARTING
        self.pending = None
        if state.pending:
            kind, reason, brutal = state.pending
            try:
                self.pending = ReloadRequest(ReloadKind(kind), reason, brutal)
            except ValueError:
                pass

    # -- progress ------------------------------------------------------------------------

    def progress(self) -> None:
        """After every change of the workers: stop old ones whose replacements are
        ready; when none is left to replace, the reload is done."""
        ops = self.ops
        brutal = self.brutal
        if self.phase is Phase.STARTING:
            current = ops.current()
            if len(current) < ops.wanted() or not all(w.ready for w in current):
                return
            for proc in ops.old():
                ops.stop(proc, brutal)
        elif self.phase is Phase.CHAINING:
            chain = self.chain
            while chain:
                old = ops.worker(chain[0])
                if old is None:
                    chain.pop(0)
                    continue
                new = [w for w in ops.current() if w.wid == old.wid]
                if not new:
                    ops.spawn(old.wid)
                    return
                if not new[0].ready:
                    return
                ops.stop(old, brutal)
                chain.pop(0)
            current = ops.current()
        else:
            return
        took = self.clock() - self.t0
        reason = self.active.reason if self.active else "reload"
        self.log(
            f"reload ({reason}) done in {took:.2f}s: old workers "
            f"{sorted(self.old_pids) or '-'} stopping, new workers {sorted(w.pid for w in current)}"
        )
        self._finish(RELOAD_DONE, f"new workers {sorted(w.pid for w in current)}")

    @property
    def replacing(self) -> bool:
        """New workers are starting while old ones still serve: a new worker that
        dies before it is ready then aborts the reload (``abort``)."""
        return self.phase in (Phase.STARTING, Phase.CHAINING) and bool(self.ops.old())

    def exec_failed(self) -> None:
        """The master could not re-execute itself: the old image goes on."""
        if self.phase is Phase.EXECUTING:
            self._finish(RELOAD_ABORTED, "the master could not re-execute itself")

    def abort(self, why: str) -> None:
        if self.phase not in (Phase.STARTING, Phase.CHAINING):
            return
        self.ops.abandon_new(keep_ready=self.phase is Phase.CHAINING)
        reason = self.active.reason if self.active else "reload"
        self.log(f"reload ({reason}) aborted: {why}; the old workers go on serving")
        self._finish(RELOAD_ABORTED, why)

    def _report(self, state: str, detail: str = "") -> None:
        if self.report is not None and self.active is not None:
            self.report(state, self.active.reason, detail)

    def _finish(self, state: str, detail: str = "") -> None:
        self._report(state, detail)
        self.phase = Phase.IDLE
        self.active = None
        self.chain = []
        pending, self.pending = self.pending, None
        if pending is not None and not self.closed:
            self.request(pending)
