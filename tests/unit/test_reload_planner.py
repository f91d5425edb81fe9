"""The reload planner without processes: a fake worker table records what it is asked."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from procmaster.ipc import ReexecState
from procmaster.master.reload import Phase, ReloadKind, ReloadPlanner, ReloadRequest

FULL, CHAIN, WORKERS = ReloadKind.FULL, ReloadKind.CHAIN, ReloadKind.WORKERS


@dataclass
class W:
    wid: int
    pid: int
    generation: int
    ready: bool = True
    stopped: bool = False
    brutal: bool = False


class FakeOps:
    """A worker table in memory; every call is recorded in ``calls``."""

    def __init__(self, n: int = 2) -> None:
        self.n = n
        self.generation = 1
        self.next_pid = 100
        self.workers: dict[int, W] = {}
        self.calls: list[tuple] = []
        self.probe_ok = True
        self.exec_ok = True
        self.exec_state: ReexecState | None = None
        for wid in range(1, n + 1):
            self._fork(wid)

    def _fork(self, wid: int) -> W:
        self.next_pid += 1
        w = W(wid, self.next_pid, self.generation, ready=False)
        self.workers[w.pid] = w
        return w

    # ReloadOps
    def wanted(self) -> int:
        return self.n

    def current(self):
        return [w for w in self.workers.values() if w.generation == self.generation]

    def old(self):
        return [
            w for w in self.workers.values() if w.generation != self.generation and not w.stopped
        ]

    def worker(self, pid):
        return self.workers.get(pid)

    def new_generation(self) -> None:
        self.generation += 1
        self.calls.append(("generation", self.generation))

    def spawn(self, wid: int) -> None:
        if any(w.wid == wid for w in self.current()):
            return
        w = self._fork(wid)
        self.calls.append(("spawn", wid, w.pid))

    def stop(self, worker, brutal: bool) -> None:
        worker.stopped = True
        worker.brutal = brutal
        self.calls.append(("stop", worker.pid, brutal))

    def abandon_new(self, keep_ready: bool) -> None:
        self.calls.append(("abandon", keep_ready))
        for pid, w in list(self.workers.items()):
            if w.generation == self.generation and not (keep_ready and w.ready):
                del self.workers[pid]
        for w in self.workers.values():
            if not w.stopped:
                w.generation = self.generation

    def start_probe(self, request) -> bool:
        self.calls.append(("probe", request.reason))
        return self.probe_ok

    def exec_master(self, state) -> bool:
        self.calls.append(("exec", state.reason))
        self.exec_state = state
        return self.exec_ok

    def reloading(self, status: str) -> None:
        self.calls.append(("reloading", status))

    # test helpers
    def ready_all(self) -> None:
        for w in self.current():
            w.ready = True

    def die(self, pid: int) -> None:
        del self.workers[pid]

    def stops(self):
        return [c for c in self.calls if c[0] == "stop"]


def planner(ops: FakeOps, lazy: bool = True):
    lines: list[str] = []
    clock = iter(range(1000, 100000)).__next__
    return ReloadPlanner(ops, lines.append, lazy=lazy, clock=clock), lines


def test_workers_reload_stops_the_old_ones_once_all_new_are_ready():
    ops = FakeOps(2)
    ops.ready_all()
    old = sorted(ops.workers)
    p, lines = planner(ops)
    p.request(ReloadRequest(WORKERS, "touch"))
    assert p.phase is Phase.STARTING and p.reloads == 1
    assert [c[0] for c in ops.calls] == ["reloading", "generation", "spawn", "spawn"]
    p.progress()
    assert not ops.stops()  # the new ones are not ready yet
    ops.ready_all()
    p.progress()
    assert sorted(c[1] for c in ops.stops()) == old
    assert all(c[2] is False for c in ops.stops())
    assert p.phase is Phase.IDLE
    assert "reload (touch) done" in lines[-1]


def test_brutal_reload_stops_the_old_workers_brutally():
    ops = FakeOps(1)
    ops.ready_all()
    p, _ = planner(ops)
    p.request(ReloadRequest(WORKERS, "master-fifo W", brutal=True))
    ops.ready_all()
    p.progress()
    assert [c[2] for c in ops.stops()] == [True]


def test_one_request_is_queued_during_a_reload_and_the_strongest_is_kept():
    ops = FakeOps(1)
    ops.ready_all()
    p, lines = planner(ops)
    p.request(ReloadRequest(WORKERS, "first"))
    p.request(ReloadRequest(CHAIN, "second"))
    p.request(ReloadRequest(FULL, "third"))
    p.request(ReloadRequest(WORKERS, "weaker"))
    assert p.pending == ReloadRequest(FULL, "third")
    assert sum("queued" in line for line in lines) == 1
    ops.ready_all()
    p.progress()  # the first is done: the queued one starts
    assert p.phase is Phase.PROBING
    assert ("probe", "third") in ops.calls
    assert p.reloads == 2


def test_a_tie_keeps_the_later_request():
    ops = FakeOps(1)
    p, _ = planner(ops)
    p.request(ReloadRequest(WORKERS, "a"))
    p.request(ReloadRequest(CHAIN, "b"))
    p.request(ReloadRequest(CHAIN, "c", brutal=True))
    assert p.pending == ReloadRequest(CHAIN, "c", brutal=True)


def test_full_reload_probes_then_execs_with_the_queued_request():
    ops = FakeOps(1)
    p, _ = planner(ops)
    p.request(ReloadRequest(FULL, "SIGHUP"))
    assert p.phase is Phase.PROBING
    p.request(ReloadRequest(CHAIN, "SIGURG", brutal=True))
    p.probe_done(True)
    assert p.phase is Phase.EXECUTING
    state = ops.exec_state
    assert state.reason == "SIGHUP" and state.reloads == 1
    assert state.pending == ("chain", "SIGURG", True)


def test_a_probe_that_fails_aborts_and_runs_the_queued_request():
    ops = FakeOps(1)
    ops.ready_all()
    p, lines = planner(ops)
    p.request(ReloadRequest(FULL, "SIGHUP"))
    p.request(ReloadRequest(WORKERS, "w"))
    p.probe_done(False)
    assert any("aborted" in line for line in lines)
    assert p.phase is Phase.STARTING and p.active == ReloadRequest(WORKERS, "w")


def test_a_probe_that_cannot_start_leaves_the_planner_idle():
    ops = FakeOps(1)
    ops.probe_ok = False
    p, _ = planner(ops)
    p.request(ReloadRequest(FULL, "SIGHUP"))
    assert p.phase is Phase.IDLE


def test_failed_exec_returns_to_idle():
    ops = FakeOps(1)
    ops.exec_ok = False
    p, _ = planner(ops)
    p.request(ReloadRequest(FULL, "SIGHUP"))
    p.probe_done(True)
    assert p.phase is Phase.IDLE


def test_the_next_image_adopts_the_state_and_finishes_the_reload():
    ops = FakeOps(2)
    olds = [(pid, w.wid) for pid, w in ops.workers.items()]
    for w in ops.workers.values():
        w.generation = 0  # adopted: an earlier generation
        w.ready = True
    for wid in (1, 2):
        ops.spawn(wid)
    p, lines = planner(ops)
    state = ReexecState(
        old=olds, reason="SIGHUP", t0=1.0, pending=("workers", "later", False), reloads=3
    )
    p.adopt(state)
    assert p.phase is Phase.STARTING and p.reloads == 3
    ops.ready_all()
    p.progress()
    assert sorted(c[1] for c in ops.stops()) == sorted(pid for pid, _ in olds)
    assert "reload (SIGHUP) done" in " ".join(lines)
    assert p.active == ReloadRequest(WORKERS, "later")  # the queued one started


def test_new_workers_dying_abort_and_keep_the_old_ones():
    ops = FakeOps(2)
    ops.ready_all()
    old = set(ops.workers)
    p, lines = planner(ops)
    p.request(ReloadRequest(WORKERS, "touch"))
    assert p.replacing
    new = [w.pid for w in ops.current()]
    ops.die(new[0])
    p.abort("the new workers do not start")
    assert ("abandon", False) in ops.calls
    assert p.phase is Phase.IDLE
    assert set(ops.workers) == old and not ops.stops()
    assert all(w.generation == ops.generation for w in ops.workers.values())
    assert "aborted" in lines[-1]


def test_chain_reload_replaces_one_worker_at_a_time():
    ops = FakeOps(3)
    ops.ready_all()
    old = sorted(ops.workers)
    p, lines = planner(ops)
    p.request(ReloadRequest(CHAIN, "SIGURG"))
    assert p.phase is Phase.CHAINING
    for i, old_pid in enumerate(old):
        spawns = [c for c in ops.calls if c[0] == "spawn"]
        assert len(spawns) == i + 1  # one replacement at a time
        assert len(ops.stops()) == i  # its old one waits until it is ready
        ops.ready_all()
        p.progress()
        assert ops.stops()[-1][1] == old_pid
    assert p.phase is Phase.IDLE
    assert "done" in lines[-1]


def test_chain_abort_keeps_the_replacements_that_are_up():
    ops = FakeOps(2)
    ops.ready_all()
    p, _ = planner(ops)
    p.request(ReloadRequest(CHAIN, "SIGURG"))
    ops.ready_all()
    p.progress()  # worker 1 replaced; worker 2's replacement starting
    starting = [w for w in ops.current() if not w.ready]
    assert len(starting) == 1
    ops.die(starting[0].pid)
    assert p.replacing
    p.abort("the new workers do not start")
    assert ("abandon", True) in ops.calls
    serving = sorted((w.wid, w.pid) for w in ops.workers.values() if not w.stopped)
    assert [wid for wid, _ in serving] == [1, 2]  # the replacement of 1 and the old 2
    assert all(w.generation == ops.generation for w in ops.workers.values() if not w.stopped)


def test_chain_without_lazy_apps_warns():
    ops = FakeOps(1)
    p, lines = planner(ops, lazy=False)
    p.request(ReloadRequest(CHAIN, "SIGURG"))
    assert lines[0].startswith("warning: SIGURG: chain reload without lazy-apps")


def test_closed_planner_ignores_requests_and_drops_the_queue():
    ops = FakeOps(1)
    p, _ = planner(ops)
    p.request(ReloadRequest(WORKERS, "a"))
    p.request(ReloadRequest(FULL, "b"))
    p.close()
    assert p.pending is None
    p.request(ReloadRequest(FULL, "c"))
    assert p.pending is None


def test_not_replacing_when_idle_or_no_old_workers():
    ops = FakeOps(1)
    p, _ = planner(ops)
    assert not p.replacing
    ops.ready_all()
    p.request(ReloadRequest(WORKERS, "a"))
    for w in ops.old():
        w.stopped = True
    assert not p.replacing


@pytest.mark.parametrize("kind", list(ReloadKind))
def test_kind_values_round_trip_through_reexec_state(kind):
    state = ReexecState(pending=(kind.value, "why", True))
    again = ReexecState.decode(state.encode())
    ops = FakeOps(1)
    p, _ = planner(ops)
    p.adopt(again)
    assert p.pending == ReloadRequest(kind, "why", True)
