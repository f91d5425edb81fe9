"""The ASGI worker's read at accept (``worker/asgi_accept.py``): requests that
are already there when the worker accepts are answered before the loop makes a
transport, and everything past that first step keeps the loop path's
guarantees. A request to ``/block`` blocks the (single) worker's loop, so the
connections opened meanwhile wait in the listen queue with their requests
sent: the worker then finds each request at accept."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from support import APPS, ROOT, Server, accepts, free_port, http_get, raw_request, wait_for

BLOCK = 1.0  # seconds the loop is blocked while the requests under test are sent


@pytest.fixture(scope="module", params=["auto", "asyncio"])
def site(request, tmp_path_factory):
    """One worker on uvloop (``auto``, when installed) and on asyncio's own loop."""
    tmp = tmp_path_factory.mktemp("asgi-accept")
    port = free_port()
    env = {"PYTHONPATH": f"{APPS}:{ROOT}"}
    args = [
        "--http-socket", f"127.0.0.1:{port}",
        "--asgi", "asgi_accept_app:app",
        "--processes", "1",
        "--master",
        "--asgi-loop", request.param,
        "--harakiri", "3",
        "--socket-timeout", "10",
    ]  # fmt: skip
    full = dict(os.environ)
    full.update(env)
    full.pop("NOTIFY_SOCKET", None)
    server = Server(args, tmp, full, Path(tmp) / "log")
    try:
        wait_for(lambda: accepts(port, server), 20, what=f"port {port}:\n{server.log}")
        yield server, port
    finally:
        server.kill_all()


class Blocked:
    """The worker's loop is blocked for ``BLOCK`` seconds (a ``/block`` request
    in a thread) while the body of the ``with`` opens connections."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reply = b""

    def __enter__(self):
        def block() -> None:
            self.reply = raw_request(
                self.port, b"GET /block?%g HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % BLOCK
            )

        self.thread = threading.Thread(target=block)
        self.thread.start()
        time.sleep(0.2)  # the worker is in /block (or /block waits in the queue first)
        return self

    def __exit__(self, *exc) -> None:
        self.thread.join(30)
        assert b"blocked" in self.reply


def connect(port: int, request: bytes, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(20)
    s.connect(("127.0.0.1", port))
    s.sendall(request)
    return s


def read_all(s: socket.socket) -> bytes:
    chunks = []
    while chunk := s.recv(1 << 20):
        chunks.append(chunk)
    s.close()
    return b"".join(chunks)


def test_a_large_answer_at_accept_is_sent_whole(site):
    _, port = site
    with Blocked(port):
        big = b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        s = connect(port, big, rcvbuf=65536)  # (the socket takes a part of it)
    reply = read_all(s)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"b" * (16 * 1024 * 1024)


def test_a_stream_at_accept_waits_for_a_slow_client(site):
    """The app's send() waits once the unsent bytes pass the high-water mark,
    as it does on the loop's transport: memory stays bounded."""
    _, port = site
    request = b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with Blocked(port):
        s = connect(port, request, rcvbuf=65536)  # and nothing read for now
    time.sleep(0.5)
    _, _, sent = http_get(port, "/progress")
    assert int(sent) < 32, f"{int(sent)} chunks of 256 KiB went out to a client reading nothing"
    reply = read_all(s)
    assert reply.count(b"x") == 128 * 256 * 1024
    assert http_get(port, "/progress")[2] == b"128"


def test_keep_alive_and_pipelining_after_accept(site):
    _, port = site
    one = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    with Blocked(port):
        s = connect(port, one + one)  # two at once: the second waits behind the first
    s.settimeout(20)
    got = b""
    while got.count(b"Hello, World!") < 2:
        got += s.recv(65536)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # the same connection
    got += read_all(s)
    assert got.count(b"HTTP/1.1 200 OK") == 3 and got.count(b"Hello, World!") == 3


def test_each_request_has_its_own_context(site):
    """A context variable set by one request's first step is not seen by the
    next (each runs in a copy of the context, as a task does)."""
    _, port = site
    request = b"GET /ctx HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with Blocked(port):
        first = connect(port, request)
        second = connect(port, request)
    for s in (first, second):
        assert read_all(s).endswith(b"unset set by an earlier request")


def test_the_first_step_runs_in_the_requests_own_task(site):
    """An app that needs its task in its first step (anyio for a thread, as
    FastAPI runs a sync endpoint; a cancel scope) finds it: read at accept, alone
    or pipelined behind another in the same read."""
    _, port = site
    request = b"GET /in-task HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /in-task HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with Blocked(port):
        at_accept = [connect(port, last) for _ in range(3)]
        pipelined = connect(port, request + request + last)
    for s in at_accept:
        reply = read_all(s)
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"True from a thread"), reply
    replies = read_all(pipelined)
    assert replies.count(b"HTTP/1.1 200") == 3, replies
    assert replies.count(b"True from a thread") == 3, replies


def test_bad_request_at_accept_gets_its_400(site):
    _, port = site
    with Blocked(port):
        s = connect(port, b"NOT HTTP AT ALL\r\n\r\n")
    reply = read_all(s)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]


def test_harakiri_cancels_a_request_that_waited_at_accept(site):
    server, port = site
    with Blocked(port):
        s = connect(port, b"GET /forever HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply = read_all(s)
    assert reply.startswith(b"HTTP/1.1 500"), reply[:200]
    server.wait_log("HARAKIRI")
