"""uWSGI's signal framework (register_signal, signal, timers, file monitors) through
the master, for the same app under procmaster and (where installed) uWSGI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
    def __init__(self, kind: str, tmp: Path, *extra: str) -> None:
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
            "2",
            "--module",
            "uwsgi_signal_app",
            "--http-socket",
            f"127.0.0.1:{self.port}",
            *extra,
        ]
        if kind == "uwsgi":
            argv = [UWSGI, "--pythonpath", str(APPS), "--die-on-term", *common]
        else:
            argv = [sys.executable, "-m", "procmaster", *common]
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

    def events(self, kind: str) -> list[dict]:
        try:
            lines = self.events_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [e for e in map(json.loads, lines) if e["kind"] == kind]

    def stop(self) -> None:
        remember_descendants(self.proc.pid, self.known)
        kill_tree(self.proc, self.known)
        self.log_file.close()


@pytest.fixture
def instance(tmp_path):
    started: list[Instance] = []

    def start(kind: str, *extra: str) -> Instance:
        inst = Instance(kind, tmp_path, *extra)
        started.append(inst)
        return inst

    yield start
    for inst in started:
        inst.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_a_timer_runs_its_handler_in_one_worker_each_second(instance, kind):
    inst = instance(kind)
    wait_for(lambda: len(inst.events("timer")) >= 3, 20, what=f"three ticks:\n{inst.log()}")
    ticks = inst.events("timer")
    assert {t["wid"] for t in ticks} <= {1, 2}
    assert len({t["signum"] for t in ticks}) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_signals_reach_the_targets_they_name(instance, kind):
    inst = instance(kind)
    assert json.loads(inst.get("/registered")) == [True, True, True, None]
    inst.get("/raise?n=10")
    wait_for(
        lambda: sorted(e["wid"] for e in inst.events("all")) == [1, 2],
        20,
        what=f"signal 10 in both workers:\n{inst.log()}",
    )
    inst.get("/raise?n=11")
    wait_for(
        lambda: [e["wid"] for e in inst.events("second")] == [2], 20, what="signal 11 in worker 2"
    )
    inst.get("/raise?n=12")
    wait_for(lambda: len(inst.events("one")) == 1, 20, what="signal 12 in one worker")
    assert inst.events("one")[0]["wid"] in (1, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_monitor_fires_when_the_file_changes(instance, kind, tmp_path):
    watched = tmp_path / f"events-{kind}.jsonl.watched"
    watched.write_text("first")  # uWSGI watches only a file that exists at start
    inst = instance(kind)
    assert not inst.events("changed")
    watched.write_text("second")
    wait_for(lambda: inst.events("changed"), 20, what=f"the change seen:\n{inst.log()}")


def test_a_signal_without_a_handler_is_said_and_the_workers_go_on(instance):
    inst = instance("procmaster")
    inst.get("/raise?n=99")
    wait_for(lambda: "uWSGI signal 99 has no handler" in inst.log(), 20, what="the warning")
    assert inst.get("/") == b"hello"
