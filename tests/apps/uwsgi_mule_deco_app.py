"""uwsgidecorators' post-fork family: @postfork (every worker, mule and spooler),
@postfork(N), @mule(N), @muleloop(N), @mulemsg(N), @farm(name). The same file runs
under uWSGI and procmaster with ``mules = 4``, ``farm = pool:4`` and a spooler.
Every event is a JSON line appended to ``MULE_RESULTS``."""

import json
import os
from urllib.parse import parse_qs

import uwsgi
from uwsgidecorators import farm, mule, muleloop, mulemsg, postfork

RESULTS = os.environ["MULE_RESULTS"]


def record(kind, **fields):
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
    fd = os.open(RESULTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


@postfork
def everywhere():
    record("postfork")


@postfork(2)
def only_worker_two():
    record("postfork-2")


@mule(1)
def first_mule_once():
    record("mule-once")


LOOPS = []


@muleloop(2)
def second_mule_loops():
    LOOPS.append(1)
    if len(LOOPS) == 3:
        record("muleloop", times=len(LOOPS))
        mulemsg_wait()


def mulemsg_wait():
    while True:  # stay in the loop's third call: the mule is busy for good
        uwsgi.mule_get_msg(timeout=60)


@mulemsg(3)
def third_mule_messages(message):
    record("mulemsg", msg=message.decode())


@farm("pool")  # uWSGI wants a str here (and bytes in mule_msg)
def farm_messages(message):
    record("farm", msg=message.decode())


def spooler(args):
    return uwsgi.SPOOL_OK


uwsgi.spooler = spooler


def application(env, start_response):
    qs = parse_qs(env.get("QUERY_STRING", ""))
    if env["PATH_INFO"] == "/to-mule":
        body = repr(uwsgi.mule_msg(qs["msg"][0].encode(), int(qs["n"][0])))
    elif env["PATH_INFO"] == "/to-farm":
        body = repr(uwsgi.farm_msg("pool", qs["msg"][0].encode()))
    else:
        body = "hello"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
