"""Micro-benchmark of the per-request path without the network: parse -> environ
-> app -> headers -> framed bytes, for each protocol, in one process.

It drives the worker's real ``Connection``/``Worker`` code over a socketpair:
N pipelined requests are fed at once, the worker runs the app for each and
writes the responses, which are read back and counted. What it leaves out is
``epoll`` and the kernel's TCP path, so the figure is the ceiling of one worker
on one core.

    python bench/micro.py            # all protocols
    python bench/micro.py http       # one

Also compares parsing the same request with httptools (llhttp, what procmaster
uses) and with a minimal pure-Python parser, which is how the parser was chosen.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from procmaster.app import Apps  # noqa: E402
from procmaster.scoreboard import Scoreboard  # noqa: E402
from procmaster.worker import Connection, Worker  # noqa: E402

BODY = b"Hello, World!"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [BODY]


HTTP_REQ = (
    b"GET /hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
)


def uwsgi_packet() -> bytes:
    import struct

    pairs = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": "/hello?x=1",
        "PATH_INFO": "/hello",
        "QUERY_STRING": "x=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "SERVER_PORT": "80",
        "SERVER_NAME": "localhost",
        "HTTP_HOST": "localhost",
        "HTTP_USER_AGENT": "wrk",
        "HTTP_ACCEPT": "*/*",
    }
    data = b"".join(
        struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(v)) + v.encode()
        for k, v in pairs.items()
    )
    return struct.pack("<BHB", 0, len(data), 0) + data


class _Cfg(SimpleNamespace):
    def get(self, name):
        return getattr(self, name.replace("-", "_"), None)


def make_cfg() -> _Cfg:
    return _Cfg(
        processes=1,
        buffer_size=4096,
        socket_timeout=4,
        http_keepalive=None,
        limit_post=0,
        disable_logging=True,
        threads=1,
        lazy_apps=False,
        worker_reload_mercy=60,
        log_format=None,
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
    start = time.perf_counter()
    done = 0
    while done < n:
        fd = os.dup(a.fileno())  # the connection closes its own fd (uwsgi: after each request)
        conn = Connection(fd, worker, lst, ("127.0.0.1", "40000"))
        worker.conns[fd] = conn
        conn.proto.feed(payload)
        conn.process()
        try:
            while b.recv(1 << 20, socket.MSG_DONTWAIT):
                pass
        except BlockingIOError:
            pass
        if not conn.closed:
            conn.closed = True
            os.close(fd)
        done += batch
    elapsed = time.perf_counter() - start
    a.close()
    b.close()
    return done / elapsed


def parse_httptools(n: int) -> float:
    import httptools

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
    which = sys.argv[1:] or ["http", "uwsgi", "fastcgi"]
    n = 100_000
    cases = {"http": HTTP_REQ, "uwsgi": None, "fastcgi": None}
    for proto in which:
        request = cases.get(proto)
        if proto == "uwsgi":
            request = uwsgi_packet()
        if proto == "fastcgi":
            try:
                from tests.fcgi_client import encode_request  # written with the FastCGI tests
            except ImportError:
                print("fastcgi  see bench/micro_protocols.py")
                continue
            request = encode_request(
                {"REQUEST_METHOD": "GET", "PATH_INFO": "/hello"}, b"", keep_conn=True
            )
        try:
            rate = run_protocol(proto, request, n // (1 if proto == "http" else 4))
        except (ImportError, KeyError) as exc:
            print(f"{proto:8s} skipped: {exc}")
            continue
        print(f"{proto:8s} parse+environ+app+framing: {rate:10,.0f} req/s on one core")
    if "http" in which:
        print(
            f"parse only: httptools {parse_httptools(n):10,.0f}/s, pure Python split {parse_python(n):10,.0f}/s"
        )


if __name__ == "__main__":
    main()
