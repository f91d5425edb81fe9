"""An app that queues work for the spooler through uwsgidecorators: the same file runs
under uWSGI and procmaster. Each task appends a JSON line to ``SPOOL_RESULTS``."""

import json
import os
import time
from urllib.parse import parse_qs

import uwsgi
from uwsgidecorators import spool, spoolraw

RESULTS = os.environ["SPOOL_RESULTS"]


def record(**fields):
    line = json.dumps(
        {
            "pid": os.getpid(),
            "spooler": bool(uwsgi.i_am_the_spooler()),
            "wid": uwsgi.worker_id(),
            **fields,
        }
    )
    fd = os.open(RESULTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


@spool
def task(args):
    record(
        kind="task",
        n=args["n"],
        keys=sorted(k for k in args if k != "spooler_task_name"),
        body=args.get("body", ""),
    )


@spool(pass_arguments=True)
def typed(number, items=None):
    record(kind="typed", number=number, items=items)


@spoolraw
def flaky(args):
    marker = RESULTS + ".flaky"
    record(kind="flaky", first=not os.path.exists(marker))
    if not os.path.exists(marker):
        open(marker, "w").close()
        return uwsgi.SPOOL_RETRY
    return uwsgi.SPOOL_OK


@spool
def failing(args):
    record(kind="failing")
    raise RuntimeError("this task always fails")


def application(env, start_response):
    qs = parse_qs(env.get("QUERY_STRING", ""))
    path = env["PATH_INFO"]
    if path == "/task":
        out = task.spool(n=qs["n"][0], body=b"the body")
    elif path == "/many":
        start, count = int(qs["start"][0]), int(qs["count"][0])
        for n in range(start, start + count):
            task.spool(n=str(n))
        out = b"queued"
    elif path == "/typed":
        out = typed.spool(7, items=[1, "two"])
    elif path == "/flaky":
        out = flaky.spool(x="1")
    elif path == "/failing":
        out = failing.spool(x="1")
    elif path == "/later":
        out = task.spool(n="later", at=str(int(qs["at"][0])))
    elif path == "/jobs":  # a task for much later, then what the spooler holds
        name = task.spool(n="waiting", at=str(int(time.time()) + 3600))
        jobs = uwsgi.spooler_jobs()
        out = json.dumps(
            {
                "spoolers": [d.decode() for d in uwsgi.spoolers],
                "listed": name in jobs and all(isinstance(j, bytes) for j in jobs),
            }
        )
    elif path == "/raw":
        try:
            out = uwsgi.spool({b"a": b"1", "b": "2"})
        except ValueError as exc:
            out = f"ValueError: {exc}".encode()
    else:
        out = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [out if isinstance(out, bytes) else str(out).encode()]
