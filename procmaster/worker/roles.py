"""What each part of the worker needs of another, as typing Protocols.

Theory of operation
-------------------
At run time the worker's modules import one way: ``loop`` -> ``connection`` ->
``glue`` -> ``response``. A module further down still holds objects from above
it (a connection holds its worker and listener; a response its connection), and
it is typed by what it uses of them, declared here, never by the class above it.
The concrete classes fit these Protocols by their shape (no inheritance); the
Protocols appear only in annotations, so they cost nothing at run time::

    Listener   a listening socket, as a connection and the app call see it  (loop.WorkerListener)
    Loop       the event loop, as a connection and a waiting response see it (loop.Worker)
    Books      the worker's accounting of a finished request                 (loop.Worker)
    AppHost    the worker, as the app call and the threads' hand-back see it (loop.Worker)
    Host       the worker, as a connection holds it (it hands it on)         (loop.Worker)
    InFlight   a response in progress, as its connection and the loop see it (response.Exchange)
    Client     a connection, as the app call and its response see it        (connection.Connection)

Each Protocol lists exactly the members its users touch; an attribute is only
read unless its comment says who writes it. A new use of a member not listed
here is a change of this contract: add it here first.

Must not know: anything of the worker package (this module is its bottom: it
imports none of it), sockets, protocol names.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from ..app import Apps
from ..appthreads import AppThreads
from ..guards import WorkerGuard
from ..logs import RequestLogger
from ..protocols import ProtocolBase, Request, Sink, WireProtocol
from ..scoreboard import Scoreboard
from ..static import StaticFiles

__all__ = ["AppHost", "Books", "Client", "Host", "InFlight", "Listener", "Loop"]


class Listener(Protocol):
    """A listening socket as its connections (``name``, ``protocol``, ``factory``,
    ``server_name``), the app call (``proxied``, ``complete_environ``,
    ``server_name``, ``server_port``) and a file response (``sendfile``) see it."""

    name: str
    protocol: type[ProtocolBase]
    factory: Callable[[Sink], WireProtocol]
    server_name: str
    server_port: str
    proxied: bool
    sendfile: bool
    transport: Any  # worker/transport.ListenerTransport, or None (no layer)

    def complete_environ(
        self, env: dict, remote: tuple[str, str], server_name: str, server_port: str
    ) -> None:
        """What a proxy left out of the CGI variables (the protocol class's)."""


class Loop(Protocol):
    """The event loop as a connection and a response waiting for its socket see it."""

    now: float  # the clock at the loop's last wake-up
    socket_timeout: float
    keepalive_timeout: float
    limit_post: int  # the worker's policy on request bodies (the connection checks it)
    spool_threshold: int
    stopping: bool
    timeouts: dict[str, int]  # connections closed by a deadline (a connection counts one)

    def modify(self, fd: int, mask: int) -> None:
        """Wait for ``mask`` (``EPOLLIN``/``EPOLLOUT``/0) on a connection's fd."""

    def forget(self, conn: Client) -> None:
        """``conn`` is closing: drop it (its fd is closed right after)."""

    def wait_drained(self, conn: Client, deadline: float) -> bool:
        """An app's ``write()`` waits for ``conn``'s client while the loop serves
        the others; False at the deadline."""


class Books(Protocol):
    """The worker's accounting of a finished request (``response.request_finished``)."""

    scoreboard: Scoreboard
    slot: int
    requests: int  # written by the app call (one more each request)
    guard: WorkerGuard | None
    recycle_reason: str | None  # written after a request, when a guard says so
    logging: bool
    req_log: RequestLogger | None


class AppHost(Books, Protocol):
    """The worker as the app call (``glue.run``) and the threads' hand-back
    (``response.threads_done``) see it."""

    base_env: dict
    apps: Apps
    static: StaticFiles | None
    pool: AppThreads | None
    harakiri: bool
    websockets: Any  # worker.websocket.WebSocketRunner once a request upgraded


class Host(Loop, AppHost, Protocol):
    """The worker as a connection holds it: the loop for itself, the rest for the
    app call and the response it hands the worker on to."""


class InFlight(Protocol):
    """A response in progress as its connection (``resume``, ``abort``) and the
    loop's ``SIGUSR2`` report (``req``, ``start``) see it."""

    req: Request
    start: float  # time.time() when the app was called

    def resume(self) -> bool:
        """The socket took what was queued: go on. True while it still waits."""

    def abort(self, why: str) -> None:
        """The connection is gone: close the app's iterable, log ``why``."""


class Client(Protocol):
    """A connection as the app call (``glue``) and its response (``response``) see it."""

    fd: int
    worker: Host
    listener: Listener
    remote: tuple[str, str]
    proto: WireProtocol
    current: InFlight | None  # written by the app call and its response
    ready: deque[Request]
    out: list[bytes | memoryview]
    out_size: int
    reading: bool
    pending: bytes  # read, not yet parsed (waits for the requests before it)
    closed: bool
    deadline: float  # written by a file response waiting for the socket
    awaiting_write: bool  # written by a file response waiting for the socket
    layer: Any  # the connection's transport layer (worker/transport.py), or None

    def send(self, data: bytes) -> None:
        """Queue bytes; write at once when nothing waits before them."""

    def flush(self) -> bool:
        """Write what is queued; True when all is out."""

    def rearm(self) -> None:
        """Ask the loop for what the connection waits for now (reading, writing)."""

    def broken(self) -> None:
        """The client went away while we were writing to it."""

    def request_done(self, req: Request) -> None:
        """The response to ``req`` is complete: keep alive, or close."""

    def process(self) -> None:
        """Run the complete requests waiting, in order."""

    def close(self) -> None:
        """Close now."""
