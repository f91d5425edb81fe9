"""uWSGI's shared areas through uwsgi.sharedarea_*: the same file runs under uWSGI and
procmaster (with ``sharedarea = 1`` and ``sharedarea = size=100``)."""

import json
import os
from urllib.parse import parse_qs

import uwsgi

PAGE = len(uwsgi.sharedarea_memoryview(0))


def attempt(name, *args):
    try:
        result = getattr(uwsgi, name)(*args)
    except Exception as exc:  # the error is part of the answer
        return [name, f"{type(exc).__name__}"]
    if isinstance(result, bytes):
        result = result.hex()
    return [name, result]


def sequence():
    last = PAGE - 1
    return [
        attempt("sharedarea_write", 0, 0, b"hello world"),
        attempt("sharedarea_read", 0, 0, 5),
        attempt("sharedarea_read", 0, 6, 5),
        attempt("sharedarea_readbyte", 0, 1),
        attempt("sharedarea_writebyte", 0, 2, 200),
        attempt("sharedarea_read8", 0, 2),
        attempt("sharedarea_writebyte", 0, 2, 300),
        attempt("sharedarea_writebyte", 0, 2, -1),
        attempt("sharedarea_write64", 0, 16, 2**40 + 5),
        attempt("sharedarea_read64", 0, 16),
        attempt("sharedarea_readlong", 0, 16),
        attempt("sharedarea_writelong", 0, 16, -7),
        attempt("sharedarea_read64", 0, 16),
        attempt("sharedarea_write64", 0, 16, 2**64),
        attempt("sharedarea_write32", 0, 32, 0xFFFFFFFF),
        attempt("sharedarea_read32", 0, 32),
        attempt("sharedarea_write32", 0, 32, 123456),
        attempt("sharedarea_read32", 0, 32),
        attempt("sharedarea_write16", 0, 40, 40000),
        attempt("sharedarea_read16", 0, 40),
        attempt("sharedarea_inc64", 0, 48),
        attempt("sharedarea_inc64", 0, 48, 10),
        attempt("sharedarea_inclong", 0, 48, 5),
        attempt("sharedarea_dec64", 0, 48, 3),
        attempt("sharedarea_read64", 0, 48),
        attempt("sharedarea_write64", 0, 56, 2**63 - 1),
        attempt("sharedarea_inc64", 0, 56),
        attempt("sharedarea_read64", 0, 56),
        attempt("sharedarea_inc32", 0, 64, 7),
        attempt("sharedarea_read32", 0, 64),
        attempt("sharedarea_read", 0, last, 1),
        attempt("sharedarea_read", 0, last, 2),
        attempt("sharedarea_read", 0, PAGE, 1),
        attempt("sharedarea_write", 0, last, b"xy"),
        attempt("sharedarea_write", 0, last, b"z"),
        attempt("sharedarea_read64", 0, PAGE - 8),
        attempt("sharedarea_read64", 0, PAGE - 7),
        attempt("sharedarea_read", 1, 0, 3),
        attempt("sharedarea_read", 2, 0, 1),
        attempt("sharedarea_write", 2, 0, b"x"),
        attempt("sharedarea_read8", 5, 0),
        attempt("sharedarea_memoryview", 3),
        attempt("sharedarea_rlock", 0),
        attempt("sharedarea_unlock", 0),
        attempt("sharedarea_wlock", 1),
        attempt("sharedarea_unlock", 1),
        attempt("sharedarea_rlock", 7),
        [len(uwsgi.sharedarea_memoryview(1))],
        [len(uwsgi.sharedarea_read(1, 0))],
        [len(uwsgi.sharedarea_read(0, 10))],
        [bytes(uwsgi.sharedarea_memoryview(0)[0:5]).hex()],
    ]


def application(env, start_response):
    qs = parse_qs(env.get("QUERY_STRING", ""))
    path = env["PATH_INFO"]
    if path == "/sequence":
        body = sequence()
    elif path == "/inc":
        for _ in range(int(qs["n"][0])):
            uwsgi.sharedarea_inc64(1, 8)
        body = os.getpid()
    elif path == "/count":
        body = uwsgi.sharedarea_read64(1, 8)
    elif path == "/pid":
        body = os.getpid()
    else:
        body = "hello"
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
