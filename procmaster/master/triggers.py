"""Triggers: every way to ask the master for something, as tables.

Theory of operation
-------------------
A signal, a master FIFO letter, a touched file (its option's ``watch`` word in
``procmaster.options``), a word from the emperor: each is a row that maps it to an
``Action``, a callable given the master's ``Controls`` and the reason to log.
Reload rows build a ``ReloadRequest`` (``procmaster.master.reload``), so every
reload, whatever asked for it, is the same request to the same planner.

Adding a trigger is one row. uWSGI's ``fs-brutal-reload`` would be the option's
row in ``procmaster.options`` (``watch="brutal-reload"``) and this row of
``WATCH_ACTIONS``::

    "brutal-reload": reload_action(ReloadKind.FULL, brutal=True),

Touched files are debounced (``Debouncer``): events on one watched path closer
together than ``DEBOUNCE`` make one action, ``DEBOUNCE`` after the last.

Must not know: how any action is carried out (that is the ``Controls``' job).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Protocol

from ..ipc import EMPEROR_RELOAD, EMPEROR_STOP
from ..options import watch_options
from .reload import ReloadKind, ReloadRequest

if TYPE_CHECKING:
    from ..watch import Watcher

__all__ = [
    "DEBOUNCE",
    "EMPEROR_ACTIONS",
    "FIFO_LETTERS",
    "SIGNAL_ACTIONS",
    "WATCH_ACTIONS",
    "Action",
    "Controls",
    "Debouncer",
    "FileTriggers",
    "reload_action",
]

DEBOUNCE = 0.2  # seconds: events on watched files this close together make one action


class Controls(Protocol):
    """What a trigger may ask of the master."""

    def reload(self, request: ReloadRequest) -> None: ...
    def graceful_stop(self) -> None: ...
    def stop_now(self, what: str) -> None: ...
    def reopen_logs(self, reason: str) -> None: ...
    def rotate_logs(self, reason: str) -> None: ...
    def change_workers(self, delta: int) -> None: ...
    def log_stats(self) -> None: ...
    def log_requests(self) -> None: ...
    def pause(self) -> None: ...


Action = Callable[[Controls, str], None]  # (the master's controls, the reason to log)


def reload_action(kind: ReloadKind, brutal: bool = False) -> Action:
    """An action asking for a reload of ``kind``."""

    def ask(controls: Controls, reason: str) -> None:
        controls.reload(ReloadRequest(kind, reason, brutal))

    return ask


def _nothing(controls: Controls, reason: str) -> None:
    pass  # SIGCHLD: the loop reaps after every wake-up


# signal -> action (the reason is the signal's name)
SIGNAL_ACTIONS: dict[int, Action] = {
    signal.SIGHUP: reload_action(ReloadKind.FULL),
    signal.SIGURG: reload_action(ReloadKind.CHAIN),
    signal.SIGTERM: lambda c, why: c.graceful_stop(),
    signal.SIGINT: lambda c, why: c.stop_now(why),
    signal.SIGQUIT: lambda c, why: c.stop_now(why),
    signal.SIGUSR1: lambda c, why: c.log_stats(),
    signal.SIGUSR2: lambda c, why: c.log_requests(),
    signal.SIGTTIN: lambda c, why: c.change_workers(+1),
    signal.SIGTTOU: lambda c, why: c.change_workers(-1),
    signal.SIGCHLD: _nothing,
}

# master FIFO letter (uWSGI's) -> (what the log says, action)
FIFO_LETTERS: dict[str, tuple[str, Action]] = {
    "r": ("graceful reload", reload_action(ReloadKind.FULL)),
    "R": ("brutal reload", reload_action(ReloadKind.FULL, brutal=True)),
    "c": ("chain reload", reload_action(ReloadKind.CHAIN)),
    "w": ("graceful reload of the workers", reload_action(ReloadKind.WORKERS)),
    "W": ("brutal reload of the workers", reload_action(ReloadKind.WORKERS, brutal=True)),
    "q": ("graceful stop", lambda c, why: c.graceful_stop()),
    "Q": ("immediate stop", lambda c, why: c.stop_now("SIGQUIT")),
    "l": ("reopen the log", lambda c, why: c.reopen_logs(why)),
    "L": ("rotate the log", lambda c, why: c.rotate_logs(why)),
    "+": ("one worker more", lambda c, why: c.change_workers(+1)),
    "-": ("one worker less", lambda c, why: c.change_workers(-1)),
    "s": ("statistics", lambda c, why: c.log_stats()),
    "p": ("pause/resume", lambda c, why: c.pause()),
}

# an option's ``watch`` word (procmaster.options.watch_options()) -> action
WATCH_ACTIONS: dict[str, Action] = {
    "reload": reload_action(ReloadKind.FULL),
    "chain": reload_action(ReloadKind.CHAIN),
    "workers": reload_action(ReloadKind.WORKERS),
    "logrotate": lambda c, why: c.rotate_logs(why),
    "logreopen": lambda c, why: c.reopen_logs(why),
}
PY_AUTORELOAD = ("py-autoreload", "reload")  # the watch tag of an imported module's file

# a word from our emperor (when this master is a vassal) -> action
EMPEROR_ACTIONS: dict[str, Action] = {
    EMPEROR_STOP: lambda c, why: c.graceful_stop(),
    EMPEROR_RELOAD: reload_action(ReloadKind.FULL),
}


class Debouncer:
    """Changed watched paths, each acted on once ``delay`` after its first event."""

    def __init__(self, delay: float = DEBOUNCE) -> None:
        self.delay = delay
        self.due: dict[Hashable, tuple[str, float]] = {}  # tag -> (path, when)

    def add(self, tag: Hashable, path: str, now: float) -> None:
        self.due[tag] = (path, now + self.delay)

    def deadline(self) -> float | None:
        return min((when for _, when in self.due.values()), default=None)

    def pop_due(self, now: float) -> list[tuple[Hashable, str]]:
        ready = [(tag, path) for tag, (path, when) in self.due.items() if now >= when]
        for tag, _ in ready:
            del self.due[tag]
        return ready


class FileTriggers:
    """The watched paths of every option with a ``watch`` word, and py-autoreload's
    module files, in one inotify watcher; changes come out debounced as actions."""

    def __init__(self) -> None:
        self.watcher: Watcher | None = None
        self.debouncer = Debouncer()
        self.modules_seen: set[str] = set()

    def setup(self, cfg, log: Callable[[str], None]) -> bool:
        """Watch what ``cfg`` asks for; True when there is something to watch."""
        wanted = [
            (option, word, index, path)
            for option, word in watch_options().items()
            if word in WATCH_ACTIONS
            for index, path in enumerate(cfg.get(option))
        ]
        autoreload = cfg.py_autoreload > 0
        if not wanted and not autoreload:
            return False
        # lazily: watch loads inotify_simple (and ctypes.util), which only a site
        # with touch-* options or py-autoreload uses
        from ..watch import Watcher, module_files

        watcher = Watcher()
        for option, word, index, path in wanted:
            problem = watcher.add(path, (option, word))
            if problem:
                log(f"warning: {cfg.origin(option, index)}: option '{option}': {problem}")
        if autoreload:
            for path in module_files(self.modules_seen):
                watcher.add(path, PY_AUTORELOAD)
        if len(watcher) or autoreload:
            self.watcher = watcher
            return True
        watcher.close()
        return False

    def fileno(self) -> int:
        assert self.watcher is not None
        return self.watcher.fileno()

    def on_readable(self) -> None:
        now = time.monotonic()
        assert self.watcher is not None
        for tag, path in self.watcher.read():
            self.debouncer.add(tag, path, now)

    def module_imported(self, path: str) -> None:
        """A worker imported ``path`` (py-autoreload watches it from now on)."""
        if path not in self.modules_seen:
            self.modules_seen.add(path)
            if self.watcher is not None:
                self.watcher.add(path, PY_AUTORELOAD)

    def deadline(self) -> float | None:
        return self.debouncer.deadline()

    def due(self, now: float) -> list[tuple[Action, str]]:
        """The actions whose debounce delay is over, each with its reason."""
        return [
            (WATCH_ACTIONS[word], f"{option} {path}")
            for (option, word), path in self.debouncer.pop_due(now)
        ]
