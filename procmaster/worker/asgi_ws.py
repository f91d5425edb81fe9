"""The ASGI ``websocket`` scope: an upgrade request's task speaks to the app
through the shared sans-IO WebSocket session (``protocols.websocket``).

Theory of operation
-------------------
A request with ``Upgrade: websocket`` on a protocol that ``upgrades`` (HTTP;
uwsgi behind nginx) runs as a ``WsRun`` instead of an ``http`` exchange: its
``receive`` gives ``websocket.connect``, then the session's messages
(``websocket.receive``), then ``websocket.disconnect`` with the close code;
its ``send`` takes ``websocket.accept`` (``check_upgrade`` then the 101 head:
from then on the connection's bytes go to the session, ``on_bytes``),
``websocket.send`` (waiting while the client is behind, as ``http`` does) and
``websocket.close`` (before the accept: a 403). The scope advertises the
``websocket.http.response`` extension: before the accept, the app may answer
the upgrade with its own HTTP response instead (``websocket.http.response.start``
then ``.body`` messages, streamed with ``more_body``), always ending the
connection. What the app sends is checked before a byte reaches the wire (a
final status 200..599, headers as byte pairs that make a valid head: no CR, LF
or NUL); a bad message logs one line, answers 500 (or cuts a response already
started) and raises in the app's ``send``. The app returning closes an open
WebSocket with 1000. Reading pauses while more than ``websocket-max-size``
bytes of messages wait for ``receive()``. The worker's sweep calls ``tick``
(ping/pong keep-alive: ``websocket-ping-freq``, ``websocket-pong-tolerance``);
when a graceful stop's mercy ends, ``going_away`` closes it with 1001. Every
close we start waits ``CLOSE_WAIT`` for the client's close frame before the TCP
connection ends (``send_close``; ``tick`` bounds it); ``websocket.send`` after
our close is a no-op, as after the client left.
Harakiri does not apply to a WebSocket (the keep-alive bounds an idle one).

Must not know: protocol names, the master, other connections.
"""

from __future__ import annotations

import asyncio
import time
import traceback

from ..logs import log
from ..protocols.head import HeadError, serialize_head
from ..protocols.websocket import (
    GOING_AWAY,
    INTERNAL_ERROR,
    TEXT,
    HandshakeError,
    Session,
    accept_head,
    check_upgrade,
)
from .asgi_exchange import REASONS
from .response import request_line

__all__ = ["CLOSE_WAIT", "BadMessage", "WsRun", "is_websocket", "websocket_scope"]

# seconds the client gets to answer our close frame before the TCP connection
# ends (RFC 6455 7.1.1: the server closes it once both close frames went; an
# early close would meet the client's last frames with a reset)
CLOSE_WAIT = 0.5

EXTENSIONS = {"websocket.http.response": {}}


class BadMessage(RuntimeError):
    """What the app sent cannot be served (logged once by ``WsRun.refuse``)."""


def is_websocket(lst, env: dict) -> bool:
    return bool(lst.protocol.upgrades and "websocket" in env.get("HTTP_UPGRADE", "").lower())


def websocket_scope(scope: dict) -> dict:
    """The ``http`` scope of an upgrade request, made a ``websocket`` one."""
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    del scope["method"]
    # (the field may be repeated: HTTP's parser keeps repeats apart)
    offered = b",".join(v for k, v in scope["headers"] if k == b"sec-websocket-protocol")
    offered = offered.decode("latin-1")
    scope["subprotocols"] = [p.strip() for p in offered.split(",") if p.strip()]
    scope["extensions"] = {name: {} for name in EXTENSIONS}
    return scope


class WsRun:
    """One WebSocket's task: the app's receive/send over ``ex``'s connection."""

    def __init__(self, ex) -> None:
        self.ex = ex
        self.conn = ex.conn
        self.session: Session | None = None
        self.connected = False
        self.waiter: asyncio.Future | None = None
        self.read_paused = False
        self.denial_done = False  # the app's own HTTP response is complete
        self.bad: BadMessage | None = None
        self.close_sent = 0.0  # when our close frame went (the client's answer is awaited)

    def wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the app's side --------------------------------------------------------------

    async def receive(self) -> dict:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        conn = self.conn
        while True:
            session = self.session
            if session is not None:
                message = session.next_message()
                if message is not None:
                    if self.read_paused and session.queued <= session.max_size:
                        self.read_paused = False
                        conn.transport.resume_reading()
                    kind, data = message
                    key = "text" if kind == TEXT else "bytes"
                    return {"type": "websocket.receive", key: data}
                if session.closed:
                    return {"type": "websocket.disconnect", "code": session.close_code or 1005}
            if conn.closed or conn.peer_closed:
                return {"type": "websocket.disconnect", "code": 1006}
            self.waiter = conn.loop.create_future()
            await self.waiter

    async def send(self, message: dict) -> None:
        kind = message["type"]
        conn = self.conn
        ex = self.ex
        if kind == "websocket.accept":
            if self.session is not None or ex.head_sent:
                raise RuntimeError("ASGI: websocket.accept after the accept or a response")
            try:
                key = check_upgrade(ex.req.environ)
            except HandshakeError as exc:
                log(f"WebSocket handshake refused for {request_line(ex.req.environ)}: {exc}")
                self.deny(400 if exc.status != 426 else 426)
                return
            headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())
            ]
            head = accept_head(key, message.get("subprotocol"), headers)
            ex.status, ex.head_sent, ex.hsize = "101 Switching Protocols", True, len(head)
            worker = conn.worker
            self.session = Session(
                worker.ws_max_size, worker.ws_ping_freq, worker.ws_pong_tolerance, time.monotonic()
            )
            conn.ws = self
            conn.got_head = True
            conn.send(head)
            if conn.pending:  # frames that came with the head
                data, conn.pending = conn.pending, b""
                self.on_bytes(data)
            return
        if kind == "websocket.close":
            if self.session is None and ex.status is not None:
                raise self.refuse(f"{kind} after websocket.http.response.start")
            if self.session is None:
                self.deny(403)
            elif not conn.closed:
                self.send_close(message.get("code") or 1000, message.get("reason") or "")
            return
        if kind.startswith("websocket.http.response."):
            await self.http_response(kind, message)
            return
        if kind != "websocket.send":
            raise RuntimeError(f"ASGI: unexpected message {kind!r} in the websocket scope")
        session = self.session
        if session is None:
            raise RuntimeError("ASGI: websocket.send before websocket.accept")
        if conn.closed or session.closed or session.closing:
            return  # the peer left or we closed: the app sees websocket.disconnect next
        text = message.get("text")
        data = session.send(text) if text is not None else session.send(message.get("bytes") or b"")
        ex.rsize += len(data)
        conn.send(data)
        if conn.write_paused:
            await conn.drain()

    async def http_response(self, kind: str, message: dict) -> None:
        """The ``websocket.http.response`` extension: the app's own answer to
        the upgrade request, in place of the accept (the connection then ends)."""
        ex, conn = self.ex, self.conn
        if self.session is not None or self.denial_done:
            raise self.refuse(f"{kind} after the {'accept' if self.session else 'response'}")
        if kind == "websocket.http.response.start":
            if ex.status is not None:
                raise self.refuse(f"{kind} sent twice")
            status = message.get("status")
            if type(status) is not int or not 200 <= status <= 599:
                raise self.refuse(f"{kind} with status {repr(status)[:40]}: expected 200..599")
            reason = REASONS.get(status) or f"{status} Unknown"
            try:
                headers = _byte_pairs(message.get("headers", ()))
                serialize_head("HTTP/1.1", reason, headers)
            except (HeadError, TypeError, ValueError) as exc:
                raise self.refuse(f"{kind} with bad headers: {str(exc)[:200]}") from None
            ex.status, ex.headers = reason, headers
            return
        if kind != "websocket.http.response.body":
            raise self.refuse(f"unexpected message {kind!r} in the websocket scope")
        if ex.status is None:
            raise self.refuse(f"{kind} before websocket.http.response.start")
        body = message.get("body", b"")
        if type(body) is not bytes:
            raise self.refuse(f"{kind} with a body of type {type(body).__name__}: expected bytes")
        more = bool(message.get("more_body", False))
        if conn.closed:
            return  # the client left
        proto, req = conn.proto, ex.req
        if not ex.head_sent:
            req.keep_alive = False
            head = proto.response_head(req, ex.status, ex.headers, None if more else len(body))
            ex.head_sent, ex.hsize = True, len(head)
            conn.send(head)
        if body:
            conn.send(proto.response_body(req, body))
            ex.rsize += len(body)
        if not more:
            self.denial_done = True
            conn.send(proto.response_end(req))
            conn.transport.close()
        elif conn.write_paused:
            await conn.drain()

    def refuse(self, why: str) -> BadMessage:
        """A bad message from the app: one log line, a 500 (or a cut when its
        response has begun); the exception for the app's ``send`` to raise."""
        ex, conn = self.ex, self.conn
        worker = conn.worker
        worker.scoreboard.exception(worker.slot)
        log(f"ASGI app for {request_line(ex.req.environ)}: {why}")
        if self.session is None and not self.denial_done:
            if ex.head_sent:
                ex.status = "500 Internal Server Error"
                conn.abort()
            else:
                self.deny(500)
        self.bad = BadMessage(why)
        return self.bad

    def deny(self, code: int) -> None:
        """Refuse the upgrade with an HTTP status (no ``websocket.accept``)."""
        ex, conn = self.ex, self.conn
        if ex.head_sent or conn.closed:
            return
        reason = REASONS[code]
        body = reason[4:].encode() + b"\n"
        ex.req.keep_alive = False
        head = conn.proto.response_head(ex.req, reason, [("Content-Type", "text/plain")], len(body))
        ex.status, ex.head_sent, ex.hsize, ex.rsize = reason, True, len(head), len(body)
        conn.send(head + conn.proto.response_body(ex.req, body) + conn.proto.response_end(ex.req))
        conn.transport.close()

    async def run(self, app) -> None:
        ex = self.ex
        worker = self.conn.worker
        code = 1000
        try:
            await app(ex.scope, self.receive, self.send)
        except asyncio.CancelledError:
            pass  # the worker's stop, past its mercy
        except Exception as exc:
            code = INTERNAL_ERROR
            if exc is not self.bad:  # (a bad message was logged when it came)
                worker.scoreboard.exception(worker.slot)
                log(
                    f"error in ASGI app for {request_line(ex.req.environ)}:\n{traceback.format_exc()}"
                )
        finally:
            ex.gone = ex.finished = True
        conn = self.conn
        if self.session is None and (self.denial_done or self.bad is not None):
            pass  # the app's own response was complete, or the bad message's answer
        elif self.session is None:
            if ex.head_sent:  # the app's response began and never ended: cut
                conn.abort()
            else:
                self.deny(403 if ex.status is None else 500)
        elif not conn.closed:
            self.send_close(code)  # (1011: the app raised); then the client's answer
        worker.request_finished(ex)

    # -- the connection's side ---------------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        """What the client sent, once upgraded (b"": it closed)."""
        session, conn = self.session, self.conn
        out = session.receive(data)
        if out:
            conn.send(out)
        if session.closed:
            conn.transport.close()
        elif session.queued > session.max_size and not self.read_paused:
            self.read_paused = True
            conn.transport.pause_reading()
        self.wake()

    def send_close(self, code: int, reason: str = "") -> None:
        """Our close frame (once); the TCP connection ends when the client's
        answer comes (``on_bytes``), or ``CLOSE_WAIT`` later (``tick``)."""
        session, conn = self.session, self.conn
        if not self.close_sent:
            conn.send(session.close(code, reason))
            self.close_sent = time.monotonic()
        if session.closed:
            conn.transport.close()

    def tick(self, now: float) -> None:
        """Keep-alive ping, or the close when a pong is overdue; the end of a
        connection whose client did not answer our close frame in time."""
        session = self.session
        if self.close_sent:
            if now - self.close_sent > CLOSE_WAIT:
                self.conn.transport.close()
            return
        out = session.tick(now)
        if out:
            self.conn.send(out)
        if session.closed:
            log(f"WebSocket {request_line(self.ex.req.environ)}: no pong, closed")
            self.conn.transport.close()
            self.wake()

    def going_away(self) -> None:
        """The stop's mercy is ending: close with 1001 (going away), the client
        answering within ``CLOSE_WAIT``; called again at the mercy's end, it
        ends the connection of a client that did not answer."""
        if self.session is not None and not self.conn.closed:
            if self.close_sent:
                self.conn.transport.close()
            else:
                self.send_close(GOING_AWAY, "server restarting")
        self.wake()


def _byte_pairs(headers) -> list[tuple[str, str]]:
    """The app's headers as text pairs (``TypeError``: not pairs of bytes)."""
    pairs = []
    for pair in headers:
        name, value = pair
        if type(name) is not bytes or type(value) is not bytes:
            raise TypeError(f"header {repr(pair)[:80]} is not a pair of bytes")
        pairs.append((name.decode("latin-1"), value.decode("latin-1")))
    return pairs
