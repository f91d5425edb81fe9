"""The signal framework's pieces without processes: cron matching, the master's
routing to worker channels, timers with a count."""

from __future__ import annotations

import time

import pytest

from procmaster.api.signals import Hub, Local, cron_due


def at(minute, hour, mday, month, wday_sunday0):
    # struct_time's tm_wday is Monday=0; cron's weekday is Sunday=0
    return time.struct_time((2026, month, mday, hour, minute, 0, (wday_sunday0 - 1) % 7, 1, 0))


@pytest.mark.parametrize(
    ("spec", "when", "due"),
    [
        ((-1, -1, -1, -1, -1), at(7, 3, 1, 12, 2), True),
        ((30, -1, -1, -1, -1), at(30, 3, 1, 12, 2), True),
        ((30, -1, -1, -1, -1), at(31, 3, 1, 12, 2), False),
        ((-5, -1, -1, -1, -1), at(35, 3, 1, 12, 2), True),  # every 5 minutes
        ((-5, -1, -1, -1, -1), at(36, 3, 1, 12, 2), False),
        ((0, 4, -1, -1, 0), at(0, 4, 6, 12, 0), True),  # Sundays at 04:00
        ((0, 4, -1, -1, 0), at(0, 4, 7, 12, 1), False),
        ((0, 0, 1, 1, -1), at(0, 0, 1, 1, 4), True),
    ],
)
def test_cron_entries_match_as_uwsgi_reads_them(spec, when, due):
    assert cron_due(spec, when) is due


def hub_with_workers(*workers):
    local = Local()
    hub = Hub(local, lambda: list(workers))
    local.hub = hub
    return local, hub


def received(hub, wid):
    sock = hub.channels[wid][1]
    out = b""
    while True:
        try:
            out += sock.recv(64)
        except BlockingIOError:
            return list(out)


def test_routing_follows_the_handlers_target():
    local, hub = hub_with_workers((1, False), (2, True))
    for wid in (1, 2):
        hub.channel(wid)
    local.register(10, "workers", print)
    local.register(11, "worker1", print)
    local.register(12, "", print)
    for num in (10, 11, 12):
        local.raise_signal(num)
    assert received(hub, 1) == [10, 11]
    assert received(hub, 2) == [10, 12]  # "" goes to an idle worker first


def test_a_timer_with_iterations_stops_and_bad_numbers_are_refused(monkeypatch):
    local, hub = hub_with_workers((1, True))
    hub.channel(1)
    local.register(3, "", print)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    local.add("timer", 3, 1.0, 2)
    for _ in range(5):
        clock[0] += 1.0
        hub.tick()
    assert received(hub, 1) == [3, 3]
    with pytest.raises(ValueError, match="0..255"):
        local.register(256, "", print)
    with pytest.raises(TypeError, match="callable"):
        local.register(5, "", None)


def test_a_worker_runs_what_it_receives_and_survives_a_failing_handler():
    local, hub = hub_with_workers((1, True))
    hub.channel(1)
    seen = []
    local.register(4, "", seen.append)
    local.register(5, "", lambda n: 1 / 0)
    hub.enter_worker(1)  # as in the forked child: keep only worker 1's end
    assert local.sock is not None
    local.deliver(5)
    local.deliver(4)
    assert seen == [4] and local.received == 4
