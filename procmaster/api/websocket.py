"""``uwsgi.websocket_*``: uWSGI 2.0's WebSocket functions for apps.

Theory of operation
-------------------
uWSGI's API is blocking from the app's side: ``websocket_handshake()`` sends
the ``101`` for the request being served, ``websocket_recv()`` waits for the
next message (bytes, text messages UTF-8 encoded), ``websocket_recv_nb()``
returns ``b""`` when none waits, ``websocket_send()`` sends a text message,
``websocket_send_binary()`` a binary one. Whatever goes wrong (not a
WebSocket request, a bad handshake, the peer closed or vanished, the server
is stopping) raises ``IOError`` with uWSGI's messages ("unable to complete
websocket handshake", "unable to receive websocket message", "unable to send
websocket message").

``connection_fd()`` is the request's socket (flask-uwsgi-websocket keeps it);
procmaster knows it only inside a WebSocket request (-1 elsewhere).

The worker binds a ``Channel`` (the typing Protocol below) to the thread that
runs an upgrade request (``bind``); these functions find it there. A thread
with none bound (a plain request, a mule, the spooler) gets the ``IOError``.

Must not know: sockets, protocols, the worker's loop, threads beyond its own
thread-local.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Channel", "bind", "names"]

HANDSHAKE_FAILED = "unable to complete websocket handshake"
RECV_FAILED = "unable to receive websocket message"
SEND_FAILED = "unable to send websocket message"

_local = threading.local()


class Channel(Protocol):
    """One upgrade request's WebSocket as the app's thread uses it; each
    method raises ``OSError`` when it cannot do its part."""

    def handshake(self, key: str | None, origin: str | None, proto: str | None) -> None: ...

    def recv(self, block: bool) -> bytes: ...

    def send(self, data: bytes, binary: bool) -> None: ...

    def fileno(self) -> int: ...


def bind(channel: Channel | None) -> None:
    """The channel of the request this thread runs (None: none)."""
    _local.channel = channel


def _channel(message: str) -> Channel:
    channel = getattr(_local, "channel", None)
    if channel is None:
        raise OSError(message)
    return channel


def _text(value: object, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if isinstance(value, str):
        return value
    raise TypeError(
        f"websocket_handshake() {what} must be str or bytes, not {type(value).__name__}"
    )


def _payload(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"a websocket message must be str or bytes, not {type(value).__name__}")


def websocket_handshake(key: object = None, origin: object = None, proto: object = None) -> None:
    """Accept the WebSocket this request asks for (``key``: its
    Sec-WebSocket-Key, by default the request's own; ``origin`` is sent back as
    Sec-WebSocket-Origin, ``proto`` as Sec-WebSocket-Protocol)."""
    channel = _channel(HANDSHAKE_FAILED)
    channel.handshake(_text(key, "key") or None, _text(origin, "origin"), _text(proto, "proto"))


def websocket_recv() -> bytes:
    """The next message, waiting for it."""
    return _channel(RECV_FAILED).recv(True)


def websocket_recv_nb() -> bytes:
    """The next message, or ``b""`` when none is waiting."""
    return _channel(RECV_FAILED).recv(False)


def websocket_send(message: object) -> None:
    """Send a text message (str, or UTF-8 bytes)."""
    _channel(SEND_FAILED).send(_payload(message), False)


def websocket_send_binary(message: object) -> None:
    """Send a binary message."""
    _channel(SEND_FAILED).send(_payload(message), True)


def connection_fd() -> int:
    """The descriptor of the WebSocket request's connection (-1 outside one).
    The loop owns it: an app may look at it, never read or write it."""
    channel = getattr(_local, "channel", None)
    return -1 if channel is None else channel.fileno()


def names() -> dict[str, Callable[..., Any]]:
    """The ``uwsgi`` module's WebSocket names."""
    return {
        "websocket_handshake": websocket_handshake,
        "websocket_recv": websocket_recv,
        "websocket_recv_nb": websocket_recv_nb,
        "websocket_send": websocket_send,
        "websocket_send_binary": websocket_send_binary,
        "connection_fd": connection_fd,
    }
