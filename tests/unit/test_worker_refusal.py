"""The worker's own policy on a request (``limit-post``) is checked by the
connection as the protocol's sink and acted on after ``feed()`` returned, never
raised through the parser: 413 on HTTP (after the answers to requests pipelined
before it), a plain close on the proxied protocols, the same log lines.

No processes: a ``Worker`` over a socketpair, as bench/micro.py drives it."""

from __future__ import annotations

import os
import socket
from types import SimpleNamespace

import pytest

from procmaster.app import Apps
from procmaster.config import load
from procmaster.scoreboard import Scoreboard
from procmaster.worker import Connection, Worker
from procmaster.worker import connection as connection_module


def hello(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"got " + body]


@pytest.fixture
def logged(monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(connection_module, "log", lines.append)
    return lines


@pytest.fixture
def connect():
    made = []

    def connect(proto: str, limit: int):
        cfg = load(["--disable-logging", "--limit-post", str(limit)], environ={})
        listener = SimpleNamespace(
            sock=SimpleNamespace(
                fileno=lambda: -1, family=socket.AF_INET, getsockname=lambda: ("127.0.0.1", 8000)
            ),
            proto=proto,
        )
        worker = Worker(1, cfg, [listener], Apps([("", hello)]), -1, Scoreboard(2), 0)
        ours, client = socket.socketpair()
        ours.setblocking(False)
        client.settimeout(5)
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


def feed(conn: Connection, client: socket.socket, data: bytes) -> bytes:
    """Send ``data`` from the client, let the connection read it, return what
    the client got back (until the server shut its side or nothing more comes)."""
    client.sendall(data)
    conn.on_readable()
    client.settimeout(0.2)
    got = b""
    try:
        while chunk := client.recv(65536):
            got += chunk
    except TimeoutError:
        pass
    return got


def test_http_content_length_over_limit_is_answered_413(connect, logged):
    conn, client = connect("http", 10)
    got = feed(
        conn, client, b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + b"x" * 20
    )
    assert got.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert got.endswith(b"\r\n\r\n413 Content Too Large\n")
    assert logged == [
        "http request from 127.0.0.1: request body of 100 bytes over limit-post -> 413"
    ]
    assert conn.refused is None and not conn.ready


def test_http_chunked_body_over_limit_is_answered_413(connect, logged):
    conn, client = connect("http", 10)
    got = feed(
        conn,
        client,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n"
        + b"y" * 16
        + b"\r\n",
    )
    assert got.startswith(b"HTTP/1.1 413 ")
    assert logged == ["http request from 127.0.0.1: request body over limit-post (10 bytes) -> 413"]


def test_no_100_continue_for_a_refused_request(connect, logged):
    conn, client = connect("http", 10)
    got = feed(
        conn,
        client,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
    )
    assert got.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in got


def test_http_requests_pipelined_before_the_refused_one_are_answered_first(connect, logged):
    conn, client = connect("http", 10)
    got = feed(
        conn,
        client,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\n",
    )
    first, _, rest = got.partition(b"got abc")
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest.startswith(b"HTTP/1.1 413 ")
    assert len(logged) == 1 and logged[0].endswith("over limit-post -> 413")


def test_a_body_within_the_limit_is_served(connect, logged):
    conn, client = connect("http", 10)
    got = feed(conn, client, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789")
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"got 0123456789")
    assert logged == []


def uwsgi_packet(env: dict) -> bytes:
    data = b"".join(
        len(k).to_bytes(2, "little") + k.encode() + len(v).to_bytes(2, "little") + v.encode()
        for k, v in env.items()
    )
    return bytes([0]) + len(data).to_bytes(2, "little") + bytes([0]) + data


def test_uwsgi_over_limit_closes_without_an_answer(connect, logged):
    conn, client = connect("uwsgi", 10)
    packet = uwsgi_packet({"REQUEST_METHOD": "POST", "PATH_INFO": "/", "CONTENT_LENGTH": "100"})
    got = feed(conn, client, packet + b"z" * 100)
    assert got == b""
    assert conn.closed
    assert logged == ["uwsgi request from 127.0.0.1: request body of 100 bytes over limit-post"]
