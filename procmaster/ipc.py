"""The contract between the processes procmaster runs: master, workers, vassals.

Theory of operation
-------------------
procmaster is several processes that talk through four channels only. Each fact
about those channels lives here and nowhere else, and every side imports it from
here, so the master never imports the worker (nor, through it, protocols, WSGI or
static files) just to learn a signal number.

* **Signals.** The master asks a worker to stop gracefully (``SIG_STOP``, also
  ``SIGHUP``), to stop now (``SIGINT``/``SIGQUIT``), to reopen its log, to pause
  or resume accepting, to log the request it runs (``SIG_PRINT_REQUEST``) and, for
  ``harakiri-verbose``, to dump its stacks (``SIG_DUMP_STACKS``).
* **Exit codes.** How a child's end is read: ``EXIT_APP_FAILED`` (uWSGI's 22: the
  app did not load), ``EXIT_RECYCLE`` (a worker stopped by a guard, to be
  replaced at once), ``EXIT_FATAL``.
* **Environment variables.** What one image of a process hands the next: the
  listening sockets' fds, the stats socket, the start directory, the reload
  state of a re-executed master, the probe flag, the emperor's pipe.
* **Pipes.** Workers write ``ready`` and ``module`` lines to the master's
  ready pipe; a vassal and its emperor exchange ``ready``/``stop``/``reload``
  lines over a socketpair. Each line is encoded and decoded by the functions
  below; a partial line waits for its end, an unknown line is ignored.

One file too: a master with a pidfile writes its last reload's outcome beside it
(``ReloadStatus`` in ``PIDFILE.reload``), which ``procmaster --reload PIDFILE
--wait`` reads.

Must not know: what any process does with a message; sockets beyond their fd
numbers and reading and writing the ends of a pipe; config values.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from typing import NamedTuple

__all__ = [
    "CWD_ENV",
    "EMPEROR_FD_ENV",
    "EXIT_APP_FAILED",
    "EXIT_FATAL",
    "EXIT_RECYCLE",
    "FDS_ENV",
    "MASTER_ASKS",
    "PRIVATE_ENV",
    "PROBE_ENV",
    "REEXEC_ENV",
    "SIG_DUMP_STACKS",
    "SIG_PAUSE",
    "SIG_PRINT_REQUEST",
    "SIG_REOPEN_LOG",
    "SIG_RESUME",
    "SIG_STOP",
    "STOP_SIGNALS",
    "STATS_FD_ENV",
    "CACHE_FDS_ENV",
    "SHAREDAREA_FDS_ENV",
    "LineReader",
    "ReexecState",
    "RELOAD_ABORTED",
    "RELOAD_DONE",
    "RELOAD_RUNNING",
    "ReloadStatus",
    "reload_status_path",
    "ReadyMessage",
    "ModuleMessage",
    "EMPEROR_RELOAD",
    "EMPEROR_STOP",
    "VASSAL_READY",
    "decode_words",
    "encode_word",
    "read_words",
    "send_word",
    "decode_ready_pipe",
    "encode_module",
    "encode_ready",
    "describe_exit",
    "recycled",
]

# -- signals the master sends a worker -------------------------------------------------
# (none a terminal sends to its process group, except SIGWINCH, whose only effect,
# reopening the log, is harmless)
SIG_STOP = signal.SIGTERM  # finish what is in flight, then exit (SIGHUP means the same)
SIG_REOPEN_LOG = signal.SIGWINCH  # reopen logto after a rotation
SIG_PAUSE = signal.SIGRTMIN  # stop accepting (master FIFO ``p``)
SIG_RESUME = signal.SIGRTMIN + 1  # accept again
SIG_DUMP_STACKS = signal.SIGRTMIN + 2  # faulthandler: every thread's stack (harakiri-verbose)
SIG_PRINT_REQUEST = signal.SIGUSR2  # log the request being run, and for how long
# what a worker only acts on once its loop runs (ignored until then, never fatal)
MASTER_ASKS = (SIG_REOPEN_LOG, SIG_PAUSE, SIG_RESUME)
STOP_SIGNALS = (SIG_STOP, signal.SIGHUP)  # either ends a spooler or a mule gracefully

# -- exit codes --------------------------------------------------------------------------
EXIT_FATAL = 1
EXIT_APP_FAILED = 22  # uWSGI's "no app loaded"
EXIT_RECYCLE = 75  # a worker stopped to be replaced (max-requests, reload-on-rss, ...)


def recycled(status: int) -> bool:
    """True when a wait status says: a worker stopped by a guard, to be replaced."""
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_RECYCLE


def describe_exit(status: int) -> str:
    """How a child ended, in words, from its ``waitpid`` status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "?"
        return f"killed by signal {sig} ({name})"
    code = os.waitstatus_to_exitcode(status)
    text = f"exited with code {code}"
    if code == EXIT_APP_FAILED:
        text += " (the app failed to load)"
    return text


# -- environment variables -----------------------------------------------------------------
FDS_ENV = "PROCMASTER_FDS"  # listening sockets handed to a re-executed master
STATS_FD_ENV = "PROCMASTER_STATS_FD"  # the stats socket, likewise
CACHE_FDS_ENV = "PROCMASTER_CACHE_FDS"  # the caches' memory, likewise (JSON: name -> fd)
SHAREDAREA_FDS_ENV = "PROCMASTER_SHAREDAREA_FDS"  # the shared areas' memory (JSON: [fd])
CWD_ENV = "PROCMASTER_CWD"  # the directory the first image started in
REEXEC_ENV = "PROCMASTER_REEXEC"  # a re-executed master's reload state (JSON)
PROBE_ENV = "PROCMASTER_PROBE"  # "check the config and app load, then exit"
EMPEROR_FD_ENV = "PROCMASTER_EMPEROR_FD"  # a vassal's end of its emperor's pipe
# what a vassal must not inherit from its emperor
PRIVATE_ENV = (
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    CWD_ENV,
    REEXEC_ENV,
    PROBE_ENV,
    FDS_ENV,
    STATS_FD_ENV,
    CACHE_FDS_ENV,
    SHAREDAREA_FDS_ENV,
    EMPEROR_FD_ENV,
)


class ReexecState:
    """What a master hands the image it re-executes into for a full reload.
    (Plain classes here, not dataclasses: every process imports this module, and
    ``dataclasses`` costs each start milliseconds of imports and class building.)"""

    __slots__ = ("old", "reason", "t0", "pending", "brutal", "reloads", "board")
    __slots__ += ("old_slots", "log_pipes")

    def __init__(
        self,
        old: list[tuple[int, int]] | None = None,  # (pid, worker id)
        reason: str = "reload",
        t0: float = 0.0,  # wall clock when the reload was asked for
        pending: tuple[str, str, bool] | None = None,  # a queued reload: (kind, reason, brutal)
        brutal: bool = False,
        reloads: int = 0,
        # the scoreboard's memory (fd, slots, cores per slot), so the old workers keep
        # their slots; ``old_slots`` is parallel to ``old`` (-1: none)
        board: tuple[int, int, int] | None = None,
        old_slots: list[int] | None = None,
        # log-master: the read ends of the children's stdout/stderr pipes still open
        log_pipes: list[int] | None = None,
    ) -> None:
        self.old = [] if old is None else old
        self.reason, self.t0, self.pending, self.brutal = reason, t0, pending, brutal
        self.reloads, self.board = reloads, board
        self.old_slots = [] if old_slots is None else old_slots
        self.log_pipes = [] if log_pipes is None else log_pipes

    def __repr__(self) -> str:
        return f"ReexecState({self.encode()})"

    def encode(self) -> str:
        return json.dumps(
            {
                "old": [list(p) for p in self.old],
                "reason": self.reason,
                "t0": self.t0,
                "pending": list(self.pending) if self.pending else None,
                "brutal": self.brutal,
                "reloads": self.reloads,
                "board": list(self.board) if self.board else None,
                "old_slots": list(self.old_slots),
                "log_pipes": list(self.log_pipes),
            }
        )

    @classmethod
    def decode(cls, raw: str | None) -> ReexecState | None:
        """The state in ``raw``, or None when there is none or it is unreadable."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
            pending = data.get("pending")
            return cls(
                old=[(int(pid), int(wid)) for pid, wid in data.get("old", [])],
                reason=str(data.get("reason", "reload")),
                t0=float(data.get("t0", 0.0)),
                # (a master image from before ``brutal`` was handed on sends two items)
                pending=(str(pending[0]), str(pending[1]), len(pending) > 2 and bool(pending[2]))
                if pending
                else None,
                brutal=bool(data.get("brutal", False)),
                reloads=int(data.get("reloads", 0)),
                board=tuple(int(n) for n in data["board"][:3])  # type: ignore[arg-type]
                if data.get("board")
                else None,
                old_slots=[int(n) for n in data.get("old_slots", [])],
                log_pipes=[int(n) for n in data.get("log_pipes", [])],
            )
        except (ValueError, TypeError, AttributeError, IndexError):
            return None


# -- a reload's outcome, beside the pidfile ---------------------------------------------------
RELOAD_RUNNING = "running"
RELOAD_DONE = "done"  # the new workers serve
RELOAD_ABORTED = "aborted"  # the old workers go on serving; ``detail`` says why


def reload_status_path(pidfile: str) -> str:
    """Where a master with ``pidfile`` writes its last reload's ``ReloadStatus``."""
    return pidfile + ".reload"


class ReloadStatus:
    """The last reload of a master: written whole (``pidfile.write_atomically``)
    by the master when a reload starts and when it ends; read by
    ``procmaster --reload PIDFILE --wait``. ``reloads`` counts the reloads this
    master started (across its re-executions), so a waiter knows which one it sees."""

    __slots__ = ("pid", "reloads", "state", "reason", "detail")

    def __init__(
        self,
        pid: int,
        reloads: int,
        state: str,  # RELOAD_RUNNING, RELOAD_DONE or RELOAD_ABORTED
        reason: str = "",  # what asked for it (SIGHUP, a touched file ...)
        detail: str = "",  # why it was aborted (the new app's error), or what it did
    ) -> None:
        self.pid, self.reloads, self.state = pid, reloads, state
        self.reason, self.detail = reason, detail

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReloadStatus):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        return f"ReloadStatus({self.encode().decode().strip()})"

    def encode(self) -> bytes:
        data = {k: getattr(self, k) for k in ("pid", "reloads", "state", "reason", "detail")}
        return (json.dumps(data) + "\n").encode()

    @classmethod
    def read(cls, path: str) -> ReloadStatus | None:
        """The status in ``path``; None when there is none or it is unreadable."""
        try:
            with open(path, "rb") as fh:
                data = json.loads(fh.read(1 << 20))
            return cls(
                pid=int(data["pid"]),
                reloads=int(data["reloads"]),
                state=str(data["state"]),
                reason=str(data.get("reason", "")),
                detail=str(data.get("detail", "")),
            )
        except (OSError, ValueError, TypeError, KeyError):
            return None


# -- line-based pipes ----------------------------------------------------------------------------


class LineReader:
    """Splits a byte stream into whole lines; keeps a partial line for the next read.
    A line longer than ``limit`` without its end is dropped (a broken peer)."""

    __slots__ = ("buf", "limit")

    def __init__(self, limit: int = 65536) -> None:
        self.buf = b""
        self.limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        if len(self.buf) > self.limit:
            self.buf = b""
        return lines


class ReadyMessage(NamedTuple):
    """A worker accepts connections."""

    pid: int


class ModuleMessage(NamedTuple):
    """A worker imported the module at ``path`` (py-autoreload watches it)."""

    path: str


def encode_ready(pid: int) -> bytes:
    return b"%d\n" % pid


def encode_module(path: str) -> bytes:
    return b"M " + path.encode("utf-8", "surrogateescape") + b"\n"


def decode_ready_pipe(lines: list[bytes]) -> list[ReadyMessage | ModuleMessage]:
    """The messages in whole ready-pipe lines (from ``LineReader.feed``)."""
    out: list[ReadyMessage | ModuleMessage] = []
    for line in lines:
        if line.startswith(b"M "):
            out.append(ModuleMessage(line[2:].decode("utf-8", "surrogateescape")))
        elif line.isdigit():
            out.append(ReadyMessage(int(line)))
    return out


# emperor <-> vassal: one word a line
VASSAL_READY = "ready"  # vassal -> emperor: every worker of this image accepts
EMPEROR_STOP = "stop"  # emperor -> vassal: graceful stop
EMPEROR_RELOAD = "reload"  # emperor -> vassal: full reload


def encode_word(word: str) -> bytes:
    return word.encode("ascii") + b"\n"


def decode_words(lines: list[bytes]) -> list[str]:
    return [w for w in (line.decode("ascii", "replace").strip() for line in lines) if w]


def send_word(sock: socket.socket, word: str) -> None:
    """Write ``word`` to one end of an emperor pipe; a peer gone is not an error."""
    try:
        sock.send(encode_word(word))
    except OSError:
        pass


def read_words(sock: socket.socket, reader: LineReader) -> list[str] | None:
    """The words that arrived on a non-blocking end of an emperor pipe, or None
    once the peer closed it (words that came before the end are returned first:
    the end is seen again on the next read)."""
    lines: list[bytes] = []
    while True:
        try:
            data = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            data = b""
        if not data:
            if lines:
                break
            return None
        lines += reader.feed(data)
    return decode_words(lines)
