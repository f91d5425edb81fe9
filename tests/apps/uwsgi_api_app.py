"""An app written for uWSGI's API: the same file runs under uWSGI and procmaster.

Every event it sees is a JSON line appended to the file named by ``API_EVENTS``.
"""

import atexit
import json
import os
import time
from urllib.parse import parse_qs

import uwsgi
from uwsgidecorators import harakiri, lock, postfork, thread

EVENTS = os.environ["API_EVENTS"]
COUNTER = EVENTS + ".counter"


def event(kind, **fields):
    line = json.dumps({"kind": kind, "pid": os.getpid(), **fields})
    fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


event("import", wid=uwsgi.worker_id(), masterpid=uwsgi.masterpid())


@postfork
def after_fork():
    event("postfork", wid=uwsgi.worker_id())


def uwsgi_exit():
    event("uwsgi-atexit", wid=uwsgi.worker_id())


uwsgi.atexit = uwsgi_exit
atexit.register(lambda: event("atexit"))


@lock
def bump_locked():
    bump()


def bump():
    # read, then write: without the lock, concurrent workers lose increments
    try:
        with open(COUNTER) as f:
            value = int(f.read() or 0)
    except FileNotFoundError:
        value = 0
    time.sleep(0)
    with open(f"{COUNTER}.tmp{os.getpid()}", "w") as f:
        f.write(str(value + 1))
    os.replace(f"{COUNTER}.tmp{os.getpid()}", COUNTER)


@thread
def in_thread(tag):
    event("thread", tag=tag)


def info():
    opt = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in uwsgi.opt.items()}
    return {
        "wid": uwsgi.worker_id(),
        "mule": uwsgi.mule_id(),
        "masterpid": uwsgi.masterpid(),
        "numproc": uwsgi.numproc,
        "version": uwsgi.version.decode(),
        "version_info": list(uwsgi.version_info[:3]),
        "started_on": uwsgi.started_on,
        "opt": opt,
        "request_id": uwsgi.request_id(),
        "total_requests": uwsgi.total_requests(),
        "workers": [[w["id"], w["pid"]] for w in uwsgi.workers()],
        "hostname_is_bytes": isinstance(uwsgi.hostname, bytes),
        "has_lock_api": all(hasattr(uwsgi, n) for n in ("lock", "unlock", "is_locked")),
        "procmaster": getattr(uwsgi, "procmaster", None),
    }


@harakiri(1)
def quick():
    return f"quick in {os.getpid()}"


def tag_request(who):
    """Log variables set from a helper deep in the app (no environ at hand)."""
    uwsgi.set_logvar("stage", "first")
    uwsgi.set_logvar("stage", "second")  # the last value wins
    uwsgi.set_logvar("who", who)
    got = uwsgi.get_logvar("who")
    return [None if got is None else got.decode(), uwsgi.get_logvar("never")]


def application(env, start_response):
    path = env["PATH_INFO"]
    qs = parse_qs(env.get("QUERY_STRING", ""))
    n = int(qs.get("n", ["1"])[0])
    if path == "/info":
        body = json.dumps(info())
    elif path == "/bump":
        for _ in range(n):
            bump_locked()
        body = "ok"
    elif path == "/hold":
        uwsgi.lock(n)
        event("holding", lock=n)
        time.sleep(120)
        body = "held"
    elif path == "/is_locked":
        body = json.dumps(uwsgi.is_locked(n))
    elif path == "/thread":
        in_thread(qs.get("tag", ["x"])[0])
        body = "ok"
    elif path == "/reload":
        uwsgi.reload()
        body = "reloading"
    elif path == "/user-harakiri":  # armed, then stuck: the process is killed
        uwsgi.set_user_harakiri(1)
        time.sleep(30)
        body = "survived"
    elif path == "/guarded":  # a quick call under @harakiri, then slow: disarmed
        body = quick()
        time.sleep(2)
    elif path == "/logvar":
        body = json.dumps(tag_request(qs.get("who", [""])[0]))
    else:
        body = "hello"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
