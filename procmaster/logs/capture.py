"""``log-master``: the children's raw stdout/stderr, read by the master and run
line by line through the log chain (loggers, ``log-route``, ``log-encoder``).

Theory of operation
-------------------
uWSGI's log master holds one socket whose other end is every worker's fd 1 and
2; it reads it and runs what comes through its loggers, routes and encoders.
Here each forked child (worker, spooler, mule) gets a pipe of its own, made by
the master just before the fork (``before_fork``): the child puts the write end
on its fd 1 and 2 (``in_child``; procmaster's own lines keep going where they
went, through ``Log.fd``), the master closes that end (``after_fork``) and
reads the other in its selector. One pipe per child is what keeps lines whole:
the master joins each pipe's bytes into lines and hands on only whole lines,
so two workers that print at once never interleave mid-line, whatever the size
of their writes (a shared pipe is atomic only up to ``PIPE_BUF``).

Bounded: one ``read`` of at most ``CHUNK`` bytes per readable pipe per wake-up
(the selector wakes the loop again while there is more), and a line longer than
``log-master-bufsize`` is handed on in pieces of that size. A child that prints
in a loop fills its pipe and waits in ``write``: the master's memory holds at
most a chunk and a partial line per child, and the master never blocks (its
ends are non-blocking).

A child that dies leaves its bytes in the pipe: the master reads them to the
end (EOF, when every holder of the write end is gone: the child and anything it
started), hands on a last partial line with a newline, and closes the pipe. A
respawned child gets a new pipe. The master's own fd 1 and 2 are a pipe too
(``own``: a preloaded app's prints, attached daemons), read by a thread only
while the app is imported (``pumping``; no thread is left when workers fork),
then in the loop. Across a reload's exec the read ends of the
pipes still open are handed on (``export``; their numbers in ``ReexecState``)
and the next image reads them on (``adopt``), so the old workers' lines, while
they drain, arrive as before; partial lines are handed on before the exec.

Must not know: what a child is, the selector's other keys, where lines end up
(``emit`` is given).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import selectors
import threading
from collections.abc import Callable, Iterator

__all__ = ["Capture"]

CHUNK = 65536  # bytes read from one pipe per wake-up
OWN_PIPE_SIZE = 1 << 20  # the master's own pipe (it reads it itself, between its other work)


class Capture:
    """The master's ends of its children's stdout/stderr pipes."""

    def __init__(
        self, sel: selectors.BaseSelector, emit: Callable[[bytes], None], bufsize: int
    ) -> None:
        self.sel = sel
        self.emit = emit  # one whole line, newline included
        self.bufsize = max(bufsize, 64)
        self.partial: dict[int, bytes] = {}  # read end -> bytes after its last newline
        self.pending: tuple[int, int] | None = None  # (read, write) of the next child
        self.own_fd = -1  # the master's own pipe (its fd 1 and 2), when ``own`` made it

    def fds(self) -> list[int]:
        """The read ends open now."""
        return list(self.partial)

    def own(self) -> None:
        """The master's own fd 1 and 2 become a pipe it reads (a preloaded app's
        prints; attached daemons inherit it), as uWSGI's master writes into its
        log pipe too. Made large, as the master reads it only between its other
        work (``pumping`` reads it while the app is imported)."""
        r, w = os.pipe2(os.O_CLOEXEC)
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, OWN_PIPE_SIZE)
        os.set_blocking(r, False)
        os.dup2(w, 1)
        os.dup2(w, 2)
        _close(w)
        self.own_fd = r
        self.watch(r)

    @contextlib.contextmanager
    def pumping(self) -> Iterator[None]:
        """While the master itself runs app code (the preloaded import) and its
        loop does not turn: a thread reads the master's own pipe, so the app
        can print any amount. Joined before anything is forked."""
        fd = getattr(self, "own_fd", -1)
        if fd < 0:
            yield
            return
        stop = threading.Event()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)

        def pump() -> None:
            while not stop.is_set():
                if sel.select(0.2):
                    self.on_readable(fd)

        thread = threading.Thread(target=pump, name="log-master", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            sel.close()

    def before_fork(self) -> None:
        """A pipe for the child about to be forked."""
        self.drop_pending()
        r, w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(r, False)
        self.pending = (r, w)

    def in_child(self) -> None:
        """In the forked child: its fd 1 and 2 become the pipe; no other pipe's
        read end stays open here."""
        pending, self.pending = self.pending, None
        for fd in self.partial:
            _close(fd)
        self.partial = {}
        if pending is None:
            return
        r, w = pending
        _close(r)
        os.dup2(w, 1)
        os.dup2(w, 2)
        _close(w)

    def after_fork(self, forked: bool) -> None:
        """In the master: read the new child's pipe (or drop it if the fork failed)."""
        if self.pending is None:
            return
        if not forked:
            self.drop_pending()
            return
        r, w = self.pending
        self.pending = None
        _close(w)
        self.watch(r)

    def drop_pending(self) -> None:
        if self.pending is not None:
            for fd in self.pending:
                _close(fd)
            self.pending = None

    def watch(self, fd: int) -> None:
        self.partial[fd] = b""
        self.sel.register(fd, selectors.EVENT_READ, lambda: self.on_readable(fd))

    def on_readable(self, fd: int) -> bool:
        """One read; False when there was nothing (for now, or ever: EOF)."""
        try:
            data = os.read(fd, CHUNK)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return False
            data = b""
        if not data:
            self.finish(fd)
            return False
        if fd not in self.partial:  # finished by the other thread meanwhile
            return False
        buf = self.partial[fd] + data
        end = buf.rfind(b"\n") + 1
        if end:
            start = 0
            while start < end:
                nl = buf.index(b"\n", start) + 1
                self.line(buf[start:nl])
                start = nl
            buf = buf[end:]
        while len(buf) >= self.bufsize:
            self.emit(buf[: self.bufsize] + b"\n")
            buf = buf[self.bufsize :]
        self.partial[fd] = buf
        return True

    def line(self, line: bytes) -> None:
        size = self.bufsize
        while len(line) > size:
            self.emit(line[:size] + b"\n")
            line = line[size:]
        self.emit(line)

    def finish(self, fd: int) -> None:
        """EOF: the last partial line, then the pipe is closed."""
        self.flush(fd)
        self.partial.pop(fd, None)
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass
        _close(fd)

    def flush(self, fd: int) -> None:
        rest = self.partial.get(fd)
        if rest:
            self.partial[fd] = b""
            self.line(rest + b"\n")

    def drain(self) -> None:
        """Read every pipe until it is empty for now (before an exec, at the end)."""
        for fd in list(self.partial):
            while self.on_readable(fd):
                pass

    def export(self) -> list[int]:
        """Before a reload's exec: every line so far handed on, the read ends made
        to survive the exec; their numbers, for ``ReexecState``."""
        self.drop_pending()
        self.drain()
        fds = self.fds()
        for fd in fds:
            self.flush(fd)
            flags = fcntl.fcntl(fd, fcntl.F_GETFD)
            fcntl.fcntl(fd, fcntl.F_SETFD, flags & ~fcntl.FD_CLOEXEC)
        return fds

    def adopt(self, fds: list[int]) -> None:
        """After the exec: read on the pipes the previous image handed over."""
        for fd in fds:
            try:
                os.set_blocking(fd, False)
                os.set_inheritable(fd, False)
            except OSError:
                continue  # not open: nothing to read
            self.watch(fd)

    def close(self) -> None:
        """At the master's end: what is left, then every pipe closed."""
        self.drain()
        for fd in list(self.partial):
            self.finish(fd)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
