"""A vassal's state machine and back-off (procmaster.emperor.vassal), and both
ends of the emperor pipe over a socketpair (the vassal's end is the master's,
procmaster.master.vassal): no processes."""

from __future__ import annotations

import socket

import pytest

from procmaster.emperor.discovery import Signature
from procmaster.emperor.vassal import Vassal, VassalState, backoff
from procmaster.master.vassal import VassalLink

THROTTLE, MAX = 0.5, 3.0
SIG = Signature(1, 2, "/etc/vassals/site.ini", 3, 4, 5)


class FakeProc:
    pid = 4242


@pytest.fixture
def pipe():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


def running(vassal: Vassal, link: socket.socket, wall: float = 100.0, now: float = 10.0) -> Vassal:
    vassal.started(FakeProc(), link, wall, now)  # type: ignore[arg-type]
    return vassal


def test_backoff_doubles_from_throttle_up_to_the_maximum():
    assert backoff(0, THROTTLE, MAX) == 0.0
    assert [backoff(n, THROTTLE, MAX) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert backoff(1, 2.0, 2.0) == 2.0


def test_a_new_vassal(pipe):
    vassal = Vassal("/etc/vassals/link.ini", SIG)
    assert vassal.state is VassalState.NEW and vassal.name == "link.ini"
    assert vassal.real == SIG.real and vassal.pid is None
    assert vassal.holds_up_ready
    assert vassal.stats()["state"] == "new" and vassal.stats()["pid"] is None


def test_start_ready_reload_ready(pipe):
    vassal = running(Vassal(SIG.real, SIG), pipe[0])
    assert vassal.state is VassalState.STARTING and vassal.holds_up_ready
    assert vassal.pid == 4242 and vassal.restarts == 0
    assert vassal.ready(101.25) == "ready in 1.25s"
    assert vassal.state is VassalState.READY and vassal.ready_once
    assert not vassal.holds_up_ready
    assert vassal.ready(102.0) is None  # a second "ready" changes nothing
    vassal.state = VassalState.RELOADING
    assert vassal.ready(103.0) == "reloaded"
    stats = vassal.stats()
    assert stats["state"] == "ready" and stats["ready"] and stats["last_start"] == 100.0


def test_ready_while_stopping_changes_nothing(pipe):
    vassal = running(Vassal(SIG.real, SIG), pipe[0])
    vassal.state = VassalState.STOPPING
    assert vassal.ready(101.0) is None
    assert vassal.state is VassalState.STOPPING


def test_death_after_a_healthy_run_restarts_at_once(pipe):
    vassal = running(Vassal(SIG.real, SIG), pipe[0], now=10.0)
    vassal.ready(101.0)
    assert vassal.died(10.0 + THROTTLE, THROTTLE, MAX) == 0.0
    assert vassal.state is VassalState.THROTTLED and vassal.restart_at == 10.0 + THROTTLE
    assert vassal.failures == 0 and vassal.ready_once
    assert vassal.holds_up_ready  # a quick restart is still on its way


def test_young_deaths_back_off_and_a_healthy_run_resets(pipe):
    vassal = Vassal(SIG.real, SIG)
    delays = []
    now = 10.0
    for _ in range(5):
        running(vassal, pipe[0], now=now)
        delays.append(vassal.died(now + 0.1, THROTTLE, MAX))  # never ready
        now = vassal.restart_at
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert vassal.restarts == 4 and vassal.failures == 5
    assert not vassal.holds_up_ready  # known broken: systemd need not wait
    # ready, but dead before one throttle: still young
    running(vassal, pipe[0], now=now)
    vassal.ready(0.0)
    assert vassal.died(now + THROTTLE / 2, THROTTLE, MAX) == 3.0
    assert not vassal.ready_once
    # a healthy run resets the back-off
    running(vassal, pipe[0], now=100.0)
    vassal.ready(0.0)
    assert vassal.died(100.0 + THROTTLE, THROTTLE, MAX) == 0.0 and vassal.failures == 0


def test_dying_while_starting_after_an_earlier_ready_run_is_young(pipe):
    vassal = running(Vassal(SIG.real, SIG), pipe[0], now=0.0)
    vassal.ready(0.0)
    running(vassal, pipe[0], now=10.0)  # restarted, not ready yet
    assert vassal.died(20.0, THROTTLE, MAX) == THROTTLE


def test_invalid(pipe):
    vassal = Vassal(SIG.real, SIG)
    vassal.invalid("site.ini:3: option 'processes': not a number")
    assert vassal.state is VassalState.INVALID and not vassal.holds_up_ready
    assert vassal.stats()["error"].endswith("not a number")


def test_the_emperor_end_reads_words_and_eof(pipe):
    ours, theirs = pipe
    vassal = running(Vassal(SIG.real, SIG), ours)
    assert vassal.read() == []  # nothing yet
    theirs.send(b"rea")
    assert vassal.read() == []  # half a line waits for its end
    theirs.send(b"dy\n\n")
    assert vassal.read() == ["ready"]
    vassal.send("reload")
    assert theirs.recv(100) == b"reload\n"
    theirs.close()
    assert vassal.read() is None
    vassal.close_link()
    assert vassal.link is None
    vassal.send("stop")  # no pipe: no error


def test_the_vassal_end_emperor_link(pipe, monkeypatch):
    ours, theirs = pipe
    monkeypatch.setenv("PROCMASTER_EMPEROR_FD", str(theirs.fileno()))
    link = VassalLink.from_environ()
    assert link is not None and link.fileno() == theirs.fileno()
    assert link.read() == []
    ours.send(b"stop\nrel")
    assert link.read() == ["stop"]
    ours.send(b"oad\n")
    assert link.read() == ["reload"]
    assert not link.ready_sent
    link.ready()
    assert link.ready_sent and ours.recv(100) == b"ready\n"
    link.ready()  # once per image
    ours.close()
    assert link.read() is None  # the emperor is gone
    link.ready_sent = False
    link.ready()  # a gone emperor is no error
    link.sock.detach()  # the fixture closes the fd


def test_no_emperor_link_without_a_valid_fd(monkeypatch):
    monkeypatch.delenv("PROCMASTER_EMPEROR_FD", raising=False)
    assert VassalLink.from_environ() is None
    monkeypatch.setenv("PROCMASTER_EMPEROR_FD", "x")
    assert VassalLink.from_environ() is None
    monkeypatch.setenv("PROCMASTER_EMPEROR_FD", "987654")
    assert VassalLink.from_environ() is None


def test_words_before_the_end_of_the_pipe_are_not_lost(pipe):
    from procmaster.ipc import LineReader, read_words

    ours, theirs = pipe
    ours.send(b"stop\n")
    ours.close()
    reader = LineReader()
    assert read_words(theirs, reader) == ["stop"]  # the words first ...
    assert read_words(theirs, reader) is None  # ... then the end
