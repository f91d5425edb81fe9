"""django-uwsgi-taskmanager (from PyPI) on procmaster's spooler, set up as its README
says: "taskmanager" in INSTALLED_APPS, ``migrate``, ``collectcommands``, and an INI
with ``spooler`` (the directory made first). Tasks are launched the way its admin
action does (``Task.launch()``) and run a plain Django command in the spooler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import APPS, ROOT, free_port, http_get, wait_for

pytest.importorskip("taskmanager", reason="django-uwsgi-taskmanager is a test extra")


def _finished(port: int, task_id: int) -> bool:
    """The task ran and the spooler is done with it: its report has a result
    (written at the run's end) and the task is no longer "started"."""
    state = _get(port, f"/state?id={task_id}")
    return (
        bool(state["reports"])
        and state["reports"][-1]["result"] != ""
        and state["status"] != "started"
    )


def _get(port: int, path: str) -> dict:
    status, _, body = http_get(port, path, timeout=30)
    assert status == 200, body
    return json.loads(body)


@pytest.fixture
def site(procmaster, tmp_path):
    env = dict(os.environ)
    env.update(TASKMGR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="taskmgr_site.settings")
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    for step in (["migrate", "-v0"], ["collectcommands", "--excludecore"]):
        out = subprocess.run(
            [sys.executable, "-m", "django", *step], env=env, capture_output=True, timeout=120
        )
        assert out.returncode == 0, out.stderr.decode()
    (tmp_path / "spooler").mkdir()  # "remember to manually create the spooler directory"
    port = free_port()
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(
        "[uwsgi]\n"
        "chdir = %d\n"
        "env = DJANGO_SETTINGS_MODULE=taskmgr_site.settings\n"
        f"env = TASKMGR_DIR={tmp_path}\n"
        f"http-socket = 127.0.0.1:{port}\n"
        "master = true\n"
        "module = taskmgr_site.wsgi\n"
        "plugin = python3\n"
        f"pythonpath = {APPS}\n"
        "spooler = %dspooler\n"
        "processes = 2\n"
        "spooler-frequency = 1\n"
    )
    server = procmaster("--ini", ini, wait_port=port)
    return port, server, tmp_path / "spooler"


def test_tasks_run_their_command_in_the_spooler_report_and_repeat(site):
    port, server, spool = site
    task = _get(port, "/launch?command=greet&name=once&arguments=world")
    assert task["status"] == "spooled"
    assert Path(task["spooler_id"]).parent == spool  # uwsgi.spool answered the file's path
    wait_for(lambda: _finished(port, task["id"]), 30, what=f"a report:\n{server.log}")
    state = _get(port, f"/state?id={task['id']}")
    assert state["status"] == "idle" and state["spooler_id"] == "", f"{state}\n{server.log}"
    [report] = state["reports"]
    assert report["result"] == "ok", report
    assert "hello world from pid" in report["log"] and "in the spooler: True" in report["log"]
    assert not list(spool.glob("uwsgi_spoolfile_on_*"))  # done: the task file is gone

    # a repeating task is spooled again for its next ride; stop() removes that file
    later = _get(port, "/launch?command=greet&name=later&arguments=x&in=3600")
    assert later["status"] == "scheduled" and Path(later["spooler_id"]).exists()
    # two seconds ahead: Task.launch() saves its status after spooling, so a spooler
    # quick enough to run the task first would have that status overwritten (the
    # package's own race; under uWSGI too)
    task = _get(port, "/launch?command=greet&name=every&arguments=y&period=minute&rate=1&in=2")
    wait_for(lambda: _finished(port, task["id"]), 30, what=f"a run:\n{server.log}")
    state = _get(port, f"/state?id={task['id']}")
    assert state["status"] == "spooled" and state["next_ride"] != "None"
    again = Path(state["spooler_id"])
    assert again.exists() and again != Path(task["spooler_id"])  # the spooler spooled it anew
    assert _get(port, f"/stop?id={task['id']}")["status"] == "idle"
    assert not again.exists()
    assert not _get(port, f"/state?id={later['id']}")["reports"]  # an hour away: not run
    assert "raised" not in server.log
