"""The master's guards through their narrow hooks, with fake workers."""

from __future__ import annotations

import signal
import time

from procmaster import guards as guards_mod
from procmaster.config import load
from procmaster.guards import GuardHooks, MasterGuards


class FakeWorker:
    def __init__(self, wid: int, pid: int, started: float | None) -> None:
        self.wid = wid
        self.pid = pid
        self.stop_sent = 0.0
        self.started = started
        self.harakiri = 0

    def busy(self):
        return [(0, self.started, "GET /stuck")] if self.started else []

    def count_harakiri(self) -> None:
        self.harakiri += 1


def test_harakiri_counts_the_kill_in_the_workers_slot_and_watches_old_workers(monkeypatch):
    killed: list[int] = []

    def send_signal(pid: int, sig: int) -> bool:
        assert sig == signal.SIGKILL
        killed.append(pid)
        return True

    monkeypatch.setattr(guards_mod, "send_signal", send_signal)
    now = time.time()
    current = FakeWorker(1, 101, now - 10)
    old = FakeWorker(1, 90, now - 10)  # an old worker draining after a reload
    idle = FakeWorker(2, 102, None)
    hooks = GuardHooks(
        workers=lambda: [current, old, idle],
        current=lambda: [current, idle],
        processes=lambda: 2,
        change_workers=lambda delta: None,
        resting=lambda: False,
    )
    guards = MasterGuards(load(["--harakiri", "2"], environ={}), hooks)
    guards.check_harakiri(time.monotonic())
    assert sorted(killed) == [90, 101]
    assert (current.harakiri, old.harakiri, idle.harakiri) == (1, 1, 0)
