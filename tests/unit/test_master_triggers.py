"""Every trigger is a row: signals, FIFO letters, watch words, emperor words."""

from __future__ import annotations

import signal

import pytest

from procmaster.ipc import EMPEROR_RELOAD, EMPEROR_STOP
from procmaster.master import Master
from procmaster.master.reload import ReloadKind, ReloadRequest
from procmaster.master.triggers import (
    EMPEROR_ACTIONS,
    FIFO_LETTERS,
    SIGNAL_ACTIONS,
    WATCH_ACTIONS,
    Controls,
    Debouncer,
)
from procmaster.options import watch_options


class Recorder:
    """A ``Controls`` that records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


def run(action, reason="why"):
    rec = Recorder()
    action(rec, reason)
    return rec.calls


def test_every_watch_word_of_the_option_table_has_an_action():
    assert set(watch_options().values()) <= set(WATCH_ACTIONS)


def test_reload_signals_are_requests():
    assert run(SIGNAL_ACTIONS[signal.SIGHUP], "SIGHUP") == [
        ("reload", ReloadRequest(ReloadKind.FULL, "SIGHUP"))
    ]
    assert run(SIGNAL_ACTIONS[signal.SIGURG], "SIGURG") == [
        ("reload", ReloadRequest(ReloadKind.CHAIN, "SIGURG"))
    ]
    assert run(SIGNAL_ACTIONS[signal.SIGTTIN]) == [("change_workers", 1)]
    assert run(SIGNAL_ACTIONS[signal.SIGCHLD]) == []


def test_fifo_letters_are_uwsgis():
    assert set(FIFO_LETTERS) == set("rRcwWqQlL+-sp")
    assert run(FIFO_LETTERS["R"][1], "master-fifo R") == [
        ("reload", ReloadRequest(ReloadKind.FULL, "master-fifo R", brutal=True))
    ]
    assert run(FIFO_LETTERS["W"][1]) == [
        ("reload", ReloadRequest(ReloadKind.WORKERS, "why", brutal=True))
    ]
    assert run(FIFO_LETTERS["Q"][1]) == [("stop_now", "SIGQUIT")]


def test_watch_words_and_emperor_words():
    assert run(WATCH_ACTIONS["workers"], "touch-workers-reload /x") == [
        ("reload", ReloadRequest(ReloadKind.WORKERS, "touch-workers-reload /x"))
    ]
    assert run(WATCH_ACTIONS["logrotate"]) == [("rotate_logs", "why")]
    assert run(EMPEROR_ACTIONS[EMPEROR_STOP]) == [("graceful_stop",)]
    assert run(EMPEROR_ACTIONS[EMPEROR_RELOAD], "the emperor") == [
        ("reload", ReloadRequest(ReloadKind.FULL, "the emperor"))
    ]


def test_debouncer_acts_once_after_the_last_event():
    d = Debouncer(0.2)
    d.add(("touch-reload", "reload"), "/a", 10.0)
    d.add(("touch-reload", "reload"), "/a", 10.1)
    assert d.pop_due(10.25) == []
    assert d.deadline() == pytest.approx(10.3)
    assert d.pop_due(10.3) == [(("touch-reload", "reload"), "/a")]
    assert d.deadline() is None


def test_the_master_is_every_triggers_controls():
    wanted = {n for n in vars(Controls) if not n.startswith("_")}
    assert wanted and all(callable(getattr(Master, n, None)) for n in wanted)
