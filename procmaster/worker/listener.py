"""What the worker keeps of each listening socket, and the per-socket settings
it applies to an accepted connection.

Theory of operation
-------------------
``WorkerListener`` holds a listening socket with what its protocol class says
the worker must know (``protocols.base``: Capabilities), built once per worker;
``keepalive_timeout`` reads ``http-keepalive`` as uWSGI does; ``setnodelay``
sets ``TCP_NODELAY`` on an accepted fd without building a socket object;
``bytes_waiting`` tells a draining worker that an idle connection's next
request has arrived (it is served, not closed unread); ``timeout_kind`` names
what a connection closed at its deadline was waiting for (the counts a worker
logs when it stops); ``out_of_fds_line`` and ``fds_again_line`` are the two log
lines of an out-of-descriptors episode, the same for every kind of worker.

Must not know: connections, the event loop, protocol names.
"""

from __future__ import annotations

import ctypes
import select
import socket

from ..protocols import protocol_class

__all__ = [
    "NO_REQUEST_YET",
    "WorkerListener",
    "fds_again_line",
    "keepalive_timeout",
    "out_of_fds_line",
    "setnodelay",
    "timeout_kind",
]

# a connection's ``idle_since`` until its first request is answered: it is not an
# idle keep-alive connection (a draining worker closes those after a moment) but a
# client still sending its first request, held to the header deadline like any other
NO_REQUEST_YET = float("inf")


def timeout_kind(in_request: bool, got_head: bool, idle_since: float) -> str:
    """What a connection that reached its deadline without writing was waiting
    for: the rest of its request (``read``), a request head (``header``: also a
    connection that never sent a request), or its next request (``keepalive``)."""
    if in_request:
        return "read" if got_head else "header"
    return "keepalive" if idle_since != NO_REQUEST_YET else "header"


class WorkerListener:
    """What a worker needs of a listening socket, and what its protocol class
    says the worker needs to know (see ``protocols.base``: Capabilities)."""

    __slots__ = (
        "fd",
        "sock",
        "name",
        "protocol",
        "factory",
        "proxied",
        "sendfile",
        "complete_environ",
        "unix",
        "server_name",
        "server_port",
        "transport",
    )

    def __init__(self, listener, cfg) -> None:
        self.sock = listener.sock
        self.fd = listener.sock.fileno()
        self.name = listener.proto
        self.unix = listener.sock.family == socket.AF_UNIX
        if self.unix:
            self.server_name, self.server_port = "localhost", "0"
        else:
            name = listener.sock.getsockname()
            self.server_name, self.server_port = str(name[0]), str(name[1])
        cls = self.protocol = protocol_class(listener.proto)
        self.proxied = cls.proxied
        self.sendfile = cls.sendfile
        self.complete_environ = cls.complete_environ
        self.factory = cls.for_listener(
            buffer_size=cfg.buffer_size,
            server_name=self.server_name,
            server_port=self.server_port,
            backlog=cfg.listen,
        )
        extra = getattr(listener, "extra", None) or {}  # (a bare listener in unit tests)
        if extra.get("tls") or extra.get("proxy") or cfg.forwarded_allow_ips:
            # lazily: the layers (``transport``, and through it ``ssl``) are loaded
            # only by a worker with a socket that has them (see transport.attach)
            from .transport import attach

            attach(self, listener, cfg)  # PROXY header, TLS, forwarded headers
        else:
            self.transport = None


DEFAULT_KEEPALIVE = 15.0


def keepalive_timeout(value: int) -> float:
    """Idle time a kept-alive connection may wait for its next request.

    ``http-keepalive`` as uWSGI: 0 (the default) or bare/1 mean "keep-alive on"
    with our default idle timeout; a larger number is the timeout in seconds.
    (procmaster always keeps HTTP/1.1 connections alive, as uWSGI's
    http11-socket does.)"""
    if not value or value == 1:
        return DEFAULT_KEEPALIVE
    return float(value)


def bytes_waiting(fd: int) -> bool:
    """Whether ``fd`` is readable now (bytes, or the client's close).

    A draining worker closes a kept-alive connection that stayed idle; a
    request that arrived since the loop last polled would be closed unread
    (the client sees a reset), so the drain asks first and serves it instead.
    What arrives after this answer meets the close: HTTP's own race, which a
    client retries (RFC 9112 9.3.1)."""
    if fd < 0:
        return False
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def out_of_fds_line(who: str, exc: OSError) -> str:
    """The line that starts an out-of-descriptors episode (accept failed with EMFILE)."""
    return f"{who}: out of file descriptors (accept: {exc.strerror}); pausing accept until some are free"


def fds_again_line(who: str, pauses: int) -> str:
    """The line that ends it: an accept found the listen queue empty."""
    return f"{who}: descriptors free again, accepting (accept was paused {pauses} times)"


def setnodelay(fd: int) -> None:
    _NODELAY_SOCK.setsockopt_fd(fd)


class _NoDelay:
    """setsockopt(TCP_NODELAY) on a bare fd without building a socket object each time."""

    def __init__(self) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self._setsockopt = libc.setsockopt
            self._one = ctypes.byref(ctypes.c_int(1))
            self._size = ctypes.sizeof(ctypes.c_int)
        except (OSError, AttributeError):  # pragma: no cover
            self._setsockopt = None

    def setsockopt_fd(self, fd: int) -> None:
        if self._setsockopt is not None:
            self._setsockopt(fd, socket.IPPROTO_TCP, socket.TCP_NODELAY, self._one, self._size)


_NODELAY_SOCK = _NoDelay()
