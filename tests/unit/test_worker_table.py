"""The master's worker table with a fake fork: slots, the worker ceiling, back-off."""

from __future__ import annotations

import itertools

from procmaster.master.workers import WorkerTable, worker_ceiling
from procmaster.scoreboard import Scoreboard


def table(processes: int = 1, nslots: int | None = None, ceiling: int | None = None):
    lines: list[str] = []
    pids = itertools.count(1000)
    forked: list[tuple[int, int]] = []

    def fork(wid: int, slot: int) -> int:
        forked.append((wid, slot))
        return next(pids)

    ceiling = ceiling or worker_ceiling(processes)
    board = Scoreboard(nslots or 3 * ceiling + 8)
    t = WorkerTable(board, fork, lines.append, processes, ceiling)
    t.spawn(1)
    return t, lines, forked


def test_ceiling_is_documented_numbers():
    assert worker_ceiling(1) == 16
    assert worker_ceiling(10) == 40


def test_more_workers_than_the_ceiling_is_capped_and_said_once():
    t, lines, forked = table(processes=1)
    for _ in range(30):
        t.resize(+1, mercy=1.0)
    assert t.processes == 16 and len(t) == 16
    said = [line for line in lines if "is the maximum" in line]
    assert len(said) == 1 and "16" in said[0]


def test_a_full_scoreboard_delays_the_spawn_instead_of_raising():
    t, lines, forked = table(processes=1, nslots=2, ceiling=16)
    t.resize(+1, mercy=1.0)
    t.resize(+1, mercy=1.0)  # no third slot
    assert len(t) == 2
    assert 3 in t.respawn_at
    assert any("no free scoreboard slot for worker 3" in line for line in lines)


def test_reaping_frees_the_slot_and_keeps_the_harakiri_count_of_the_worker_id():
    t, lines, forked = table()
    (proc,) = t.all()
    proc.count_harakiri()
    t.ended(proc.pid, 9)
    assert t.board.read(proc.slot).status == 0
    t.spawn(1)
    (again,) = t.all()
    assert again.read_slot().harakiri == 1
    assert t.respawns[1] == 2


def test_young_deaths_back_off():
    t, lines, forked = table()
    (proc,) = t.all()
    t.ended(proc.pid, 256)
    t.schedule_respawn(proc, "exited with code 1")
    first = t.respawn_at[1]
    t.spawn(1)
    (proc,) = t.all()
    t.ended(proc.pid, 256)
    t.schedule_respawn(proc, "exited with code 1")
    assert t.respawn_at[1] - first >= 0.2  # 0.25s, then 0.5s
    assert any("keeps dying at start-up" in line for line in lines)


def test_adopted_workers_keep_their_slot_and_count():
    t, lines, forked = table()
    board = t.board
    board.claim(5, 777)
    board.count_harakiri(5)
    t.new_generation()
    t.adopt(777, 2, 5, board)
    proc = t.get(777)
    assert proc.ready and proc.generation == 0 and proc.slot == 5
    assert t.harakiris[2] == 1
    assert 777 in [w.pid for w in t.old()]
