"""The ``uwsgi`` module and ``uwsgidecorators`` for apps written for uWSGI.

The same app (tests/apps/uwsgi_api_app.py) runs under procmaster and, where it is
installed, under uWSGI 2.0 with the same options: what uWSGI does is the reference.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support import ROOT, http_get, wait_for
from support.side import KINDS, Side, sides


@pytest.fixture
def instance(tmp_path):
    yield from sides(tmp_path, "uwsgi_api_app", "API_EVENTS", "--locks", "2", "--enable-threads")


def workers(inst: Side) -> set[int]:
    return {e["pid"] for e in inst.records("postfork")}


@pytest.mark.parametrize("kind", KINDS)
def test_postfork_runs_once_per_worker_and_atexit_once_per_graceful_exit(instance, kind):
    inst = instance(kind)
    wait_for(lambda: len(inst.records("postfork")) == 2, 20, what="two postfork events")
    first = inst.records("postfork")
    assert sorted(e["wid"] for e in first) == [1, 2]
    imports = inst.records("import")
    assert [e["wid"] for e in imports] == [0]  # the app was imported once, in the master
    assert imports[0]["masterpid"] == inst.proc.pid
    old = {e["pid"] for e in first}

    inst.signal(signal.SIGHUP)  # graceful reload in both servers
    # uWSGI waits up to its worker mercy (60 s) for an old worker: seen past 30 s
    # once, on a machine loaded by a soak and a test run
    wait_for(lambda: len(inst.records("postfork")) == 4, 75, what="new workers")
    wait_for(lambda: {e["pid"] for e in inst.records("atexit")} >= old, 30, what="atexit")
    for kind_ in ("uwsgi-atexit", "atexit"):
        exits = [e["pid"] for e in inst.records(kind_)]
        assert sorted(exits) == sorted(old), (kind_, exits, old)
    # uwsgi.atexit runs before Python's atexit handlers, in each worker
    order = [e["kind"] for e in inst.records() if e["pid"] in old and "atexit" in e["kind"]]
    assert order.count("uwsgi-atexit") == 2 and order.index("uwsgi-atexit") == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_worker_runs_no_atexit_and_its_successor_runs_postfork(instance, kind):
    inst = instance(kind)
    wait_for(lambda: len(inst.records("postfork")) == 2, 20, what="two postfork events")
    victim = inst.records("postfork")[0]
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: len(inst.records("postfork")) == 3, 30, what=f"a respawn:\n{inst.log()}")
    newest = inst.records("postfork")[-1]
    assert newest["wid"] == victim["wid"] and newest["pid"] != victim["pid"]
    assert [e for e in inst.records() if "atexit" in e["kind"]] == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_module_reports_this_process(instance, kind):
    inst = instance(kind)
    wait_for(lambda: len(inst.records("postfork")) == 2, 20, what="two postfork events")
    info = json.loads(inst.get("/info"))
    pids = {e["wid"]: e["pid"] for e in inst.records("postfork")}
    assert info["wid"] in (1, 2)
    assert info["mule"] == 0
    assert info["masterpid"] == inst.proc.pid
    assert info["numproc"] == 2
    assert info["version"] == "2.0.31" and info["version_info"] == [2, 0, 31]
    assert info["opt"]["processes"] == "2" and info["opt"]["module"] == "uwsgi_api_app"
    assert info["opt"]["master"] is True  # a flag given on the command line
    assert isinstance(info["request_id"], int) and isinstance(info["total_requests"], int)
    assert sorted(info["workers"]) == sorted([w, p] for w, p in pids.items())
    assert info["hostname_is_bytes"] and info["has_lock_api"]
    assert (info["procmaster"] is not None) == (kind == "procmaster")
    before = json.loads(inst.get("/info"))["total_requests"]
    for _ in range(3):
        inst.get("/")
    wait_for(
        lambda: json.loads(inst.get("/info"))["total_requests"] >= before + 3,
        10,
        what="the instance's request count to grow",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_the_lock_makes_read_modify_write_atomic_across_workers(instance, kind):
    inst = instance(kind, processes=4)
    errors: list[BaseException] = []

    def client() -> None:
        try:
            for _ in range(5):
                inst.get("/bump?n=40")
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    counter = Path(str(inst.records_path) + ".counter").read_text()
    assert int(counter) == 8 * 5 * 40


@pytest.mark.parametrize("kind", KINDS)
def test_is_locked_sees_a_lock_another_worker_holds(instance, kind):
    inst = instance(kind)
    holder = threading.Thread(target=lambda: _ignore_errors(inst.get, "/hold?n=1"), daemon=True)
    holder.start()
    wait_for(lambda: inst.records("holding"), 20, what="a worker holding lock 1")
    assert json.loads(inst.get("/is_locked?n=1")) is True
    assert json.loads(inst.get("/is_locked?n=2")) is False


def test_a_lock_held_by_a_killed_worker_is_free_again(instance):
    # uWSGI gets this from robust mutexes; here the kernel drops the dead process's lock
    inst = instance("procmaster")
    holder = threading.Thread(target=lambda: _ignore_errors(inst.get, "/hold?n=1"), daemon=True)
    holder.start()
    wait_for(lambda: inst.records("holding"), 20, what="a worker holding lock 1")
    os.kill(inst.records("holding")[0]["pid"], signal.SIGKILL)
    wait_for(lambda: json.loads(inst.get("/is_locked?n=1")) is False, 20, what="lock 1 free")


def test_a_lock_that_does_not_exist_is_an_error_not_a_hang(tmp_path):
    from procmaster.api.locks import LockError, Locks

    locks = Locks(3)
    with pytest.raises(LockError, match="locks 0..2"):
        locks.lock(3)
    locks.lock(2)
    assert locks.is_locked(2)
    locks.unlock(2)
    assert not locks.is_locked(2)


@pytest.mark.parametrize("kind", KINDS)
def test_lazy_apps_import_in_each_worker_and_postfork_from_there_never_runs(instance, kind):
    inst = instance(kind, "--lazy-apps")
    wait_for(lambda: len(inst.records("import")) == 2, 20, what="an import per worker")
    assert sorted(e["wid"] for e in inst.records("import")) == [1, 2]
    inst.get("/")
    assert inst.records("postfork") == []


def test_skip_atexit_skips_python_atexit_but_not_uwsgi_atexit(instance):
    inst = instance("procmaster", "--skip-atexit")
    wait_for(lambda: len(inst.records("postfork")) == 2, 20, what="two postfork events")
    old = workers(inst)
    inst.signal(signal.SIGHUP)
    wait_for(
        lambda: {e["pid"] for e in inst.records("uwsgi-atexit")} >= old,
        30,
        what="uwsgi.atexit in the old workers",
    )
    wait_for(lambda: len(inst.records("postfork")) == 4, 30, what="new workers")
    assert inst.records("atexit") == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_app_can_ask_for_a_reload_and_start_a_thread(instance, kind):
    inst = instance(kind)
    wait_for(lambda: len(inst.records("postfork")) == 2, 20, what="two postfork events")
    inst.get("/thread?tag=t1")
    wait_for(lambda: [e["tag"] for e in inst.records("thread")] == ["t1"], 10, what="the thread")
    old = workers(inst)
    if kind == "uwsgi":
        _ignore_errors(inst.get, "/reload")  # uWSGI cuts this very request short
    else:
        assert inst.get("/reload") == b"reloading"
    wait_for(lambda: len(workers(inst) - old) == 2, 30, what=f"reloaded workers:\n{inst.log()}")


def test_import_uwsgi_fails_outside_a_server():
    code = "import procmaster.api\ntry:\n import uwsgi\nexcept ImportError:\n print('no uwsgi')"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.stdout.strip() == "no uwsgi", out.stderr


def _ignore_errors(func, *args):
    try:
        func(*args)
    except OSError:
        pass


@pytest.mark.parametrize("kind", KINDS)
def test_logvars_set_by_the_app_appear_in_log_format(instance, kind):
    fmt = "LV %(method) %(uri) who=[%(who)] stage=[%(stage)] unset=[%(unset)] %(status)"
    inst = instance(kind, "--log-format", fmt)
    assert json.loads(inst.get("/logvar?who=alice")) == ["alice", None]
    inst.get("/info")  # a request that sets none: every logvar is '-'
    # each worker writes its line after its answer: wait for both, in either order
    wait_for(
        lambda: "LV GET /info" in inst.log() and "LV GET /logvar" in inst.log(),
        20,
        what=f"the request lines:\n{inst.log()}",
    )
    lines = [line for line in inst.log().splitlines() if line.startswith("LV ")]
    assert "LV GET /logvar?who=alice who=[alice] stage=[second] unset=[-] 200" in lines
    assert "LV GET /info who=[-] stage=[-] unset=[-] 200" in lines


@pytest.mark.parametrize("kind", KINDS)
def test_user_harakiri_kills_a_stuck_worker_and_harakiri_disarms_after_the_call(instance, kind):
    inst = instance(kind)
    assert inst.get("/guarded").startswith(b"quick in ")  # 2 s after a 1 s @harakiri call
    try:
        status = http_get(inst.port, "/user-harakiri", timeout=20)[0]
    except OSError:
        status = None  # the worker died under the request
    assert status != 200
    wait_for(lambda: len(workers(inst)) == 3, 30, what=f"a new worker:\n{inst.log()}")
    assert inst.get("/") == b"hello"
