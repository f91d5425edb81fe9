"""The spooler: uwsgi.spool and the @spool decorators, spooler processes supervised by
the master, tasks that survive reloads, stops, kills and a full disk. The same app
runs under uWSGI 2.0 where it is installed: its behaviour is the reference."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support import http_get, wait_for
from support.side import KINDS, sides


@pytest.fixture
def instance(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    options = ("--spooler", str(spool), "--spooler-frequency", "1")
    starts = sides(
        tmp_path, "uwsgi_spool_app", "SPOOL_RESULTS", *options, records=tmp_path / "results.jsonl"
    )
    start = next(starts)
    start.spool = spool
    yield start
    next(starts, None)


def task_files(spool: Path) -> list[Path]:
    return [p for p in spool.rglob("uwsgi_spoolfile_on_*")]


@pytest.mark.parametrize("kind", KINDS)
def test_a_spooled_task_runs_in_the_spooler_with_its_arguments(instance, kind):
    inst = instance(kind)
    name = inst.get("/task?n=1")
    assert Path(name.decode()).name.startswith("uwsgi_spoolfile_on_")
    wait_for(lambda: inst.records("task"), 20, what=f"the task to run:\n{inst.log()}")
    (rec,) = inst.records("task")
    assert rec["spooler"] is True and rec["wid"] == 0 and rec["n"] == "1"
    assert rec["keys"] == ["body", "n", "ud_spool_func", "ud_spool_ret"]
    assert rec["body"] == "the body"
    wait_for(lambda: not task_files(instance.spool), 20, what="the task file removed")
    inst.get("/typed")
    wait_for(lambda: inst.records("typed"), 20, what="the typed task")
    assert inst.records("typed")[0]["number"] == 7
    assert inst.records("typed")[0]["items"] == [1, "two"]
    assert inst.get("/raw").startswith(b"ValueError: spooler callable dictionary must contain")


@pytest.mark.parametrize("kind", KINDS)
def test_the_app_sees_its_spoolers_and_their_waiting_tasks(instance, kind):
    inst = instance(kind)
    answer = inst.json("/jobs")
    assert answer == {"spoolers": [os.path.realpath(instance.spool)], "listed": True}


@pytest.mark.parametrize("kind", KINDS)
def test_retry_and_failure_keep_the_task_ok_removes_it(instance, kind):
    inst = instance(kind)
    inst.get("/flaky")
    wait_for(lambda: len(inst.records("flaky")) >= 2, 30, what=f"a retry:\n{inst.log()}")
    assert [r["first"] for r in inst.records("flaky")][:2] == [True, False]
    wait_for(lambda: not task_files(instance.spool), 20, what="the flaky task removed")
    inst.get("/failing")
    wait_for(lambda: len(inst.records("failing")) >= 2, 30, what="the failing task retried")
    assert len(task_files(instance.spool)) == 1
    assert "this task always fails" in inst.log()


def test_a_task_for_later_waits_for_its_time(instance):
    inst = instance("procmaster")
    at = int(time.time()) + 3
    inst.get(f"/later?at={at}")
    wait_for(lambda: inst.records("task"), 30, what="the task for later")
    assert time.time() >= at


def test_no_task_is_lost_across_reloads_stops_and_a_killed_spooler(instance, tmp_path):
    total = 1000
    inst = instance("procmaster", "--spooler-processes", "2")
    inst.get("/many?start=0&count=250")
    inst.signal(signal.SIGHUP)  # a graceful reload while tasks run
    inst.get("/many?start=250&count=250")
    # the spoolers stop before the reload's exec and start again in the new image
    wait_for(lambda: "reload (SIGHUP) done" in inst.log(), 60, what=f"the reload:\n{inst.log()}")
    inst.get("/many?start=500&count=250")

    def kill_a_spooler() -> bool:
        # two spoolers seen may include one of the old image still on its way out
        # (a busy machine): a pid gone before the kill is picked again
        pids = inst.children_named("spooler")
        if len(pids) != 2:
            return False
        try:
            os.kill(pids[0], signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    wait_for(kill_a_spooler, 30, what=f"two spoolers, one killed:\n{inst.log()}")
    inst.get("/many?start=750&count=250")
    inst.signal(signal.SIGTERM)  # a graceful stop: tasks left stay on disk
    assert inst.proc.wait(60) == 0, inst.log()
    again = instance("procmaster", "--spooler-processes", "2")
    wait_for(lambda: not task_files(instance.spool), 120, what=f"every task done:\n{again.log()}")
    done = [int(r["n"]) for r in again.records("task")]
    assert sorted(set(done)) == list(range(total))
    repeated = len(done) - len(set(done))
    assert repeated <= 1, f"{repeated} tasks ran twice (only one task was killed mid-run)"


def test_a_full_disk_refuses_the_task_whole_and_the_app_goes_on(instance, tmp_path):
    spool = instance.spool
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(spool)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.fail("mounting a small tmpfs needs root (the tests run as root in CI)")
    try:
        inst = instance("procmaster", processes=1)
        filler = spool / "filler"
        with open(filler, "wb") as f:
            try:
                f.write(b"x" * (1 << 20))
            except OSError:
                pass
        status, _, body = http_get(inst.port, "/task?n=full", timeout=30)
        assert status == 500  # spool() raised ValueError: the app did not catch it
        assert "unable to spool job" in inst.log() and "No space left" in inst.log()
        assert not task_files(spool) and not list(spool.glob(".tmp-*"))
        filler.unlink()
        assert inst.get("/task?n=after")
        wait_for(lambda: inst.records("task"), 20, what="a task once there is room")
    finally:
        subprocess.run(["umount", "-l", str(spool)], capture_output=True)
