"""The ``uwsgi`` module and ``uwsgidecorators`` for apps written for uWSGI.

The same app (tests/apps/uwsgi_api_app.py) runs under procmaster and, where it is
installed, under uWSGI 2.0 with the same options: what uWSGI does is the reference.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support import APPS, ROOT, free_port, http_get, kill_tree, remember_descendants, wait_for

UWSGI = shutil.which("uwsgi")
KINDS = [
    "procmaster",
    pytest.param(
        "uwsgi",
        marks=pytest.mark.skipif(
            UWSGI is None, reason="uWSGI is not installed (.ci/run installs it)"
        ),
    ),
]


class Instance:
    """A master (procmaster or uWSGI) running the API app, with its events file."""

    def __init__(self, kind: str, tmp: Path, *extra: str, processes: int = 2) -> None:
        self.kind = kind
        self.port = free_port()
        self.events_path = tmp / f"events-{kind}.jsonl"
        self.log_path = tmp / f"{kind}.log"
        env = dict(os.environ)
        env["API_EVENTS"] = str(self.events_path)
        env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
        env.pop("NOTIFY_SOCKET", None)
        common = [
            "--master",
            "--processes",
            str(processes),
            "--module",
            "uwsgi_api_app",
            "--locks",
            "2",
            "--enable-threads",
            *extra,
        ]
        if kind == "uwsgi":
            argv = [
                UWSGI,
                "--http-socket",
                f"127.0.0.1:{self.port}",
                "--pythonpath",
                str(APPS),
                "--die-on-term",
                *common,
            ]
        else:
            argv = [
                sys.executable,
                "-m",
                "procmaster",
                "--http-socket",
                f"127.0.0.1:{self.port}",
                *common,
            ]
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv,
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        self.known = {self.proc.pid}
        wait_for(self.answers, 30, what=f"{kind} to answer:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.kind} exited:\n{self.log()}")
        try:
            return http_get(self.port, "/", timeout=2)[0] == 200
        except OSError:
            return False

    def get(self, path: str) -> bytes:
        status, _, body = http_get(self.port, path, timeout=30)
        assert status == 200, body
        return body

    def events(self, kind: str | None = None) -> list[dict]:
        try:
            lines = self.events_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = [json.loads(line) for line in lines]
        return [e for e in out if kind is None or e["kind"] == kind]

    def workers(self) -> set[int]:
        return {e["pid"] for e in self.events("postfork")}

    def stop(self) -> None:
        remember_descendants(self.proc.pid, self.known)
        kill_tree(self.proc, self.known)
        self.log_file.close()


@pytest.fixture
def instance(tmp_path):
    started: list[Instance] = []

    def start(kind: str, *extra: str, processes: int = 2) -> Instance:
        inst = Instance(kind, tmp_path, *extra, processes=processes)
        started.append(inst)
        return inst

    yield start
    for inst in started:
        inst.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_postfork_runs_once_per_worker_and_atexit_once_per_graceful_exit(instance, kind):
    inst = instance(kind)
    wait_for(lambda: len(inst.events("postfork")) == 2, 20, what="two postfork events")
    first = inst.events("postfork")
    assert sorted(e["wid"] for e in first) == [1, 2]
    imports = inst.events("import")
    assert [e["wid"] for e in imports] == [0]  # the app was imported once, in the master
    assert imports[0]["masterpid"] == inst.proc.pid
    old = {e["pid"] for e in first}

    inst.proc.send_signal(signal.SIGHUP)  # graceful reload in both servers
    wait_for(lambda: len(inst.events("postfork")) == 4, 30, what=f"new workers:\n{inst.log()}")
    wait_for(lambda: {e["pid"] for e in inst.events("atexit")} >= old, 30, what="atexit")
    for kind_ in ("uwsgi-atexit", "atexit"):
        exits = [e["pid"] for e in inst.events(kind_)]
        assert sorted(exits) == sorted(old), (kind_, exits, old)
    # uwsgi.atexit runs before Python's atexit handlers, in each worker
    order = [e["kind"] for e in inst.events() if e["pid"] in old and "atexit" in e["kind"]]
    assert order.count("uwsgi-atexit") == 2 and order.index("uwsgi-atexit") == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_worker_runs_no_atexit_and_its_successor_runs_postfork(instance, kind):
    inst = instance(kind)
    wait_for(lambda: len(inst.events("postfork")) == 2, 20, what="two postfork events")
    victim = inst.events("postfork")[0]
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: len(inst.events("postfork")) == 3, 30, what=f"a respawn:\n{inst.log()}")
    newest = inst.events("postfork")[-1]
    assert newest["wid"] == victim["wid"] and newest["pid"] != victim["pid"]
    assert [e for e in inst.events() if "atexit" in e["kind"]] == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_module_reports_this_process(instance, kind):
    inst = instance(kind)
    wait_for(lambda: len(inst.events("postfork")) == 2, 20, what="two postfork events")
    info = json.loads(inst.get("/info"))
    pids = {e["wid"]: e["pid"] for e in inst.events("postfork")}
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
    counter = Path(str(inst.events_path) + ".counter").read_text()
    assert int(counter) == 8 * 5 * 40


@pytest.mark.parametrize("kind", KINDS)
def test_is_locked_sees_a_lock_another_worker_holds(instance, kind):
    inst = instance(kind)
    holder = threading.Thread(target=lambda: _ignore_errors(inst.get, "/hold?n=1"), daemon=True)
    holder.start()
    wait_for(lambda: inst.events("holding"), 20, what="a worker holding lock 1")
    assert json.loads(inst.get("/is_locked?n=1")) is True
    assert json.loads(inst.get("/is_locked?n=2")) is False


def test_a_lock_held_by_a_killed_worker_is_free_again(instance):
    # uWSGI gets this from robust mutexes; here the kernel drops the dead process's lock
    inst = instance("procmaster")
    holder = threading.Thread(target=lambda: _ignore_errors(inst.get, "/hold?n=1"), daemon=True)
    holder.start()
    wait_for(lambda: inst.events("holding"), 20, what="a worker holding lock 1")
    os.kill(inst.events("holding")[0]["pid"], signal.SIGKILL)
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
    wait_for(lambda: len(inst.events("import")) == 2, 20, what="an import per worker")
    assert sorted(e["wid"] for e in inst.events("import")) == [1, 2]
    inst.get("/")
    assert inst.events("postfork") == []


def test_skip_atexit_skips_python_atexit_but_not_uwsgi_atexit(instance):
    inst = instance("procmaster", "--skip-atexit")
    wait_for(lambda: len(inst.events("postfork")) == 2, 20, what="two postfork events")
    old = inst.workers()
    inst.proc.send_signal(signal.SIGHUP)
    wait_for(
        lambda: {e["pid"] for e in inst.events("uwsgi-atexit")} >= old,
        30,
        what="uwsgi.atexit in the old workers",
    )
    wait_for(lambda: len(inst.events("postfork")) == 4, 30, what="new workers")
    assert inst.events("atexit") == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_app_can_ask_for_a_reload_and_start_a_thread(instance, kind):
    inst = instance(kind)
    wait_for(lambda: len(inst.events("postfork")) == 2, 20, what="two postfork events")
    inst.get("/thread?tag=t1")
    wait_for(lambda: [e["tag"] for e in inst.events("thread")] == ["t1"], 10, what="the thread")
    old = inst.workers()
    if kind == "uwsgi":
        _ignore_errors(inst.get, "/reload")  # uWSGI cuts this very request short
    else:
        assert inst.get("/reload") == b"reloading"
    wait_for(lambda: len(inst.workers() - old) == 2, 30, what=f"reloaded workers:\n{inst.log()}")


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
