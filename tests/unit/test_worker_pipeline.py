"""A connection's memory stays bounded whatever the client sends (issue 15,
holes 2 and 8): pipelined requests are not run while the responses before them
are unsent beyond a bounded buffer, no more than a slice of pipelined bytes is
parsed ahead, and a body cut off mid-upload is closed with its connection.

No processes: a ``Worker`` over a socketpair, as bench/micro.py drives it."""

from __future__ import annotations

import os
import select
import socket
from types import SimpleNamespace

import pytest

from procmaster.app import Apps
from procmaster.config import load
from procmaster.scoreboard import Scoreboard
from procmaster.worker import Connection, Worker
from procmaster.worker import connection as connection_module
from procmaster.worker.connection import FEED_SLICE
from procmaster.worker.response import HIGH_WATER

BIG = 512 * 1024
calls: list[str] = []


def app(environ, start_response):
    calls.append(environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    if environ["PATH_INFO"] == "/big":
        return [b"x" * BIG]
    if environ["PATH_INFO"] == "/huge":
        return [b"x" * (2 * BIG)]
    if environ["PATH_INFO"] == "/stream":
        return (b"s" * BIG for _ in range(4))
    return [b"ok"]


@pytest.fixture
def connect():
    made = []
    calls.clear()

    def connect():
        cfg = load(["--disable-logging"], environ={})
        listener = SimpleNamespace(
            sock=SimpleNamespace(
                fileno=lambda: -1, family=socket.AF_INET, getsockname=lambda: ("127.0.0.1", 8000)
            ),
            proto="http",
        )
        worker = Worker(1, cfg, [listener], Apps([("", app)]), -1, Scoreboard(2), 0)
        ours, client = socket.socketpair()
        ours.setblocking(False)
        fd = os.dup(ours.fileno())
        ours.close()
        conn = Connection(fd, worker, worker.listeners[0], ("127.0.0.1", "40000"))
        worker.conns[fd] = conn
        made.append((conn, client))
        return conn, client

    yield connect
    for conn, client in made:
        conn.close()
        client.close()


def request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def test_pipelined_requests_wait_while_responses_are_unsent(connect):
    conn, client = connect()
    n = 60 * 1024 // len(request("/big"))  # ~2,000 requests in one read
    client.sendall(request("/big") * n)
    conn.on_readable()  # the client reads nothing
    # only as many responses as fill the bounded buffer were made
    assert len(calls) <= HIGH_WATER // BIG + 2 + 8, len(calls)  # + what the socket took
    assert conn.out_size <= HIGH_WATER + BIG
    # a slice of pipelined bytes is parsed ahead, the rest waits unparsed
    assert len(conn.ready) <= FEED_SLICE // len(request("/big")) + 1
    assert conn.pending and not conn.reading
    # nothing more is read while requests wait: the mask asks for writing only
    assert conn.mask == select.EPOLLOUT


def test_pipelined_requests_all_answered_in_order_once_the_client_reads(connect):
    conn, client = connect()
    paths = [f"/r{i}" for i in range(300)] + ["/big", "/big"] + [f"/s{i}" for i in range(300)]
    client.sendall(b"".join(request(p) for p in paths))
    client.setblocking(False)
    conn.on_readable()
    got = bytearray()
    for _ in range(10000):
        try:
            while chunk := client.recv(1 << 20):
                got += chunk
        except BlockingIOError:
            pass
        if len(calls) == len(paths) and not conn.out and not conn.ready and not conn.pending:
            break
        if conn.out or conn.awaiting_write:
            conn.on_writable()
        elif conn.reading:
            conn.on_readable()
    try:
        while chunk := client.recv(1 << 20):
            got += chunk
    except BlockingIOError:
        pass
    assert calls == paths
    assert got.count(b"HTTP/1.1 200 OK") == len(paths)
    assert len(got) > 2 * BIG


def test_a_body_cut_off_mid_upload_is_closed_with_its_connection(connect):
    conn, client = connect()
    head = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
    client.sendall(head)
    conn.on_readable()
    chunk = b"y" * 65536
    for _ in range(40):  # 2.5 MB: past the spool threshold, into a temp file
        client.sendall(chunk)
        conn.on_readable()
    body = conn.receiving.body
    spool = body.file
    assert spool is not None and not spool.closed
    fds_before = len(os.listdir("/proc/self/fd"))
    conn.close()  # the client reset: no request, no exchange, no garbage collection
    assert spool.closed
    assert len(os.listdir("/proc/self/fd")) <= fds_before - 2  # the socket and the spool file
    assert not calls


def test_a_socket_that_drains_while_the_next_request_waits_does_not_stall(connect, monkeypatch):
    # the first write of each response takes half of it (the socket is full),
    # the flush right after takes the rest (the client read meanwhile): the next
    # pipelined request must then run, not wait for an EPOLLOUT nobody asked for
    conn, client = connect()
    n = 5
    client.sendall(request("/big") * n)
    data = os.read(conn.fd, 65536)
    fake = SimpleNamespace(**{k: getattr(os, k) for k in ("read", "close", "dup", "writev")})
    first = {"yes": True}

    def write(fd, buf):
        if first["yes"]:
            first["yes"] = False
            return len(buf) // 2
        first["yes"] = True
        return len(buf)

    fake.write = write
    monkeypatch.setattr(connection_module, "os", fake)
    fake.read = lambda fd, size: data
    conn.on_readable()
    assert len(calls) == n
    assert not conn.ready and not conn.out
    assert conn.mask & select.EPOLLIN


def test_a_streamed_response_goes_on_when_the_socket_drains_at_once(connect, monkeypatch):
    # the first write of the first chunk takes part of it; the next write takes
    # everything (a fast reader): the generator must still be resumed
    conn, client = connect()
    client.sendall(request("/stream"))
    data = os.read(conn.fd, 65536)
    fake = SimpleNamespace(**{k: getattr(os, k) for k in ("close", "dup", "writev")})
    fake.read = lambda fd, size: data
    writes = []

    def write(fd, buf):
        n = len(buf) // 2 if not writes else len(buf)
        writes.append(n)
        return n

    fake.write = write
    monkeypatch.setattr(connection_module, "os", fake)
    conn.on_readable()
    assert conn.current is not None  # suspended above the high-water mark
    # it waits for the socket: EPOLLOUT is asked for, whatever was flushed meanwhile
    assert conn.out or conn.mask & select.EPOLLOUT
    for _ in range(20):
        if conn.current is None:
            break
        conn.on_writable()
    assert conn.current is None and not conn.out  # the whole response went out


def test_requests_wait_then_go_when_the_last_flush_drains_everything(connect, monkeypatch):
    # each response: the first write takes half (over the high-water mark), the
    # flush before the next request takes nothing (the socket is full: the loop
    # stops), the flush on the way out takes the rest (the client read meanwhile).
    # The next request must then run: with nothing queued no EPOLLOUT comes, and
    # a connection with ready requests reads nothing (seen as a stall under load)
    conn, client = connect()
    n = 4
    client.sendall(request("/huge") * n)
    data = os.read(conn.fd, 65536)
    fake = SimpleNamespace(**{k: getattr(os, k) for k in ("close", "dup")})
    fake.read = lambda fd, size: data
    step = {"i": 0}

    def take(buf):
        i = step["i"] % 3
        step["i"] += 1
        if i == 1:
            raise BlockingIOError  # the socket is full
        return len(buf) // 2 if i == 0 else len(buf)

    fake.write = lambda fd, buf: take(buf)
    fake.writev = lambda fd, bufs: take(b"".join(bytes(b) for b in bufs))
    monkeypatch.setattr(connection_module, "os", fake)
    conn.on_readable()
    for _ in range(50):  # whatever the loop would deliver: EPOLLOUT only if asked for
        if not conn.ready and not conn.out and conn.current is None:
            break
        if not conn.mask & select.EPOLLOUT:
            break
        conn.on_writable()
    assert len(calls) == n, (len(calls), len(conn.ready), conn.mask)
    assert not conn.ready and not conn.out
