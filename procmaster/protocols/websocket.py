"""A WebSocket session (RFC 6455) over ``wsproto``: the upgrade check, the 101
head, bytes -> messages, messages -> bytes, limits and keep-alive pings.

Theory of operation
-------------------
A WebSocket starts as an HTTP request (``GET`` with ``Upgrade: websocket``)
that any HTTP-framed protocol delivered (HTTP itself; uwsgi behind nginx's
``uwsgi_pass``). ``check_upgrade(environ)`` validates it from its CGI
variables and returns the client's key, or raises ``HandshakeError`` (with the
HTTP status to answer: 400, or 426 for a version other than 13).
``accept_head(key, protocol, headers)`` is the ``101 Switching Protocols``
head. From then on the connection's bytes belong to a ``Session``:

* ``session.receive(data) -> bytes``: feed what the socket gave; complete
  messages wait in ``session.messages`` (a deque of ``(TEXT, str)`` or
  ``(BINARY, bytes)``); the returned bytes must be written now (the pong
  answering a ping, the close frame answering the client's close or a
  protocol error). ``receive(b"")`` means the peer closed (EOF).
* ``session.send(data) -> bytes``: a ``str`` goes as a text message, bytes as
  binary (``send_text_bytes`` sends UTF-8 bytes as text, as uWSGI's
  ``websocket_send`` does). ``session.close(code, reason) -> bytes``.
* ``session.closed``: the session ended (a close frame went both ways, or the
  peer vanished, or it broke the protocol); ``close_code``/``close_reason``
  say why (1006: no close frame; 1002: protocol error; 1009: message over
  ``max_size``). ``queued`` is the number of payload bytes waiting in
  ``messages`` (a runner stops reading above its bound).
* ``session.tick(now) -> bytes``: keep-alive as uWSGI does it: a ping every
  ``ping_freq`` seconds; no pong within ``pong_tolerance`` seconds closes
  the session (code 1011 sent, ``close_code`` 1006 recorded).

Both of procmaster's runners use a session the same way: the uWSGI API runner
(``worker/websocket.py``: ``uwsgi.websocket_*``) and an ASGI runner for the
``websocket`` scope (``websocket.accept`` -> ``accept_head``; ``receive`` ->
``messages``; ``websocket.send`` -> ``send``; ``websocket.close`` ->
``close``). A session is not thread-safe: one thread at a time.

Limits: a message (all its fragments) over ``max_size`` bytes closes with
1009, whatever its frames claim; fragments are gathered in one ``bytearray``,
so a flood of empty fragments costs no memory; unmasked client frames,
reserved bits and bad UTF-8 close with wsproto's codes (1002, 1007).
No extension is negotiated (uWSGI negotiates none either).

Must not know: sockets, threads, clocks (``now`` is given), WSGI, the
``uwsgi`` module.
"""

from __future__ import annotations

import base64
from collections import deque

from wsproto.connection import SERVER, Connection, ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, generate_accept_token

from .head import serialize_head

__all__ = [
    "BINARY",
    "TEXT",
    "HandshakeError",
    "Session",
    "accept_head",
    "check_upgrade",
    "is_upgrade",
    "refusal",
]

TEXT = 1
BINARY = 2
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
TOO_BIG = 1009
INTERNAL_ERROR = 1011
ABNORMAL = 1006
DEFAULT_MAX_SIZE = 1024 * 1024  # uWSGI's websocket-max-size default: 1024 KiB


class HandshakeError(ValueError):
    """A request that cannot be upgraded; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _tokens(value: str) -> set[str]:
    return {t.strip().lower() for t in value.split(",")}


def is_upgrade(environ: dict) -> bool:
    """The request asks for a WebSocket (``Upgrade: websocket``): cheap test."""
    upgrade = environ.get("HTTP_UPGRADE")
    return upgrade is not None and "websocket" in _tokens(upgrade)


def check_upgrade(environ: dict, key: str | None = None) -> str:
    """Validate a WebSocket upgrade request from its CGI variables; the
    client's ``Sec-WebSocket-Key`` (``key`` given: the app's, as uWSGI's
    ``websocket_handshake(key)`` allows). Raises ``HandshakeError``."""
    if environ.get("REQUEST_METHOD") != "GET":
        raise HandshakeError("a WebSocket handshake must be a GET request")
    if not is_upgrade(environ):
        raise HandshakeError("no 'Upgrade: websocket' header")
    connection = environ.get("HTTP_CONNECTION")
    if connection is not None and "upgrade" not in _tokens(connection):
        # behind nginx the Connection header may be absent (uwsgi_pass drops it
        # unless set): only a Connection header that names something else is wrong
        raise HandshakeError("'Connection' header without 'upgrade'")
    version = environ.get("HTTP_SEC_WEBSOCKET_VERSION")
    if version is None:
        raise HandshakeError("no Sec-WebSocket-Version header")
    if version.strip() != "13":
        raise HandshakeError(f"unsupported WebSocket version {version.strip()!r}", 426)
    if key is None:
        key = environ.get("HTTP_SEC_WEBSOCKET_KEY")
    if not key:
        raise HandshakeError("no Sec-WebSocket-Key header")
    key = key.strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except ValueError:
        raise HandshakeError("Sec-WebSocket-Key is not base64") from None
    if len(raw) != 16:
        raise HandshakeError("Sec-WebSocket-Key is not 16 bytes")
    return key


def accept_head(
    key: str, protocol: str | None = None, headers: list[tuple[str, str]] | None = None
) -> bytes:
    """The ``101 Switching Protocols`` head accepting ``key``; ``protocol``
    the chosen subprotocol, ``headers`` more header lines (checked like any
    response head: ``HeadError`` on CR, LF or NUL)."""
    lines = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", generate_accept_token(key.encode("ascii")).decode("ascii")),
    ]
    if protocol:
        lines.append(("Sec-WebSocket-Protocol", protocol))
    if headers:
        lines.extend(headers)
    return serialize_head("HTTP/1.1", "101 Switching Protocols", lines)


class Session:
    """One WebSocket's state once the 101 went out (see the module docstring)."""

    __slots__ = (
        "ws",
        "max_size",
        "ping_freq",
        "pong_tolerance",
        "messages",
        "queued",
        "partial",
        "partial_kind",
        "closed",
        "close_code",
        "close_reason",
        "last_ping",
        "awaiting_pong",
    )

    def __init__(
        self,
        max_size: int = DEFAULT_MAX_SIZE,
        ping_freq: float = 30.0,
        pong_tolerance: float = 3.0,
        now: float = 0.0,
    ) -> None:
        self.ws = Connection(SERVER)
        self.max_size = max_size
        self.ping_freq = ping_freq
        self.pong_tolerance = pong_tolerance
        self.messages: deque[tuple[int, str | bytes]] = deque()
        self.queued = 0  # payload bytes waiting in messages
        self.partial = bytearray()  # fragments of the message being received
        self.partial_kind = 0
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.last_ping = now
        self.awaiting_pong = False

    # -- receiving ---------------------------------------------------------------

    def receive(self, data: bytes) -> bytes:
        """Feed bytes from the peer (``b""``: it closed); the bytes to send now."""
        if self.closed:
            return b""
        ws = self.ws
        if not data:
            ws.receive_data(None)
        else:
            ws.receive_data(data)
        out = b""
        for event in ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                out += self._fragment(event)
            elif isinstance(event, Ping):
                out += ws.send(event.response())
            elif isinstance(event, Pong):
                self.awaiting_pong = False
            elif isinstance(event, CloseConnection):
                out += self._peer_closed(event)
            if self.closed:
                break
        return out

    def _fragment(self, event: TextMessage | BytesMessage) -> bytes:
        kind = TEXT if isinstance(event, TextMessage) else BINARY
        data = event.data
        partial = self.partial
        size = len(partial) + (len(data.encode()) if kind == TEXT else len(data))
        if size > self.max_size:
            return self._fail(TOO_BIG, f"message over {self.max_size} bytes")
        if event.message_finished and not partial:
            self.messages.append((kind, bytes(data) if kind == BINARY else data))
            self.queued += size
            return b""
        if not partial:
            self.partial_kind = kind
        partial += data.encode() if kind == TEXT else data
        if event.message_finished:
            whole = bytes(partial)
            self.partial = bytearray()
            self.messages.append((kind, whole.decode() if kind == TEXT else whole))
            self.queued += len(whole)
        return b""

    def _peer_closed(self, event: CloseConnection) -> bytes:
        ws = self.ws
        out = b""
        if ws.state is ConnectionState.REMOTE_CLOSING:
            out = ws.send(event.response())  # echo the close: the handshake ends
        elif ws.state is ConnectionState.OPEN:
            # wsproto reports a protocol error as a close event in state OPEN
            return self._fail(event.code, event.reason or "protocol error")
        self._end(event.code, event.reason or "")
        return out

    def _fail(self, code: int, reason: str) -> bytes:
        out = b""
        try:
            out = self.ws.send(CloseConnection(code=code, reason=reason))
        except LocalProtocolError:
            pass
        self._end(code, reason)
        return out

    def _end(self, code: int | None, reason: str) -> None:
        self.closed = True
        self.close_code = code
        self.close_reason = reason
        self.partial = bytearray()

    def next_message(self) -> tuple[int, str | bytes] | None:
        """The oldest complete message, or None."""
        if not self.messages:
            return None
        kind, data = self.messages.popleft()
        self.queued -= len(data.encode()) if kind == TEXT else len(data)
        return kind, data

    # -- sending -----------------------------------------------------------------

    def send(self, data: str | bytes) -> bytes:
        """A message: ``str`` as text, bytes as binary. Raises ``OSError``
        once the session is closed (as uWSGI's API does)."""
        if self.closed or self.ws.state is not ConnectionState.OPEN:
            raise OSError("websocket is closed")
        if isinstance(data, str):
            return self.ws.send(TextMessage(data=data))
        return self.ws.send(BytesMessage(data=bytes(data)))

    def send_text_bytes(self, data: bytes) -> bytes:
        """UTF-8 bytes as a text message (``ValueError`` if they are not UTF-8)."""
        return self.send(bytes(data).decode("utf-8"))

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        """Start (or answer) the closing handshake; the close frame to send."""
        if self.closed:
            return b""
        out = b""
        try:
            out = self.ws.send(CloseConnection(code=code, reason=reason))
        except LocalProtocolError:
            pass
        if self.ws.state is ConnectionState.CLOSED:
            self._end(code, reason)
        return out

    @property
    def closing(self) -> bool:
        """We sent a close frame and wait for the peer's."""
        return self.ws.state is ConnectionState.LOCAL_CLOSING

    def tick(self, now: float) -> bytes:
        """Keep-alive: a ping when one is due; close when a pong is overdue."""
        if self.closed or self.ws.state is not ConnectionState.OPEN or self.ping_freq <= 0:
            return b""
        if self.awaiting_pong:
            if now - self.last_ping > self.pong_tolerance:
                out = self._fail(INTERNAL_ERROR, "no pong")
                self.close_code = ABNORMAL
                return out
            return b""
        if now - self.last_ping >= self.ping_freq:
            self.last_ping = now
            self.awaiting_pong = True
            return self.ws.send(Ping(payload=b""))
        return b""


# a refused handshake's head, for a runner that answers it itself
def refusal(exc: HandshakeError) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, headers and body answering a refused upgrade."""
    body = (str(exc) + "\n").encode()
    status = "426 Upgrade Required" if exc.status == 426 else "400 Bad Request"
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    if exc.status == 426:
        headers.append(("Sec-WebSocket-Version", "13"))
    return status, headers, body
