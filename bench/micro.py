"""Micro-benchmark of the per-request path without the network: parse -> environ
-> app -> headers -> framed bytes, for each protocol, in one process.

It drives the worker's real ``Connection``/``Worker`` code over a socketpair:
N pipelined requests are fed at once, the worker runs the app for each and
writes the responses, which are read back and counted. What it leaves out is
``epoll`` and the kernel's TCP path, so the figure is the ceiling of one worker
on one core.

    python bench/micro.py            # all protocols
    python bench/micro.py http       # one (http, uwsgi, fastcgi)
    python bench/micro.py --logged -n 6000 http 2>/dev/null
                                     # with request logging on (lines to stderr),
                                     # 6000 requests (for callgrind: run at two counts)

The uwsgi and FastCGI requests are the bytes nginx sends (built in wire.py); the
procmaster measured is this checkout's, whatever else is installed.

Also compares parsing the same request with httptools (llhttp, what procmaster
uses) and with a minimal pure-Python parser, which is how the parser was chosen.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from types import SimpleNamespace

import httptools
from processes import ROOT
from wire import fastcgi_request, uwsgi_packet

sys.path.insert(0, ROOT)  # this checkout's procmaster, before any installed one

from procmaster.app import Apps  # noqa: E402
from procmaster.config import Config  # noqa: E402
from procmaster.config import load as load_config  # noqa: E402
from procmaster.scoreboard import Scoreboard  # noqa: E402
from procmaster.worker import Connection, Worker  # noqa: E402

BODY = b"Hello, World!"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [BODY]


HTTP_REQ = (
    b"GET /hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
)


# what nginx sends for "GET /hello?x=1" (a subset of its uwsgi_params / fastcgi_params)
PAIRS = [
    (b"REQUEST_METHOD", b"GET"),
    (b"REQUEST_URI", b"/hello?x=1"),
    (b"PATH_INFO", b"/hello"),
    (b"QUERY_STRING", b"x=1"),
    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"REMOTE_ADDR", b"127.0.0.1"),
    (b"REMOTE_PORT", b"40000"),
    (b"SERVER_PORT", b"80"),
    (b"SERVER_NAME", b"localhost"),
    (b"HTTP_HOST", b"localhost"),
    (b"HTTP_USER_AGENT", b"wrk"),
    (b"HTTP_ACCEPT", b"*/*"),
]
REQUESTS = {
    "http": HTTP_REQ,
    "uwsgi": uwsgi_packet(PAIRS),
    # keep-connection set, as nginx's fastcgi_keep_conn: one connection, many requests
    "fastcgi": fastcgi_request([*PAIRS, (b"SCRIPT_NAME", b""), (b"CONTENT_LENGTH", b"")]),
}


LOGGED = False  # --logged: request logging on


def make_cfg() -> Config:
    """The configuration of one worker with logging off (on with ``--logged``),
    through procmaster's own option table (so new options get their defaults)."""
    return load_config(
        ["--processes", "1"] if LOGGED else ["--processes", "1", "--disable-logging"]
    )


def run_protocol(proto: str, request: bytes, n: int) -> float:
    """Requests per second through the worker's code for ``proto``."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    listener = SimpleNamespace(
        sock=SimpleNamespace(fileno=lambda: -1, family=socket.AF_UNIX, getsockname=lambda: ""),
        proto=proto,
    )
    worker = Worker(1, make_cfg(), [listener], Apps([("", hello)]), -1, Scoreboard(2), 0)
    lst = worker.listeners[0]
    batch = 50 if proto == "http" else 1
    payload = request * batch
    answered = 0  # responses carrying the body, counted in the first batch only
    start = time.perf_counter()
    done = 0
    while done < n:
        fd = os.dup(a.fileno())  # the connection closes its own fd (uwsgi: after each request)
        conn = Connection(fd, worker, lst, ("127.0.0.1", "40000"))
        worker.conns[fd] = conn
        conn.proto.feed(payload)
        conn.process()
        try:
            while data := b.recv(1 << 20, socket.MSG_DONTWAIT):
                if not done:
                    answered += data.count(BODY)
        except BlockingIOError:
            pass
        if not done and answered != batch:
            raise SystemExit(f"{proto}: {answered} of {batch} requests answered with the body")
        if not conn.closed:
            if conn.mask >= 0:  # in the epoll set: a dup of a still open socket stays there
                worker.epoll.unregister(fd)
            conn.closed = True
            os.close(fd)
        done += batch
    elapsed = time.perf_counter() - start
    a.close()
    b.close()
    return done / elapsed


def parse_httptools(n: int) -> float:
    class P:
        def on_url(self, url):
            pass

        def on_header(self, name, value):
            pass

    p = P()
    start = time.perf_counter()
    for _ in range(n):
        httptools.HttpRequestParser(p).feed_data(HTTP_REQ)
    return n / (time.perf_counter() - start)


def parse_python(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        head, _, _ = HTTP_REQ.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        method, target, version = lines[0].split(b" ")
        env = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            env[name.strip()] = value.strip()
    return n / (time.perf_counter() - start)


def main() -> None:
    global LOGGED
    args = sys.argv[1:]
    n = 100_000
    if "--logged" in args:
        args.remove("--logged")
        LOGGED = True
    if "-n" in args:
        at = args.index("-n")
        n = int(args[at + 1])
        del args[at : at + 2]
    which = args or list(REQUESTS)
    unknown = [p for p in which if p not in REQUESTS]
    if unknown:
        raise SystemExit(f"unknown protocol {', '.join(unknown)} (known: {', '.join(REQUESTS)})")
    for proto in which:
        rate = run_protocol(proto, REQUESTS[proto], n // (1 if proto == "http" else 4))
        print(f"{proto:8s} parse+environ+app+framing: {rate:10,.0f} req/s on one core")
    if "http" in which:
        print(
            f"parse only: httptools {parse_httptools(n):10,.0f}/s, pure Python split {parse_python(n):10,.0f}/s"
        )


if __name__ == "__main__":
    main()
