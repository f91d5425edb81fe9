"""The ASGI runner's read at accept: a new connection whose request is already
there is answered before the event loop makes a transport for it.

Theory of operation
-------------------
A front end (nginx, a client opening a connection per request) has usually
written its whole request by the time the worker accepts. ``serve_at_accept``
reads the new socket once; with nothing there, the socket goes to the loop as
before (``AsgiWorker.connect``). With bytes, the connection is an
``AsgiConnection`` whose transport is an ``EarlyTransport`` on the bare socket:
the bytes are parsed as usual, and the request's first step runs once
``data_received`` has parsed the read (``asgi_exchange.step``, inside the
request's own task, so an app that asks for its task finds it). A hello-world
app finishes in that step; its response was written straight to the socket and,
when the connection closes after it (``Connection: close``, the uwsgi protocol),
the socket is closed: no transport, no epoll registration; on Python 3.11 the
finished task only ends on the loop's next turn.

Whatever goes on past that step (the app waits, the connection is kept alive,
a response did not fit the socket, a lingering error answer, a WebSocket)
hands the socket to the loop (``settle``): the loop's transport replaces the
early one in ``AsgiConnection.connection_made`` (``hand_over``), which passes on
what was recorded meanwhile (unsent bytes, paused reading, close, abort,
write_eof), in that order; a suspended app goes on in its task. The guarantees
are the loop path's: bytes not sent wait in memory bounded as a transport's
(``pause_writing`` above ``HIGH_WATER``, so the app's ``send`` waits), the
deadlines start at the connection's creation, harakiri sees the task.

Must not know: protocol names, the master, other connections.
"""

from __future__ import annotations

import asyncio
import errno
import socket

from ..logs import log
from .asgi_exchange import STEP_AT_ACCEPT
from .asgi_http import AsgiConnection
from .listener import setnodelay
from .response import HIGH_WATER

__all__ = ["EarlyTransport", "accept", "serve_at_accept"]

ACCEPT_BATCH = 16
READ_SIZE = 65536
STREAM = socket.SOCK_STREAM


class _Accepted(socket.socket):
    """An accepted stream socket whose family and type are plain class
    attributes: ``socket.socket`` converts both to enums on every read, and the
    loop reads both when it takes the socket."""

    __slots__ = ()


ACCEPTED = {
    family: type(f"Accepted{family.name}", (_Accepted,), {"family": family, "type": STREAM})
    for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6)
}


def accept(worker, lst) -> None:
    """Take what waits in the listen queue (a bounded batch), each socket read
    at once (``serve_at_accept``; TLS and PROXY layers read through the loop).
    A socket waiting for the loop's transport counts in ``worker.accepted``, so
    a stopping worker waits for it instead of dropping it. (Not asyncio's
    Server: closing one drops, unanswered, the sockets it accepted in the same
    loop iteration.)"""
    listening = lst.sock
    family = listening.family
    make = ACCEPTED.get(family, socket.socket)
    direct = lst.transport is None
    for _ in range(ACCEPT_BATCH):
        try:
            fd, addr = listening._accept()
        except (BlockingIOError, InterruptedError):
            if worker.fd_episode:  # nothing waits: an out-of-descriptors episode is over
                worker.fds_again()
            return
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                worker.out_of_fds(exc)
            return
        sock = make(family, STREAM, 0, fd)
        sock.setblocking(False)
        if not lst.unix:
            setnodelay(fd)
        if direct:
            serve_at_accept(worker, sock, lst, addr)
        else:
            connect_later(worker, sock, lst, None)


def connect_later(worker, sock: socket.socket, lst, conn: AsgiConnection | None) -> None:
    """The loop makes the socket's transport (for ``conn``, read at accept, or a new one)."""
    worker.accepted += 1
    Connecting(worker, sock, lst, conn).step()


class Connecting:
    """``loop.connect_accepted_socket`` for one socket, its coroutine driven by
    its waiter's callbacks rather than by a task: the transport is made at once,
    the coroutine ends once the loop has called ``connection_made``. (A task per
    connection, as ``create_task`` would make, costs more than the rest of the
    hand-over: two trips through the loop and the registry of all tasks.)"""

    __slots__ = ("worker", "sock", "conn", "early", "coro")

    def __init__(self, worker, sock: socket.socket, lst, conn: AsgiConnection | None) -> None:
        self.worker = worker
        self.sock = sock
        # a connection read at accept: its early transport (the loop's may have
        # replaced it by the time the hand-over fails)
        self.early = None if conn is None else conn.transport
        self.conn = conn = AsgiConnection(worker, lst) if conn is None else conn
        self.coro = worker.loop.connect_accepted_socket(lambda: conn, sock)

    def step(self, _done: asyncio.Future | None = None) -> None:
        try:
            waits_on = self.coro.send(None)
        except StopIteration:
            self.over(None)
            return
        except BaseException as exc:  # (OSError, mostly: the loop could not take the socket)
            self.over(exc)  # (also a cancelled waiter: the socket is not left counted)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return
        if waits_on is None:  # (a bare yield: go on at the loop's next turn)
            self.worker.loop.call_soon(self.step)
        else:
            waits_on._asyncio_future_blocking = False
            waits_on.add_done_callback(self.step)

    def over(self, exc: BaseException | None) -> None:
        worker = self.worker
        worker.accepted -= 1
        if exc is not None:
            if self.early is None:
                self.sock.close()
            else:
                self.early.lost(self.conn, exc)
        self.conn = self.coro = self.early = None
        if worker.stopping:
            worker.check_done()


def serve_at_accept(worker, sock: socket.socket, lst, addr) -> None:
    """Read a just-accepted socket once; answer what is there, or hand it to the loop."""
    try:
        data = sock.recv(READ_SIZE)
    except (BlockingIOError, InterruptedError):
        data = None
    except OSError:
        sock.close()
        return
    if data is None:  # nothing yet: the loop waits for it
        connect_later(worker, sock, lst, None)
        return
    if not data:  # the client left without a word
        sock.close()
        return
    conn = AsgiConnection(worker, lst)
    early = EarlyTransport(sock, addr, conn)
    try:
        conn.connection_made(early)
        conn.stepping = STEP_AT_ACCEPT
        conn.data_received(data)  # (which runs the first step of what it parsed)
    except Exception as exc:  # as the loop does for a protocol's callback
        log(f"{worker.who}: error serving a new connection: {exc!r}")
        early.abort()
    early.settle(worker, conn, lst)


class EarlyTransport:
    """The transport of a connection read at accept, on the bare socket, until
    the loop's transport takes over (``hand_over``); from then on it forwards."""

    __slots__ = (
        "sock",
        "addr",
        "conn",
        "out",
        "outsize",
        "closing",
        "aborted",
        "error",
        "paused",
        "eof",
        "handed",
        "real",
    )

    def __init__(self, sock: socket.socket, addr, conn) -> None:
        self.sock = sock
        self.addr = addr
        self.conn = conn
        self.out: list[bytes] = []  # bytes the socket did not take
        self.outsize = 0
        self.closing = self.aborted = self.paused = self.eof = self.handed = False
        self.error: OSError | None = None
        self.real: asyncio.Transport | None = None

    # -- the transport methods AsgiConnection (and asgi_ws) call ---------------

    def write(self, data: bytes) -> None:
        if self.real is not None:
            return self.real.write(data)
        if self.closing or self.aborted:
            return
        if not (self.out or self.handed):
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self.error = exc
                self.abort()
                return
            if sent == len(data):
                return
            data = data[sent:]
        self.out.append(data)
        self.outsize += len(data)
        if self.outsize > HIGH_WATER and not self.conn.write_paused:
            self.conn.pause_writing()  # the app's send() waits, as on a transport

    def close(self) -> None:
        if self.real is not None:
            return self.real.close()
        self.closing = True

    def abort(self) -> None:
        if self.real is not None:
            return self.real.abort()
        if not self.aborted:
            self.aborted = True
            self.out.clear()
            if not self.handed:
                self.sock.close()

    def is_closing(self) -> bool:
        if self.real is not None:
            return self.real.is_closing()
        return self.closing or self.aborted

    def pause_reading(self) -> None:
        if self.real is not None:
            return self.real.pause_reading()
        self.paused = True

    def resume_reading(self) -> None:
        if self.real is not None:
            return self.real.resume_reading()
        self.paused = False

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self.real is not None:
            return self.real.write_eof()
        self.eof = True

    def get_write_buffer_size(self) -> int:
        return self.real.get_write_buffer_size() if self.real is not None else self.outsize

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass  # HIGH_WATER, as AsgiConnection sets on the loop's transport

    def get_extra_info(self, name, default=None):
        if name == "peername":
            return self.addr or default
        if name == "socket":
            return self.sock
        return default

    # -- after the read at accept ---------------------------------------------------

    def settle(self, worker, conn, lst) -> None:  # (conn is self.conn)
        """Done with the connection (close the socket), or hand it to the loop."""
        if self.aborted or (self.closing and not self.out and not self.eof):
            if not self.aborted:
                self.sock.close()
            self.aborted = True
            conn.connection_lost(self.error)
            self.conn = None  # (no cycle with the connection: freed at once)
            return
        self.handed = True
        connect_later(worker, self.sock, lst, conn)

    def hand_over(self, conn, real: asyncio.Transport) -> None:
        """The loop's transport for the connection: pass on what was recorded."""
        self.real = conn.transport = real
        self.conn = None  # (no cycle with the connection)
        real.set_write_buffer_limits(high=HIGH_WATER)
        if self.aborted:
            real.abort()
            return
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            self.outsize = 0
            real.write(data)
        if conn.write_paused and real.get_write_buffer_size() <= HIGH_WATER:
            conn.resume_writing()  # the loop's transport took it all: send() goes on
        if self.paused:
            real.pause_reading()
        if self.eof:
            real.write_eof()
        if self.closing:
            real.close()

    def lost(self, conn, exc: BaseException | None) -> None:
        """The loop could not take the socket."""
        self.sock.close()
        if not conn.closed:
            conn.connection_lost(exc)
