"""An app that hands work to mules: the same file runs under uWSGI and procmaster.
Every mule-side event is a JSON line appended to ``MULE_RESULTS``."""

import json
import os
from urllib.parse import parse_qs

import uwsgi
from uwsgidecorators import mulefunc

RESULTS = os.environ["MULE_RESULTS"]


def record(**fields):
    line = json.dumps({"pid": os.getpid(), "mule": uwsgi.mule_id(), **fields})
    fd = os.open(RESULTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


@mulefunc
def work(n, tag=None):
    record(kind="work", n=n, tag=tag)


@mulefunc(b"pool")  # uWSGI takes a farm name as bytes only
def pooled(n):
    record(kind="pooled", n=n, in_farm=bool(uwsgi.in_farm(b"pool")))


def application(env, start_response):
    qs = parse_qs(env.get("QUERY_STRING", ""))
    path = env["PATH_INFO"]
    n = int(qs.get("n", ["0"])[0])
    if path == "/work":
        out = repr(work(n, tag="t"))
    elif path == "/pooled":
        out = repr(pooled(n))
    elif path == "/direct":
        out = repr(uwsgi.mule_msg(qs["msg"][0].encode(), 1))
    elif path == "/nobody":
        out = repr(uwsgi.mule_msg(b"x", 9))
    elif path == "/nofarm":
        try:
            out = repr(uwsgi.mule_msg(b"x", b"nofarm"))
        except ValueError as exc:
            out = f"ValueError: {exc}"
    else:
        out = f"worker {uwsgi.worker_id()} mule {uwsgi.mule_id()}"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [out.encode()]
