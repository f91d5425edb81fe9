"""An app on uWSGI's signal framework: the same file runs under uWSGI and procmaster.

Events are JSON lines appended to the file named by ``API_EVENTS``.
"""

import json
import os
from urllib.parse import parse_qs

import uwsgi
from uwsgidecorators import filemon, signal, timer

EVENTS = os.environ["API_EVENTS"]
WATCHED = EVENTS + ".watched"


def event(kind, **fields):
    line = json.dumps({"kind": kind, "pid": os.getpid(), "wid": uwsgi.worker_id(), **fields})
    fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


@timer(1)
def tick(signum):
    event("timer", signum=signum)


@signal(10, target="workers")
def to_all(signum):
    event("all", signum=signum)


@signal(11, target="worker2")
def to_second(signum):
    event("second", signum=signum)


@signal(12)
def to_one(signum):
    event("one", signum=signum)


@filemon(WATCHED)
def changed(signum):
    event("changed", signum=signum)


def application(env, start_response):
    qs = parse_qs(env.get("QUERY_STRING", ""))
    if env["PATH_INFO"] == "/raise":
        uwsgi.signal(int(qs["n"][0]))
        body = "raised"
    elif env["PATH_INFO"] == "/registered":
        body = json.dumps([uwsgi.signal_registered(n) for n in (10, 11, 12, 99)])
    else:
        body = "hello"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
