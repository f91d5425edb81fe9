"""The scoreboard's slots, in one process (the memory is shared by the fork)."""

from __future__ import annotations

import os
import time

from procmaster import scoreboard
from procmaster.scoreboard import (
    STATUS_BUSY,
    STATUS_FREE,
    STATUS_IDLE,
    STATUS_STARTING,
    Scoreboard,
)


def test_free_slot_is_minus_one_when_full():
    board = Scoreboard(2)
    for _ in range(2):
        slot = board.free_slot()
        assert slot >= 0
        board.claim(slot, 1234)
    assert board.free_slot() == -1  # not an exception out of the master's loop
    board.release(0)
    assert board.free_slot() == 0


def test_harakiri_is_counted_and_carried_by_claim():
    board = Scoreboard(4)
    board.claim(1, 10)
    board.count_harakiri(1)
    board.count_harakiri(1)
    assert board.read(1).harakiri == 2
    board.release(1)
    assert board.read(1).harakiri == 0 and board.read(1).status == STATUS_FREE
    board.claim(2, 11, harakiri=2)  # the respawned worker of that id
    slot = board.read(2)
    assert slot.harakiri == 2 and slot.pid == 11 and slot.status == STATUS_STARTING
    board.request_done(2, 200, 10, 0.001)
    assert board.read(2).harakiri == 2  # the worker's own writes leave it alone


def test_the_next_image_maps_the_same_slots():
    board = Scoreboard(3, cores=2)
    board.claim(1, 42)
    board.request_start(1, 123.0)
    board.request_desc(1, b"GET /slow", core=0)
    fd = board.inheritable()
    assert os.get_inheritable(fd)
    again = Scoreboard(board.nslots, fd=os.dup(fd), cores=board.cores)
    assert not os.get_inheritable(again.fd)
    assert again.read(1).pid == 42
    assert again.busy(1) == [(0, 123.0, "GET /slow")]
    again.count_harakiri(1)
    assert board.read(1).harakiri == 1  # one memory


def test_set_pid_keeps_what_the_worker_wrote_already():
    board = Scoreboard(2)
    board.claim(0, harakiri=1)
    board.worker_ready(0, 55)  # the child ran first and served
    board.request_done(0, 200, 10, 0.001)
    board.set_pid(0, 55)
    slot = board.read(0)
    assert (slot.pid, slot.requests, slot.harakiri, slot.status) == (55, 1, 1, STATUS_IDLE)


def test_a_counted_request_is_seen_with_its_status_class_and_bucket():
    """The stats and /metrics read a slot while its worker writes it: the request
    count is written last, so whoever sees a request counted sees its class and its
    histogram bucket (never ``requests`` ahead of ``5xx``)."""
    board = Scoreboard(1)
    board.claim(0, 7)
    seen = []
    real = board.slot_q[0]  # (the slot's 8-byte fields, from its start)
    requests_at = scoreboard._OFF_REQUESTS // 8

    class Spy:  # what a reader sees when the request count is stored
        def __getitem__(self, at):
            return real[at]

        def __setitem__(self, at, value):
            if at == requests_at:
                slot = board.read(0)
                seen.append((value, sum(slot.classes), sum(slot.buckets), slot.tx))
            real[at] = value

    board.slot_q[0] = Spy()
    board.request_done(0, 503, 100, 0.2)
    board.exception(0)
    board.request_done(0, 404, 50, 0.001)
    assert seen == [(1, 1, 1, 100), (2, 2, 2, 150)]
    slot = board.read(0)
    assert slot.requests == 2 and slot.classes == (0, 0, 0, 1, 1) and slot.status == STATUS_IDLE
    assert slot.exceptions == 1 and slot.request_start == 0.0
    assert slot.buckets[0] == 1 and slot.buckets[scoreboard.BUCKETS.index(0.25)] == 1
    board.request_start(0, 123.5)  # busy: the counts stay as they were
    slot = board.read(0)
    assert (slot.status, slot.request_start, slot.requests, slot.exceptions) == (
        STATUS_BUSY,
        123.5,
        2,
        1,
    )


def test_requests_in_flight_are_read_from_the_status_unless_written():
    """An ASGI worker writes its count of requests in flight only when its status
    does not say it: busy is one (or the count written), idle is none, whatever
    count an earlier burst left behind; pausing or stopping shows the count."""
    board = Scoreboard(2)
    board.claim(0, pid=os.getpid())
    board.worker_ready(0, os.getpid())
    assert board.read(0).inflight == 0
    board.request_start(0, time.time())
    assert board.read(0).inflight == 1  # busy: one, nothing written
    board.inflight(0, 3)
    assert board.read(0).inflight == 3
    board.inflight(0, 1)
    board.request_done(0, 200, 10, 0.001)
    assert board.read(0).inflight == 0  # idle, though 1 was written last
    board.request_start(0, time.time())
    assert board.read(0).inflight == 1
    board.stopping(0)
    board.inflight(0, 2)
    assert board.read(0).inflight == 2


def test_total_sums_every_slots_request_count_and_nothing_else():
    """The instance's total (the request log's ``%(total)``) is the sum of the
    slots' counters, whatever else the slots and the cores after them hold."""
    board = Scoreboard(3, cores=4)
    for index, count in enumerate((5, 7, 11)):
        board.worker_ready(index, 1000 + index)
        for _ in range(count):
            board.request_start(index, time.time())
            board.request_done(index, 200, 10**9, 0.5)
        board.exception(index)
        board.request_desc(index, b"\xff" * 200, core=3)  # a description past its field
    assert board.total() == 23
    assert board.total() == sum(board.read(i).requests for i in range(3))
