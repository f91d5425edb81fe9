"""The start-up note about Werkzeug's debugger with several workers or threads."""

from __future__ import annotations

import pytest

from procmaster.app import Apps, debugger_note
from procmaster.config import load

werkzeug_debug = pytest.importorskip("werkzeug.debug")


def Cfg(processes: int = 1, threads: int = 1):
    return load(["--processes", str(processes), "--threads", str(threads)], environ={})


def plain(environ, start_response):
    start_response("200 OK", [])
    return [b""]


def test_no_note_with_one_worker_and_one_thread():
    app = werkzeug_debug.DebuggedApplication(plain, evalex=True)
    assert debugger_note(Apps([("", app)]), Cfg(processes=1, threads=1)) is None


@pytest.mark.parametrize(("processes", "threads"), [(2, 1), (1, 4), (3, 2)])
def test_note_when_wrapped_and_more_than_one(processes, threads):
    app = werkzeug_debug.DebuggedApplication(plain, evalex=True)
    note = debugger_note(Apps([("", app)]), Cfg(processes=processes, threads=threads))
    assert note and "DebuggedApplication" in note
    assert f"{processes} worker(s) x {threads} thread(s)" in note and "workers = 1" in note


def test_flask_wsgi_app_wrapped_and_mounts():
    flask = pytest.importorskip("flask")
    app = flask.Flask(__name__)
    app.wsgi_app = werkzeug_debug.DebuggedApplication(app.wsgi_app, evalex=True)
    note = debugger_note(Apps([("/dev", app), ("", plain)]), Cfg(processes=2))
    assert note and "(mounted at /dev)" in note


def test_no_note_without_the_debugger():
    assert debugger_note(Apps([("", plain)]), Cfg(processes=4, threads=2)) is None
