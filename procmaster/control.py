"""How an operator talks to a running master: the master FIFO and pidfile commands.

Theory of operation
-------------------
``master-fifo = PATH`` (repeatable; the first is the active one, as in uWSGI): the
master creates the FIFO afresh with mode 0600 (``open_fifo``: a planted one,
another user's or one others may write, or a symlink, is refused with the
reason) and opens it read-write and non-blocking (so a
writer closing it is no end-of-file that would make the selector spin), and the
master's selector calls ``MasterFifo.on_readable``. Each byte written is one
command, run in order; whitespace is skipped and an unknown letter is logged and
ignored. What each letter does is the master's table, handed in as ``letters``
(letter -> what the log says, and a callable given the reason): uWSGI's letters
``r R c w W q Q l L + - s p`` are the rows of ``FIFO_LETTERS`` in
``procmaster.master.triggers``, and each asks the same handler as its signal or
touched file. This module never carries out anything itself.

``procmaster --reload/--stop/--chain-reload PIDFILE``: read the pid, check that it
is a live procmaster master (a stale pidfile is a clear error, not a signal sent
to whatever process has that pid now), send SIGHUP / SIGTERM / SIGURG.
``--reload PIDFILE --wait``: the master writes each reload's outcome beside its
pidfile (``ipc.ReloadStatus`` in ``PIDFILE.reload``, written whole when a reload
starts and ends); ``wait_reload`` notes how many reloads the master had started
before the signal and reads the file again (every 0.1 s: a short-lived command,
not the master) until a later reload has ended, the master is gone, or the
deadline passes.

Must not know: how a reload or a stop is carried out (it asks the master).
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import stat
import time
from collections.abc import Callable, Mapping

from .ipc import RELOAD_ABORTED, RELOAD_DONE, ReloadStatus, reload_status_path
from .logs import log
from .process import is_procmaster_argv

__all__ = [
    "Letters",
    "MasterFifo",
    "PidfileError",
    "ReloadFailed",
    "open_fifo",
    "reload_and_wait",
    "signal_pidfile",
    "PIDFILE_COMMANDS",
]

# command-line option -> (signal, what it asks)
PIDFILE_COMMANDS = {
    "reload": (signal.SIGHUP, "graceful reload"),
    "stop": (signal.SIGTERM, "graceful stop"),
    "chain-reload": (signal.SIGURG, "chain reload"),
}

# what a FIFO letter does: (what the log says, a callable given the reason)
Letters = Mapping[str, tuple[str, Callable[[str], None]]]


def open_fifo(path: str) -> int:
    """Create the FIFO ``path`` afresh (mode 0600, owned by us) and open it
    read-write, non-blocking. What is already there is replaced only when it is a
    FIFO of our own that nobody else may write; a symlink, another kind of file, a
    FIFO owned by someone else or writable by others is refused (anyone who can
    write to it could stop or reload the server). Raises ``OSError``."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISLNK(st.st_mode):
            raise OSError(errno.EEXIST, f"{path} is a symlink; refusing to follow it")
        if not stat.S_ISFIFO(st.st_mode):
            raise OSError(errno.EEXIST, f"{path} exists and is not a FIFO")
        if st.st_uid != os.geteuid():
            raise OSError(
                errno.EPERM,
                f"{path} is a FIFO owned by uid {st.st_uid}, not by us (uid "
                f"{os.geteuid()}): remove it or choose another path",
            )
        if st.st_mode & 0o022:
            raise OSError(
                errno.EPERM,
                f"{path} is a FIFO others may write to (mode {stat.S_IMODE(st.st_mode):04o}):"
                " remove it or choose another path",
            )
        os.unlink(path)  # ours and private: made afresh below
    os.mkfifo(path, 0o600)  # EEXIST if something was planted in between: refused
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISFIFO(st.st_mode) or st.st_uid != os.geteuid():
            raise OSError(errno.EPERM, f"{path} was replaced while it was being created")
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return fd


class MasterFifo:
    """The active master FIFO, registered in the master's selector."""

    def __init__(self, paths: list[str], letters: Letters, sel: selectors.BaseSelector) -> None:
        self.paths = paths  # every master-fifo; the first is active, 0-9 switch (as uWSGI)
        self.path = paths[0]
        self.letters = letters
        self.sel = sel
        self.fd = open_fifo(self.path)
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
        switch_to = None
        for letter in letters:
            if letter.isspace():
                continue
            if letter in "0123456789":
                n = int(letter)
                if n < len(self.paths):
                    switch_to = self.paths[n]
                    log(f"active master fifo is now {switch_to}")
                else:
                    log(f"master-fifo: {letter!r}: there is no master-fifo number {n}; ignored")
                continue
            command = self.letters.get(letter)
            if command is None:
                log(f"master-fifo: unknown command {letter!r} ignored")
                continue
            what, ask = command
            log(f"master-fifo: {letter!r}: {what}")
            ask(f"master-fifo {letter}")
        if switch_to is not None and switch_to != self.path:
            self.switch(switch_to)

    def switch(self, path: str) -> None:
        """uWSGI's 0-9: the FIFO at ``path`` becomes the active one (made afresh);
        the previous one is closed and left where it is."""
        try:
            fd = open_fifo(path)
        except OSError as exc:
            log(f"master-fifo: cannot open {path!r}: {exc}; {self.path} stays active")
            return
        self.close()
        self.fd, self.path = fd, path
        self.sel.register(fd, selectors.EVENT_READ, self.on_readable)


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
    """True/False from the shape of the process's command line (``procmaster.process.
    is_procmaster_argv``: ``-m procmaster``, our re-exec, the entry script; the word
    anywhere else does not count); None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return None
    return is_procmaster_argv(argv[:-1] if argv and argv[-1] == b"" else argv)


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


class ReloadFailed(Exception):
    """The reload asked for with ``--wait`` was aborted, or its outcome never came."""


def reload_and_wait(path: str, timeout: float, poll: float = 0.1) -> tuple[int, ReloadStatus]:
    """SIGHUP to the master named in ``path``, then wait for that reload's outcome:
    (pid, the ``done`` status). Raises ``ReloadFailed`` (aborted: the reason;
    master gone; no outcome within ``timeout``) or ``PidfileError``."""
    status_path = reload_status_path(path)
    before = ReloadStatus.read(status_path)
    pid = read_pidfile(path)
    seen = before.reloads if before is not None and before.pid == pid else 0
    pid = signal_pidfile("reload", path)
    deadline = time.monotonic() + timeout
    while True:
        status = ReloadStatus.read(status_path)
        if status is not None and status.pid == pid and status.reloads > seen:
            if status.state == RELOAD_DONE:
                return pid, status
            if status.state == RELOAD_ABORTED:
                raise ReloadFailed(
                    f"reload of master pid {pid} aborted ({status.reason}): {status.detail}; "
                    "the old workers go on serving"
                )
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise ReloadFailed(f"master pid {pid} exited during the reload") from None
        except PermissionError:
            pass
        if time.monotonic() >= deadline:
            where = (
                ""
                if status is not None
                else f" (no {status_path!r}: is the master's pidfile {path!r}?)"
            )
            raise ReloadFailed(f"no outcome of the reload within {timeout:g}s{where}")
        time.sleep(poll)
