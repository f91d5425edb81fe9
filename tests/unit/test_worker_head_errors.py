"""An app's head that cannot go on the wire is a 500 with one log line; when even
the 500 cannot be written, the connection closes and the worker goes on
(issue 15, hole 1: an error while producing the error response must never take
the worker down). A ``Worker`` over a socketpair, no processes."""

from __future__ import annotations

import os
import socket
import struct
from types import SimpleNamespace

import pytest

from procmaster.app import Apps
from procmaster.config import load
from procmaster.protocols import uwsgi as uwsgi_module
from procmaster.scoreboard import Scoreboard
from procmaster.worker import Connection, Worker
from procmaster.worker import response as response_module


def splitting(environ, start_response):
    start_response("200 OK", [("X-A", "1\r\nSet-Cookie: evil=1")])
    return [b"body"]


def streaming_splitter(environ, start_response):
    start_response("200 OK", [("X-A", "1\r\nSet-Cookie: evil=1")])
    yield b"body"


@pytest.fixture
def logged(monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(response_module, "log", lines.append)
    return lines


@pytest.fixture
def connect():
    made = []

    def connect(app, proto: str = "http", *options: str):
        cfg = load(["--disable-logging", *options], environ={})
        listener = SimpleNamespace(
            sock=SimpleNamespace(
                fileno=lambda: -1, family=socket.AF_INET, getsockname=lambda: ("127.0.0.1", 8000)
            ),
            proto=proto,
        )
        worker = Worker(1, cfg, [listener], Apps([("", app)]), -1, Scoreboard(2), 0)
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


def answer(conn: Connection, client: socket.socket, data: bytes) -> bytes:
    client.sendall(data)
    conn.on_readable()
    client.settimeout(0.5)
    got = b""
    try:
        while chunk := client.recv(65536):
            got += chunk
    except TimeoutError:
        pass
    return got


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("app", [splitting, streaming_splitter])
def test_a_head_that_would_split_is_a_500_and_one_log_line(connect, logged, app):
    conn, client = connect(app)
    got = answer(conn, client, GET)
    assert got.startswith(b"HTTP/1.1 500 Internal Server Error\r\n") and b"evil" not in got
    [line] = logged
    assert "invalid response header X-A" in line and "Traceback" not in line
    assert "\n" not in line  # the app's data never forges a log line


@pytest.mark.parametrize("app", [splitting, streaming_splitter])
def test_when_even_the_500_cannot_be_written_the_connection_closes(
    connect, logged, monkeypatch, app
):
    # the packet with the protocol's own checks taken away: the status
    # line's version is the proxy's CR LF, so the 500's head fails as well
    monkeypatch.setattr(uwsgi_module, "check_vars", lambda environ, protocol: None)
    monkeypatch.setattr(uwsgi_module, "status_version", lambda env: env["SERVER_PROTOCOL"])
    conn, client = connect(app, "uwsgi")
    pairs = [(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/"), (b"REQUEST_URI", b"/")]
    pairs.append((b"SERVER_PROTOCOL", b"HTTP/1.1\r\nX: 1"))
    block = b"".join(
        struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs
    )
    packet = struct.pack("<BHB", 0, len(block), 0) + block
    assert answer(conn, client, packet) == b""  # nothing, and no exception out of the worker
    assert conn.closed
    assert any("cannot answer GET / with a 500" in line for line in logged), logged
