"""uWSGI's local RPC: the same file runs under uWSGI and procmaster; /sequence answers
each call's result (or its exception's type) as JSON."""

import json

import uwsgi


def hello(*args):
    return b"hello " + b",".join(args)


def broken():
    raise RuntimeError("this rpc function fails")


def not_bytes():
    return "a str"


def empty():
    return b""


REGISTERED = [
    uwsgi.register_rpc("hello", hello),
    uwsgi.register_rpc("broken", broken),
    uwsgi.register_rpc("not_bytes", not_bytes),
    uwsgi.register_rpc("empty", empty, 0),
]


def attempt(name, *args):
    try:
        result = getattr(uwsgi, name)(*args)
    except Exception as exc:  # the error type is part of the answer
        return [name, type(exc).__name__]
    if isinstance(result, bytes):
        result = result.decode()
    elif isinstance(result, tuple):
        result = sorted(x.decode() for x in result)
    return [name, result]


def sequence():
    return [
        REGISTERED,
        attempt("rpc_list"),
        attempt("call", b"hello"),
        attempt("call", b"hello", b"a", b"b"),
        attempt("call", "hello"),
        attempt("call", b"hello", "str-arg"),
        attempt("call", b"hello", 5),
        attempt("call"),
        attempt("call", b"missing"),
        attempt("call", b"broken"),
        attempt("call", b"not_bytes"),
        attempt("call", b"empty"),
        attempt("rpc", None, b"hello", b"x"),
        attempt("rpc", b"", b"hello", b"y"),
        attempt("rpc", "", b"hello", b"z"),
        attempt("rpc", None),
        attempt("rpc"),
        attempt("rpc", None, "hello"),
        attempt("register_rpc", "x" * 300, hello),
        attempt("register_rpc", "in_worker", lambda: b"mine"),
        attempt("call", b"in_worker"),
        attempt("rpc_list"),
        attempt("register_rpc", "hello", lambda *a: b"replaced"),
        attempt("call", b"hello"),
    ]


def application(env, start_response):
    if env["PATH_INFO"] == "/sequence":
        body = sequence()
    elif env["PATH_INFO"] == "/remote":  # another node: uWSGI dials it
        body = attempt("rpc", b"127.0.0.1:1", b"hello")
    else:
        body = "hello"
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
