"""uWSGI signals routed to mules, a farm and the spooler: the same file runs under
uWSGI and procmaster (with ``mules = 2``, ``farm = pool:2`` and a spooler).

Each handler appends a JSON line to the file named by ``API_EVENTS``: which
process ran it (its role, mule id, worker id).
"""

import json
import os
from urllib.parse import parse_qs

import uwsgi
from uwsgidecorators import mulefunc, signal

EVENTS = os.environ["API_EVENTS"]


def event(kind, **fields):
    line = json.dumps(
        {
            "kind": kind,
            "pid": os.getpid(),
            "mule": uwsgi.mule_id(),
            "wid": uwsgi.worker_id(),
            "spooler": bool(uwsgi.i_am_the_spooler()),
            **fields,
        }
    )
    fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


@signal(20, target="mules")
def to_every_mule(signum):
    event("mules", signum=signum)


@signal(21, target="mule")
def to_any_mule(signum):
    event("mule", signum=signum)


@signal(22, target="mule2")
def to_mule_two(signum):
    event("mule2", signum=signum)


@signal(23, target="spooler")
def to_the_spooler(signum):
    event("spooler", signum=signum)


@signal(24, target="farm_pool")
def to_the_farm(signum):
    event("farm", signum=signum)


@signal(25, target="workers")
def from_a_mule(signum):
    event("from-mule", signum=signum)


@signal(26, target="mule7")
def to_nobody(signum):
    event("nobody", signum=signum)


@mulefunc
def raise_in_mule(num):
    uwsgi.signal(num)


def spooler(args):  # the spooler's handler (this app spools nothing)
    return uwsgi.SPOOL_OK


uwsgi.spooler = spooler


def application(env, start_response):
    qs = parse_qs(env.get("QUERY_STRING", ""))
    if env["PATH_INFO"] == "/raise":
        uwsgi.signal(int(qs["n"][0]))
        body = "raised"
    elif env["PATH_INFO"] == "/mule-raises":
        raise_in_mule(int(qs["n"][0]))
        body = "asked"
    else:
        body = "hello"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
