"""One vassal: an INI file, the master running it, and where it is in its life.

Theory of operation
-------------------
A vassal's ``state`` is a ``VassalState``; the emperor's loop moves it along and
the methods here say what each move does to the bookkeeping, without touching a
process, so the state machine is tested without one::

    NEW -> STARTING -> READY <-> RELOADING        (``started``, ``ready``)
      |        \\          \\
      |         +----------+--> THROTTLED -> STARTING   (``died``; back-off)
      +--> WAITING -> STARTING   (a leaving vassal of the same file goes first)
      +--> INVALID -> STARTING   (its config did not load; the file changed)
    any running state -> STOPPING -> (gone) or STOPPED (the emperor stops)

**Back-off.** A vassal that dies after it has been ready for at least
``emperor-throttle`` is started again at once. One that dies younger (or never
got ready) waits ``backoff(failures)``: ``emperor-throttle`` doubled for each
death in a row, capped at ``emperor-max-throttle`` (uWSGI's rule).

The emperor's end of the pipe lives here too: ``send`` one word, ``read`` the
words that arrived (``procmaster.ipc``'s line format).

Must not know: how a vassal is started or stopped (the loop's), config, logs.
"""

from __future__ import annotations

import os
import socket
import subprocess
from enum import Enum

from ..ipc import LineReader, read_words, send_word
from .discovery import Signature

__all__ = ["Vassal", "VassalState", "backoff"]


class VassalState(Enum):
    NEW = "new"  # found, not started yet
    WAITING = "waiting"  # for a leaving vassal of the same file to have gone
    STARTING = "starting"  # running, not ready yet
    READY = "ready"  # its workers are ready
    RELOADING = "reloading"  # asked to reload, not ready again yet
    STOPPING = "stopping"  # asked to stop (or killed), not reaped yet
    STOPPED = "stopped"  # stopped because the emperor stops
    THROTTLED = "throttled"  # died; starts again at ``restart_at``
    INVALID = "invalid"  # its config does not load: tried again when the file changes
    ON_DEMAND = "on-demand"  # its socket is bound here; started on the first connection


# what may be started again by a change of the file or SIGHUP
STARTABLE = (VassalState.INVALID, VassalState.THROTTLED)


def backoff(failures: int, throttle: float, max_throttle: float) -> float:
    """Seconds to wait before starting a vassal again after ``failures`` deaths in
    a row without a healthy run: 0 for none, then ``throttle`` doubling up to
    ``max_throttle``."""
    if failures <= 0:
        return 0.0
    return min(throttle * 2 ** (failures - 1), max_throttle)


class Vassal:
    """One INI file and the master running it."""

    def __init__(self, path: str, sig: Signature) -> None:
        self.path = path  # as found (a symlink stays a symlink)
        self.sig = sig
        self.real = sig.real
        self.name = os.path.basename(path)
        self.proc: subprocess.Popen | None = None
        self.link: socket.socket | None = None
        self.reader = LineReader()
        self.state = VassalState.NEW
        self.restarts = 0
        self.last_start = 0.0  # time.time()
        self.started_at = 0.0  # time.monotonic()
        self.ready_once = False
        self.failures = 0  # deaths in a row without a healthy run
        self.restart_at = 0.0
        self.kill_at = 0.0
        self.wait_for: Vassal | None = None  # a leaving vassal of the same file
        self.error: str | None = None
        self.on_demand: socket.socket | None = None  # emperor-on-demand-*: bound here
        self.socket_name: str | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    # -- the state machine ---------------------------------------------------------

    def started(self, proc: subprocess.Popen, link: socket.socket, wall: float, now: float) -> None:
        """Its master runs as ``proc`` (started at ``wall``/``now``), its pipe is ``link``."""
        self.proc = proc
        self.link = link
        self.reader = LineReader()
        self.state = VassalState.STARTING
        self.kill_at = 0.0
        if self.last_start:
            self.restarts += 1
        self.last_start = wall
        self.started_at = now

    def ready(self, wall: float) -> str | None:
        """It said ``ready`` at ``wall``: what to log, or None if that changes nothing."""
        if self.state not in (VassalState.STARTING, VassalState.RELOADING):
            return None
        if self.state is VassalState.RELOADING:
            what = "reloaded"
        else:
            what = f"ready in {wall - self.last_start:.2f}s"
        self.state = VassalState.READY
        self.ready_once = True
        return what

    def died(self, now: float, throttle: float, max_throttle: float) -> float:
        """It died at ``now`` (and will be started again): the delay before that.
        A death after a ready run of at least ``throttle`` resets the back-off."""
        healthy = (
            self.ready_once
            and self.state is not VassalState.STARTING
            and now - self.started_at >= throttle
        )
        if healthy:
            self.failures = 0
        else:
            self.failures += 1
        delay = backoff(self.failures, throttle, max_throttle)
        self.ready_once = self.ready_once and healthy
        self.state = VassalState.THROTTLED
        self.restart_at = now + delay
        return delay

    def invalid(self, error: str) -> None:
        """Its config does not load (``error``): wait for the file to change."""
        self.error = error
        self.state = VassalState.INVALID

    @property
    def holds_up_ready(self) -> bool:
        """True while it may still become ready without anything changing (systemd's
        ``READY=1`` waits for it): not started yet, starting, or due for a first
        quick restart."""
        return self.state in (VassalState.NEW, VassalState.WAITING, VassalState.STARTING) or (
            self.state is VassalState.THROTTLED and not self.failures
        )

    # -- the pipe ----------------------------------------------------------------

    def send(self, word: str) -> None:
        """Send ``word`` (``stop``, ``reload``); a vassal gone or going is no error."""
        if self.link is not None:
            send_word(self.link, word)

    def read(self) -> list[str] | None:
        """The words that arrived, or None at EOF (the vassal closed its end)."""
        assert self.link is not None
        return read_words(self.link, self.reader)

    def close_link(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None

    def stats(self) -> dict:
        return {
            "ini": self.path,
            "real": self.real,
            "pid": self.pid,
            "state": self.state.value,
            "restarts": self.restarts,
            "last_start": round(self.last_start, 3) if self.last_start else None,
            "ready": self.state is VassalState.READY,
            "error": self.error,
            "on_demand": self.socket_name,
        }
