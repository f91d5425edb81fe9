"""Mules: a script mule, programmed mules running @mulefunc calls, a farm, messages
from workers; kept alive by the master. The same app runs under uWSGI 2.0 where it
is installed: its behaviour is the reference."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from support import APPS, ROOT, wait_for
from support.side import KINDS, sides

MULES = [f"--mule={APPS / 'mule_script.py'}", "--mules", "2", "--farm", "pool:2,3"]


@pytest.fixture
def instance(tmp_path):
    yield from sides(tmp_path, "uwsgi_mule_app", "MULE_RESULTS")


@pytest.mark.parametrize("kind", KINDS)
def test_mulefunc_calls_run_in_a_programmed_mule(instance, kind):
    inst = instance(kind, "--mules", "2")
    for n in range(10):
        assert inst.text(f"/work?n={n}") == "None"  # queued: the result stays in the mule
    wait_for(lambda: len(inst.records("work")) == 10, 20, what=f"ten calls:\n{inst.log()}")
    calls = inst.records("work")
    assert sorted(c["n"] for c in calls) == list(range(10))
    assert {c["mule"] for c in calls} <= {1, 2}
    assert all(c["tag"] == "t" for c in calls)


def test_programmed_mules_of_a_farm_run_its_calls(instance):
    # uWSGI 2.0's programmed mules leave farm messages unread (only farm_get_msg()
    # takes them); procmaster's run them, which is what @mulefunc(farm) asks for
    inst = instance("procmaster", *MULES)
    for n in range(6):
        inst.text(f"/pooled?n={n}")
    wait_for(lambda: len(inst.records("pooled")) == 6, 20, what="six farm calls")
    assert {r["mule"] for r in inst.records("pooled")} <= {2, 3}
    assert all(r["in_farm"] for r in inst.records("pooled"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_script_mule_gets_the_messages_sent_to_it(instance, kind):
    inst = instance(kind, *MULES)
    assert inst.text("/direct?msg=hello") == "True"
    assert inst.text("/nofarm") == "ValueError: unknown farm"
    wait_for(lambda: inst.records("script"), 20, what="the script mule's message")
    assert inst.records("script")[0]["msg"] == "hello"
    assert inst.records("script")[0]["mule"] == 1


def test_a_killed_mule_comes_back_and_works(instance):
    inst = instance("procmaster", "--mules", "2")
    inst.text("/work?n=1")
    wait_for(lambda: inst.records("work"), 20, what="a first call")
    victim = inst.records("work")[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: "mule" in inst.log() and f"pid {victim}" in inst.log(),
        20,
        what=f"the death said:\n{inst.log()}",
    )
    for n in range(2, 12):
        inst.text(f"/work?n={n}")
    wait_for(lambda: len(inst.records("work")) == 11, 30, what=f"calls after:\n{inst.log()}")
    assert inst.text("/nobody") == "False"  # no mule 9: refused, not an error


def test_a_missing_mule_script_stops_the_start_with_its_place(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    env["MULE_RESULTS"] = str(tmp_path / "r")
    ini = tmp_path / "site.ini"
    ini.write_text(
        "[uwsgi]\nhttp-socket = 127.0.0.1:0\nmodule = uwsgi_mule_app\nmule = nothere.py\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "procmaster", "--ini", str(ini)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode != 0
    assert f"{ini}:4: mule = nothere.py: no such file" in out.stdout + out.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_postfork_runs_in_workers_mules_and_spoolers_and_the_mule_decorators(tmp_path, kind):
    spool = tmp_path / "spool"
    spool.mkdir()
    options = ("--mules", "4", "--farm", "pool:4", "--spooler", str(spool))
    starts = sides(tmp_path, "uwsgi_mule_deco_app", "MULE_RESULTS", *options)
    start = next(starts)
    try:
        inst = start(kind)
        wait_for(lambda: len(inst.records("postfork")) == 7, 30, what=f"7 starts:\n{inst.log()}")
        where = sorted((r["wid"], r["mule"], r["spooler"]) for r in inst.records("postfork"))
        assert where == [(0, 0, True), (0, 1, False), (0, 2, False), (0, 3, False)] + [
            (0, 4, False),
            (1, 0, False),
            (2, 0, False),
        ]
        assert [r["wid"] for r in inst.records("postfork-2")] == [2]
        wait_for(lambda: inst.records("muleloop"), 20, what="the loop's third call")
        assert [(r["mule"], r["times"]) for r in inst.records("muleloop")] == [(2, 3)]
        assert [r["mule"] for r in inst.records("mule-once")] == [1]
        assert inst.text("/to-mule?n=3&msg=hi") == "True"
        assert inst.text("/to-farm?msg=all") == "None"
        wait_for(lambda: inst.records("mulemsg") and inst.records("farm"), 20, what="messages")
        assert [(r["mule"], r["msg"]) for r in inst.records("mulemsg")] == [(3, "hi")]
        assert [(r["mule"], r["msg"]) for r in inst.records("farm")] == [(4, "all")]
    finally:
        next(starts, None)
