"""uWSGI's signal framework (register_signal, signal, timers, file monitors) through
the master, for the same app under procmaster and (where installed) uWSGI."""

from __future__ import annotations

import json

import pytest
from support import wait_for
from support.side import KINDS, sides


@pytest.fixture
def instance(tmp_path):
    yield from sides(tmp_path, "uwsgi_signal_app", "API_EVENTS")


@pytest.mark.parametrize("kind", KINDS)
def test_a_timer_runs_its_handler_in_one_worker_each_second(instance, kind):
    inst = instance(kind)
    wait_for(lambda: len(inst.records("timer")) >= 3, 20, what=f"three ticks:\n{inst.log()}")
    ticks = inst.records("timer")
    assert {t["wid"] for t in ticks} <= {1, 2}
    assert len({t["signum"] for t in ticks}) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_signals_reach_the_targets_they_name(instance, kind):
    inst = instance(kind)
    assert json.loads(inst.get("/registered")) == [True, True, True, None]
    inst.get("/raise?n=10")
    wait_for(
        lambda: sorted(e["wid"] for e in inst.records("all")) == [1, 2],
        20,
        what=f"signal 10 in both workers:\n{inst.log()}",
    )
    inst.get("/raise?n=11")
    wait_for(
        lambda: [e["wid"] for e in inst.records("second")] == [2], 20, what="signal 11 in worker 2"
    )
    inst.get("/raise?n=12")
    wait_for(lambda: len(inst.records("one")) == 1, 20, what="signal 12 in one worker")
    assert inst.records("one")[0]["wid"] in (1, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_monitor_fires_when_the_file_changes(instance, kind, tmp_path):
    events = tmp_path / f"events-{kind}.jsonl"
    watched = tmp_path / f"events-{kind}.jsonl.watched"  # the app watches EVENTS.watched
    watched.write_text("first")  # uWSGI watches only a file that exists at start
    inst = instance(kind, records=events)
    assert not inst.records("changed")
    # the master arms timers and file monitors together as its loop starts, which
    # can be after a worker answers (uWSGI, on a busy machine): a tick says it did
    wait_for(lambda: inst.records("timer"), 20, what=f"the master's loop:\n{inst.log()}")
    watched.write_text("second")
    wait_for(lambda: inst.records("changed"), 20, what=f"the change seen:\n{inst.log()}")


def test_a_signal_without_a_handler_is_said_and_the_workers_go_on(instance):
    inst = instance("procmaster")
    inst.get("/raise?n=99")
    wait_for(lambda: "uWSGI signal 99 has no handler" in inst.log(), 20, what="the warning")
    assert inst.get("/") == b"hello"


@pytest.fixture
def targets(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    options = ("--mules", "2", "--farm", "pool:2", "--spooler", str(spool))
    yield from sides(tmp_path, "uwsgi_target_app", "API_EVENTS", *options)


@pytest.mark.parametrize("kind", KINDS)
def test_signals_reach_mules_a_farm_and_the_spooler(targets, kind):
    inst = targets(kind)

    def seen(what: str, count: int) -> list[dict]:
        wait_for(
            lambda: len(inst.records(what)) >= count, 20, what=f"{what} x{count}:\n{inst.log()}"
        )
        return inst.records(what)

    inst.get("/raise?n=20")
    assert sorted(e["mule"] for e in seen("mules", 2)) == [1, 2]
    inst.get("/raise?n=22")
    assert [e["mule"] for e in seen("mule2", 1)] == [2]
    inst.get("/raise?n=24")
    assert [e["mule"] for e in seen("farm", 1)] == [2]
    for _ in range(4):
        inst.get("/raise?n=21")
    assert {e["mule"] for e in seen("mule", 4)} <= {1, 2}
    inst.get("/raise?n=23")
    ran = seen("spooler", 1)
    assert ran[0]["spooler"] and ran[0]["mule"] == 0 and ran[0]["wid"] == 0
    inst.get("/mule-raises?n=25")  # a mule raises: the master routes it to every worker
    assert sorted(e["wid"] for e in seen("from-mule", 2)) == [1, 2]
    inst.get("/raise?n=26")  # mule7 does not exist: said, never delivered
    assert inst.get("/") == b"hello"
    for what, count in (("mules", 2), ("mule2", 1), ("farm", 1), ("spooler", 1)):
        assert len(inst.records(what)) == count, what  # each delivered once
    assert not inst.records("nobody")
