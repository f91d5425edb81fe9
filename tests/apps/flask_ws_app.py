"""flask-uwsgi-websocket (PyPI) with its documented set-up: ``WebSocket(app)``
and ``@ws.route``; run by uWSGI or procmaster with ``module = flask_ws_app:app``.

flask-uwsgi-websocket 0.6.1 (its last release) does ``from flask.app import
setupmethod``; Flask 2.3 moved ``setupmethod`` to ``flask.sansio.scaffold``, so
on Flask >= 2.3 importing the package raises ImportError under any server
(uWSGI too). The three lines below put the name back, as a user of a current
Flask has to (or pins Flask < 2.3).

Werkzeug >= 2.0 matches a WebSocket request (``Upgrade: websocket``) only to a
rule made with ``websocket=True``; the package's rules lack it, so every
WebSocket route answers 404 (under uWSGI as under procmaster) unless the route
says ``websocket=True`` (the package passes it on to werkzeug's ``Rule``).
"""

import flask.app

if not hasattr(flask.app, "setupmethod"):
    from flask.sansio.scaffold import setupmethod

    flask.app.setupmethod = setupmethod

from flask import Flask  # noqa: E402
from flask_uwsgi_websocket import WebSocket  # noqa: E402

app = Flask(__name__)
websocket = WebSocket(app)


@app.route("/")
def index():
    return "flask ok"


@websocket.route("/echo", websocket=True)
def echo(ws):
    while True:
        msg = ws.receive()
        if msg is None:  # the client went away (the package turns IOError into None)
            return
        if msg == b"binary":
            ws.send(b"\x00\x01", binary=True)
        else:
            ws.send(msg)


@websocket.route("/room/<name>", websocket=True)
def room(ws, name):
    ws.send(f"welcome to {name} ({ws.id[:8]})".encode())
    msg = ws.receive()
    if msg is not None:
        ws.send(msg[::-1])
