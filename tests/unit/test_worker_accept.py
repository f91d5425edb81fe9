"""A new connection is read at once (issue 18): a request a front end wrote
whole before the accept is answered in the accept, and the connection closed
after its answer never enters the epoll set; one that is not complete yet (or
stays open: keep-alive) waits in epoll like any other, so a slow client still
holds memory, never the worker.

No processes: a ``Worker`` over a real listening unix socket, its ``accept``
called as the loop calls it."""

from __future__ import annotations

import gc
import os
import select
import socket
from types import SimpleNamespace

import pytest

from procmaster.app import Apps
from procmaster.config import load
from procmaster.process import SIGNAL_SEEN
from procmaster.scoreboard import Scoreboard
from procmaster.worker import Worker


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello " + environ["PATH_INFO"].encode()]


@pytest.fixture
def served(tmp_path):
    """(worker, its listener, connect(), fds the worker put in its epoll set)"""
    made = []

    def make(proto: str, the_app=app):
        path = str(tmp_path / f"{proto}.sock")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.listen(16)
        sock.setblocking(False)
        cfg = load(["--disable-logging"], environ={})
        worker = Worker(
            1,
            cfg,
            [SimpleNamespace(sock=sock, proto=proto)],
            Apps([("", the_app)]),
            -1,
            Scoreboard(2),
            0,
        )
        registered: list[tuple[int, int]] = []
        register = worker.register

        def spy(fd: int, mask: int) -> None:
            registered.append((fd, mask))
            register(fd, mask)

        worker.register = spy

        def connect() -> socket.socket:
            client = socket.socket(socket.AF_UNIX)
            client.connect(path)
            client.settimeout(5)
            made.append(client)
            return client

        made.append(sock)
        return worker, worker.listeners[0], connect, registered

    yield make
    for s in made:
        s.close()


def read_all(client: socket.socket) -> bytes:
    got = b""
    while chunk := client.recv(65536):
        got += chunk
    return got


def packet(path: str) -> bytes:
    """A uwsgi request (header, vars; no body), as nginx's uwsgi_pass sends it."""
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_PROTOCOL": "HTTP/1.1"}
    block = b"".join(
        len(k).to_bytes(2, "little") + k.encode() + len(v).to_bytes(2, "little") + v.encode()
        for k, v in env.items()
    )
    return b"\0" + len(block).to_bytes(2, "little") + b"\0" + block


def test_a_complete_request_is_answered_in_the_accept_never_entering_epoll(served):
    worker, lst, connect, registered = served("uwsgi")
    client = connect()
    client.sendall(packet("/a"))
    worker.accept(lst)
    assert read_all(client).endswith(b"\r\n\r\nhello /a")
    assert registered == []
    assert worker.conns == {}


def test_the_backlog_is_drained_in_one_wake_up(served):
    worker, lst, connect, registered = served("uwsgi")
    clients = [connect() for _ in range(3)]
    for i, client in enumerate(clients):
        client.sendall(packet(f"/{i}"))
    worker.accept(lst)
    for i, client in enumerate(clients):
        assert read_all(client).endswith(f"hello /{i}".encode())
    assert registered == [] and worker.conns == {}


def test_a_signal_during_a_drained_connection_comes_before_the_next(served, monkeypatch):
    """The master's signal (here a pause; a log reopen alike) arrives while the
    worker serves the first connection of a batch (preempted, or in the app):
    it is handled before the next connection is taken, which stays queued."""
    order = []

    def signalled_app(environ, start_response):
        order.append(environ["PATH_INFO"])
        SIGNAL_SEEN[0] = True  # what the signal handler does
        return app(environ, start_response)

    worker, lst, connect, _ = served("uwsgi", signalled_app)

    def handle_signals() -> None:
        SIGNAL_SEEN[0] = False
        order.append("signal")
        worker.pause_accepting()

    monkeypatch.setattr(worker, "handle_signals", handle_signals)
    clients = [connect() for _ in range(2)]
    for i, client in enumerate(clients):
        client.sendall(packet(f"/{i}"))
    assert worker.accept(lst) == 1
    assert order == ["/0", "signal"] and not worker.accepting
    assert read_all(clients[0]).endswith(b"hello /0")
    worker.paused = False  # resumed: the queued connection is served
    worker.update_accepting()
    assert worker.accept(lst) == 1 and order[2] == "/1"


def test_an_incomplete_request_waits_in_epoll_and_is_served_when_complete(served):
    worker, lst, connect, registered = served("uwsgi")
    client = connect()
    data = packet("/slow")
    client.sendall(data[:7])
    worker.accept(lst)
    ((fd, mask),) = registered
    assert mask == select.EPOLLIN and fd in worker.conns  # the worker is free meanwhile
    client.sendall(data[7:])
    worker.conns[fd].on_readable()
    assert read_all(client).endswith(b"hello /slow")
    assert worker.conns == {}


def test_nothing_sent_yet_waits_in_epoll(served):
    worker, lst, connect, registered = served("uwsgi")
    connect()
    worker.accept(lst)
    assert [mask for _, mask in registered] == [select.EPOLLIN]
    assert len(worker.conns) == 1


def test_a_kept_alive_connection_waits_in_epoll_for_its_next_request(served):
    worker, lst, connect, registered = served("http")
    client = connect()
    client.sendall(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
    worker.accept(lst)
    assert client.recv(65536).endswith(b"hello /k")
    assert [mask for _, mask in registered] == [select.EPOLLIN]
    client.sendall(b"GET /close HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    (conn,) = worker.conns.values()
    conn.on_readable()
    assert read_all(client).endswith(b"hello /close")
    assert worker.conns == {}


def test_deadlines_count_from_the_clock_after_the_apps_of_the_drain(served, monkeypatch):
    """Connections served in one wake-up run their apps in turn: one accepted
    after them gets its header deadline from the clock then, not from the
    wake-up (or a slow app would leave it a deadline already past)."""
    worker, lst, connect, registered = served("uwsgi")
    clock = [1000.0]
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    worker.now = clock[0]

    def slow_app(environ, start_response):
        clock[0] += 60.0  # the app took a minute
        return app(environ, start_response)

    worker.apps.single = slow_app
    first, second = connect(), connect()
    first.sendall(packet("/slow"))
    second.sendall(packet("/x")[:3])  # not complete: it waits in epoll
    worker.accept(lst)
    assert read_all(first).endswith(b"hello /slow")
    (conn,) = worker.conns.values()
    assert conn.deadline > clock[0]


def test_an_emfile_episode_ends_when_descriptors_are_free_with_nothing_waiting(served):
    """accept fails with EMFILE even when nothing waits: when the queue emptied
    during the pause, no wake-up comes for the listener, so the loop ends the
    episode itself once it may accept again (the log's "descriptors free again")."""
    worker, lst, connect, _ = served("uwsgi")
    worker.fd_episode = 3  # paused three times, now accepting again, queue empty
    worker.update_accepting()
    assert worker.accepting
    worker.end_fd_episode()
    assert worker.fd_episode == 0

    worker.fd_episode = 1  # with a client waiting: it is served, then the episode ends
    client = connect()
    client.sendall(packet("/late"))
    worker.end_fd_episode()
    assert read_all(client).endswith(b"hello /late")
    assert worker.fd_episode == 0


@pytest.mark.parametrize(
    "proto, request_bytes",
    [("uwsgi", packet("/a")), ("http", b"GET /a HTTP/1.0\r\n\r\n")],
)
def test_a_closed_connection_leaves_nothing_for_the_cycle_collector(served, proto, request_bytes):
    """A served connection and its protocol are freed when closed (reference
    counting), not kept until a full collection: the soak saw worker RSS rise
    and fall by megabytes with finished HTTP connections waiting in cycles."""
    worker, lst, connect, _ = served(proto)

    def serve(n: int) -> None:
        for _ in range(n):
            client = connect()
            client.sendall(request_bytes)
            worker.accept(lst)
            assert read_all(client).endswith(b"hello /a")
            client.close()

    serve(5)  # first-use caches
    gc.collect()
    gc.disable()
    try:
        serve(50)
        found = gc.collect()
    finally:
        gc.enable()
    assert found == 0, f"{found} objects of 50 {proto} connections were left in cycles"


class Body:
    """An iterable body that is not a list (as Flask's and Django's responses are)."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)


@pytest.mark.parametrize("proto", ["uwsgi", "http"])
def test_an_iterable_bodys_first_chunk_goes_in_the_heads_write(served, monkeypatch, proto):
    """One write for the head, the body and the end when one chunk completes the
    declared length; a second chunk is a write of its own (streamed, not held)."""

    def iterable_app(environ, start_response):
        chunks = (b"one",) if environ["PATH_INFO"] == "/one" else (b"one", b"two")
        start_response("200 OK", [("Content-Length", str(sum(map(len, chunks))))])
        return Body(*chunks)

    worker, lst, connect, _ = served(proto, iterable_app)
    writes: list[bytes] = []
    real_write = os.write
    monkeypatch.setattr(
        "procmaster.worker.connection.os.write",
        lambda fd, data: writes.append(bytes(data)) or real_write(fd, data),
    )
    for path, expected in (("/one", [b"one"]), ("/two", [b"one", b"two"])):
        writes.clear()
        client = connect()
        if proto == "http":
            client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        else:
            client.sendall(packet(path))
        worker.accept(lst)
        assert read_all(client).endswith(b"".join(expected))
        assert len(writes) == len(expected)
        assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\none")


def test_a_drain_serves_an_idle_connection_whose_next_request_already_arrived(served):
    """Stopping, a kept-alive connection idle past the drain's moment is closed
    at the sweep, unless its next request arrived since the loop polled (the
    sweep's ``active`` set does not have it): that one is read and answered."""
    worker, lst, connect, _ = served("http")
    waiting, quiet = connect(), connect()
    for client in (waiting, quiet):
        client.sendall(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
    worker.accept(lst)
    for client in (waiting, quiet):
        assert client.recv(65536).endswith(b"hello /k")
    worker.stopping = True
    for conn in worker.conns.values():
        conn.idle_since = worker.now - 10  # idle for long, as the drain sees it
    waiting.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")  # after the loop's poll
    worker.sweep(set())
    assert quiet.recv(65536) == b""  # nothing waiting: closed, as before
    (conn,) = worker.conns.values()  # the other is still open
    conn.on_readable()
    assert read_all(waiting).endswith(b"hello /next")  # answered (Connection: close)
    assert worker.conns == {}
