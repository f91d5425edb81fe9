"""Stats pushers (statsd, carbon) and the readiness/liveness answers, with a UDP
socket and a selector of the test's own: no processes."""

from __future__ import annotations

import selectors
import socket
import time
from types import SimpleNamespace

import pytest

from procmaster.scoreboard import STATUS_BUSY, STATUS_IDLE, Slot
from procmaster.stats import StatsServer, StatsSource
from procmaster.stats.push import (
    CarbonPusher,
    PushError,
    Pushers,
    StatsdPusher,
    carbon_node,
)


def slot(requests=0, status=STATUS_IDLE, rt_us=0, tx=0, exceptions=0, harakiri=0) -> Slot:
    s = Slot(0, (0, status, requests, exceptions, 0.0, 0.0, harakiri, tx, rt_us) + (0,) * 20)
    return s


class Board:
    def __init__(self) -> None:
        self.slots = {1: slot(), 2: slot()}
        self.ready = True

    def source(self, listeners=()) -> StatsSource:
        return StatsSource(
            workers=lambda: [(wid, 0, s) for wid, s in sorted(self.slots.items())],
            respawns=lambda: {1: 1, 2: 3},
            reloads=lambda: 0,
            listeners=list(listeners),
            cwd="/",
            ready=lambda: self.ready,
        )


@pytest.fixture
def udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def drain(sock: socket.socket) -> list[bytes]:
    out = []
    sock.settimeout(0.2)
    try:
        while True:
            out.append(sock.recv(65536))
    except TimeoutError:
        return out


def test_statsd_names_types_and_counter_increments(udp):
    board = Board()
    port = udp.getsockname()[1]
    pusher = StatsdPusher(f"127.0.0.1:{port},site", 3, print)
    board.slots[1] = slot(requests=5, rt_us=500, tx=100, status=STATUS_BUSY)
    pusher.push(board.source(), time.monotonic())
    first = dict(p.decode().split(":", 1) for p in drain(udp))
    assert first["site.worker.1.requests"] == "5|c"
    assert first["site.worker.0.requests"] == "5|c"
    assert first["site.worker.1.avg_response_time"] == "100|g"
    assert first["site.worker.2.respawns"] == "3|c"
    assert first["site.core.busy_workers"] == "1|g"
    assert first["site.core.idle_workers"] == "1|g"
    assert first["site.core.total_tx"] == "100|c"
    assert {"site.worker.1.rss_size", "site.core.total_vsz"} <= set(first)
    board.slots[1] = slot(requests=8, rt_us=800, tx=160)
    pusher.push(board.source(), time.monotonic())
    second = dict(p.decode().split(":", 1) for p in drain(udp))
    assert second["site.worker.1.requests"] == "3|c"  # the increase since the last push
    assert second["site.core.total_tx"] == "60|c"
    # a respawned worker starts again from 0: its new count, never a negative one
    board.slots[1] = slot(requests=2)
    pusher.push(board.source(), time.monotonic())
    third = dict(p.decode().split(":", 1) for p in drain(udp))
    assert third["site.worker.1.requests"] == "2|c"


def test_statsd_all_gauges_no_workers_and_default_prefix(udp):
    board = Board()
    board.slots[1] = slot(requests=4)
    port = udp.getsockname()[1]
    StatsdPusher(f"127.0.0.1:{port}", 3, print, all_gauges=True, no_workers=True).push(
        board.source(), 0
    )
    got = dict(p.decode().split(":", 1) for p in drain(udp))
    assert got["uwsgi.core.total_running_time"] == "0|g"
    assert not any(".worker." in name for name in got)


def test_unreachable_collector_never_blocks_and_is_said_once():
    notes: list[str] = []
    board = Board()
    # port 9 on a blackhole-free loopback: ECONNREFUSED comes back on a later send
    pusher = StatsdPusher("127.0.0.1:9", 3, notes.append)
    t0 = time.monotonic()
    for _ in range(20):
        pusher.push(board.source(), 0)
    assert time.monotonic() - t0 < 2
    assert len([n for n in notes if "cannot send" in n]) <= 1


def test_bad_address_is_a_push_error():
    with pytest.raises(PushError):
        StatsdPusher("no-port-here", 3, print)
    with pytest.raises(PushError):
        CarbonPusher("name.invalid.:2003", 60, print, "n", selectors.DefaultSelector())


def _carbon_push(pusher: CarbonPusher, board: Board, sel, listener, now: float) -> list[str]:
    """One push, driven by the selector as the master's loop does; the lines carbon got."""
    pusher.push(board.source(), now)
    conn, _ = listener.accept()
    conn.settimeout(5)
    deadline = time.monotonic() + 5
    while pusher.out.sock is not None and time.monotonic() < deadline:
        for key, _ in sel.select(0.1):
            key.data()
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    conn.close()
    return data.decode().splitlines()


def test_carbon_lines_as_uwsgi_names_them():
    assert carbon_node("uwsgi", "web.example.com", None, None, "127.0.0.1:8000") == (
        "uwsgi.web.example.com.127_0_0_1:8000"
    )
    assert (
        carbon_node("uwsgi.", "web.example.com", "_", "site", "x") == "uwsgi.web_example_com.site"
    )
    board = Board()
    sel = selectors.DefaultSelector()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]
    try:
        pusher = CarbonPusher(f"127.0.0.1:{port}", 1, print, "uwsgi.h.site", sel)
        _carbon_push(pusher, board, sel, listener, 0)
        board.slots[1] = slot(requests=3, rt_us=500_000, tx=10, harakiri=1)
        lines = _carbon_push(pusher, board, sel, listener, 1)
        values = {line.split()[0]: int(line.split()[1]) for line in lines}
        assert all(len(line.split()) == 3 and line.split()[2].isdigit() for line in lines)
        assert values["uwsgi.h.site.worker1.requests"] == 3
        assert values["uwsgi.h.site.worker1.busyness"] == 50  # 0.5 s of a 1 s interval
        assert values["uwsgi.h.site.worker1.avg_rt"] == 500_000 // 3
        assert values["uwsgi.h.site.requests"] == 3
        assert values["uwsgi.h.site.harakiri"] == 1
        assert values["uwsgi.h.site.active_workers"] == 2
        assert not any("rss_size" in name for name in values)  # only with memory-report
        pusher.memory = True
        assert "uwsgi.h.site.rss_size" in " ".join(_carbon_push(pusher, board, sel, listener, 2))
    finally:
        listener.close()
        sel.close()


def test_carbon_that_never_answers_costs_no_wait():
    """A listener whose queue is full: the connect hangs, the master does not."""
    notes: list[str] = []
    sel = selectors.DefaultSelector()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue: later SYNs go unanswered
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
        pusher = CarbonPusher(f"127.0.0.1:{port}", 60, notes.append, "n", sel, timeout=1)
        pushers = Pushers([pusher], Board().source())
        t0 = time.monotonic()
        pusher.push(Board().source(), t0)
        assert time.monotonic() - t0 < 0.5
        expires = pushers.deadline()
        assert expires is not None and expires <= t0 + 1.01
        pushers.tick(expires)
        assert pusher.out.sock is None and len(notes) == 1 and "within 1s" in notes[0]
        # refused outright (nobody listens): said once for the episode
        listener.close()
        pusher.push(Board().source(), time.monotonic())
        for _ in range(20):
            for key, _ in sel.select(0.05):
                key.data()
        pusher.push(Board().source(), time.monotonic())
        assert len(notes) == 1
    finally:
        for f in fillers:
            f.close()
        listener.close()
        pusher.close()
        sel.close()


def test_pushers_deadline_and_period():
    pushed: list[float] = []
    fake = SimpleNamespace(
        freq=2.0,
        push=lambda source, now: pushed.append(now),
        expiry=lambda: None,
        expire=lambda now: None,
        close=lambda: 0,
    )
    pushers = Pushers([fake], Board().source())
    due = pushers.deadline()
    assert due is not None and due > time.monotonic()
    pushers.tick(due - 0.5)
    assert pushed == []
    pushers.tick(due)
    assert pushed == [due] and pushers.deadline() == due + 2.0
    pushers.tick(due + 100)  # a long stall: one push, the next a period later
    assert len(pushed) == 2 and pushers.deadline() >= due + 100


def _ask(server: StatsServer, sel: selectors.BaseSelector, path: str) -> bytes:
    client = socket.create_connection(server.sock.getsockname(), timeout=5)
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    client.setblocking(False)
    out = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for key, _ in sel.select(0.05):
            key.data()
        try:
            chunk = client.recv(65536)
        except BlockingIOError:
            continue
        if not chunk:
            break
        out += chunk
    client.close()
    return out


def test_probes_ready_live_and_not_ready():
    board = Board()
    sel = selectors.DefaultSelector()
    server = StatsServer("127.0.0.1:0", True, board.source(), sel)
    try:
        assert _ask(server, sel, "/ready").startswith(b"HTTP/1.0 200 OK\r\n")
        assert _ask(server, sel, "/readyz?verbose").startswith(b"HTTP/1.0 200 OK\r\n")
        board.ready = False
        answer = _ask(server, sel, "/ready")
        assert answer.startswith(b"HTTP/1.0 503 ") and answer.endswith(b"not ready\n")
        for path in ("/live", "/livez", "/healthz"):
            assert _ask(server, sel, path).startswith(b"HTTP/1.0 200 OK\r\n")
        assert b'"workers"' in _ask(server, sel, "/")
    finally:
        server.close()
        sel.close()
