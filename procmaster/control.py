"""How an operator talks to a running master: the master FIFO and pidfile commands.

Theory of operation
-------------------
``master-fifo = PATH`` (repeatable; the first is the active one, as in uWSGI): the
master creates the FIFO if needed and opens it read-write and non-blocking (so a
writer closing it is no end-of-file that would make the selector spin), and the
master's selector calls ``MasterFifo.on_readable``. Each byte written is one
command, run in order; whitespace is skipped and an unknown letter is logged and
ignored. The letters are uWSGI's:

====  ===========================================  ==========================
 r    graceful reload (re-read INI, re-import)      ``request("reload")``
 R    brutal reload (old workers killed at once)    ``request("reload", brutal)``
 c    chain reload                                  ``request("chain")``
 w/W  reload the workers gracefully / brutally      ``request("workers")``
 q/Q  graceful / immediate stop                     ``handle_term`` / ``handle_int``
 l/L  reopen / rotate the log                       ``reopen_logs`` / ``rotate_logs``
 +/-  one worker more / less                        ``change_worker_count``
 s    statistics to the log                         ``log_stats``
 p    pause / resume accepting                      ``pause``
====  ===========================================  ==========================

Every letter goes to the master's own handler for that fact (the one a signal or
touched file uses): this module never carries out a reload itself.

``procmaster --reload/--stop/--chain-reload PIDFILE``: read the pid, check that it
is a live procmaster master (a stale pidfile is a clear error, not a signal sent
to whatever process has that pid now), send SIGHUP / SIGTERM / SIGURG.

Must not know: how a reload or a stop is carried out (it asks the master).
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import stat

from .logs import log

__all__ = ["FIFO_COMMANDS", "MasterFifo", "PidfileError", "signal_pidfile", "PIDFILE_COMMANDS"]

# command-line option -> (signal, what it asks)
PIDFILE_COMMANDS = {
    "reload": (signal.SIGHUP, "graceful reload"),
    "stop": (signal.SIGTERM, "graceful stop"),
    "chain-reload": (signal.SIGURG, "chain reload"),
}

# letter -> (what the log says, how the master is asked)
FIFO_COMMANDS = {
    "r": ("graceful reload", lambda m, why: m.request("reload", why)),
    "R": ("brutal reload", lambda m, why: m.request("reload", why, brutal=True)),
    "c": ("chain reload", lambda m, why: m.request("chain", why)),
    "w": ("graceful reload of the workers", lambda m, why: m.request("workers", why)),
    "W": ("brutal reload of the workers", lambda m, why: m.request("workers", why, brutal=True)),
    "q": ("graceful stop", lambda m, why: m.handle_term()),
    "Q": ("immediate stop", lambda m, why: m.handle_int(signal.SIGQUIT)),
    "l": ("reopen the log", lambda m, why: m.reopen_logs(why)),
    "L": ("rotate the log", lambda m, why: m.rotate_logs(why)),
    "+": ("one worker more", lambda m, why: m.change_worker_count(+1)),
    "-": ("one worker less", lambda m, why: m.change_worker_count(-1)),
    "s": ("statistics", lambda m, why: m.log_stats()),
    "p": ("pause/resume", lambda m, why: m.pause()),
}


class MasterFifo:
    """The active master FIFO, registered in the master's selector."""

    def __init__(self, path: str, master, sel: selectors.BaseSelector) -> None:
        self.path = path
        self.master = master
        self.sel = sel
        try:
            if not stat.S_ISFIFO(os.stat(path).st_mode):
                raise OSError(errno.EEXIST, f"{path} exists and is not a FIFO")
        except FileNotFoundError:
            os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        sel.register(self.fd, selectors.EVENT_READ, self.on_readable)

    def close(self) -> None:
        try:
            self.sel.unregister(self.fd)
        except (KeyError, ValueError):
            pass
        os.close(self.fd)

    def close_in_child(self) -> None:
        """In a forked worker: drop the fd (the master alone reads the FIFO)."""
        os.close(self.fd)

    def on_readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        self.run(data.decode("latin-1"))

    def run(self, letters: str) -> None:
        for letter in letters:
            if letter.isspace():
                continue
            command = FIFO_COMMANDS.get(letter)
            if command is None:
                log(f"master-fifo: unknown command {letter!r} ignored")
                continue
            what, ask = command
            log(f"master-fifo: {letter!r}: {what}")
            ask(self.master, f"master-fifo {letter}")


class PidfileError(Exception):
    """The pidfile is missing, unreadable, or names no running procmaster."""


def read_pidfile(path: str) -> int:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError as exc:
        raise PidfileError(f"cannot read pidfile {path!r}: {exc.strerror}") from None
    if not text.isdigit() or int(text) <= 0:
        raise PidfileError(f"pidfile {path!r} holds no pid (got {text[:40]!r})")
    return int(text)


def _is_procmaster(pid: int) -> bool | None:
    """True/False from the process's command line; None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return None
    return any(b"procmaster" in arg for arg in argv)


def signal_pidfile(command: str, path: str) -> int:
    """Send the signal of ``command`` (``reload``, ``stop``, ``chain-reload``) to
    the master named in ``path``; returns the pid. Raises ``PidfileError``."""
    sig, what = PIDFILE_COMMANDS[command]
    pid = read_pidfile(path)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise PidfileError(
            f"stale pidfile {path!r}: no process {pid} is running (procmaster is not "
            "running, or exited without removing it)"
        ) from None
    except PermissionError:
        pass  # it exists; kill() below says whether we may signal it
    if _is_procmaster(pid) is False:
        raise PidfileError(
            f"stale pidfile {path!r}: process {pid} is not procmaster (the pid was reused)"
        )
    try:
        os.kill(pid, sig)
    except PermissionError:
        raise PidfileError(f"not allowed to signal process {pid} (from {path!r})") from None
    except ProcessLookupError:
        raise PidfileError(f"stale pidfile {path!r}: process {pid} just exited") from None
    return pid
