"""The development site of ``configs/flask-dev/dev.ini``.

``register_debug_server()`` builds the Flask app with ``app.debug = True`` and
wraps it in Werkzeug's ``DebuggedApplication(app, evalex=True)``: an exception
shows the interactive traceback page instead of a bare 500. The console of that
page keeps its frames in the worker process that raised, so it needs every
request of a session to reach that one process: ``workers = 1``.
"""

from __future__ import annotations

from flask import Flask, render_template
from werkzeug.debug import DebuggedApplication

GREETING = "Hello from the development site"


def register_debug_server() -> DebuggedApplication:
    """The app as the development INI loads it (``module = site_module:register_debug_server()``)."""
    app = Flask(__name__)
    app.debug = True

    @app.route("/")
    def index() -> str:
        return render_template("index.html", greeting=GREETING)

    @app.route("/answer")
    def answer() -> str:
        return GREETING

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("boom: the debugger shows this traceback")

    return DebuggedApplication(app, evalex=True)
