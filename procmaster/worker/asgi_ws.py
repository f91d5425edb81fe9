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
``websocket.close`` (before the accept: a 403). The app returning closes an
open WebSocket with 1000. Reading pauses while more than ``websocket-max-size``
bytes of messages wait for ``receive()``. The worker's sweep calls ``tick``
(ping/pong keep-alive: ``websocket-ping-freq``, ``websocket-pong-tolerance``);
when a graceful stop's mercy ends, ``going_away`` closes it with 1001.
Harakiri does not apply to a WebSocket (the keep-alive bounds an idle one).

Must not know: protocol names, the master, other connections.
"""

from __future__ import annotations

import asyncio
import time
import traceback

from ..logs import log
from ..protocols.websocket import (
    GOING_AWAY,
    TEXT,
    HandshakeError,
    Session,
    accept_head,
    check_upgrade,
)
from .response import request_line

__all__ = ["WsRun", "is_websocket", "websocket_scope"]


def is_websocket(lst, env: dict) -> bool:
    return bool(lst.protocol.upgrades and "websocket" in env.get("HTTP_UPGRADE", "").lower())


def websocket_scope(scope: dict) -> dict:
    """The ``http`` scope of an upgrade request, made a ``websocket`` one."""
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    del scope["method"]
    offered = dict(scope["headers"]).get(b"sec-websocket-protocol", b"").decode("latin-1")
    scope["subprotocols"] = [p.strip() for p in offered.split(",") if p.strip()]
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
            if self.session is not None:
                raise RuntimeError("ASGI: websocket.accept sent twice")
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
            if self.session is None:
                self.deny(403)
            elif not conn.closed:
                conn.send(
                    self.session.close(message.get("code") or 1000, message.get("reason") or "")
                )
            return
        if kind != "websocket.send":
            raise RuntimeError(f"ASGI: unexpected message {kind!r} in the websocket scope")
        session = self.session
        if session is None:
            raise RuntimeError("ASGI: websocket.send before websocket.accept")
        if conn.closed or session.closed:
            return  # the peer left: the app sees websocket.disconnect on its next receive
        text = message.get("text")
        data = session.send(text) if text is not None else session.send(message.get("bytes") or b"")
        ex.rsize += len(data)
        conn.send(data)
        if conn.write_paused:
            await conn.drain()

    def deny(self, code: int) -> None:
        """Refuse the upgrade with an HTTP status (no ``websocket.accept``)."""
        ex, conn = self.ex, self.conn
        if ex.head_sent or conn.closed:
            return
        reason = {403: "403 Forbidden", 426: "426 Upgrade Required"}.get(code, "400 Bad Request")
        body = reason[4:].encode() + b"\n"
        ex.req.keep_alive = False
        head = conn.proto.response_head(ex.req, reason, [("Content-Type", "text/plain")], len(body))
        ex.status, ex.head_sent, ex.hsize, ex.rsize = reason, True, len(head), len(body)
        conn.send(head + conn.proto.response_body(ex.req, body) + conn.proto.response_end(ex.req))
        conn.transport.close()

    async def run(self, app) -> None:
        ex = self.ex
        worker = self.conn.worker
        try:
            await app(ex.scope, self.receive, self.send)
        except asyncio.CancelledError:
            pass  # the worker's stop, past its mercy
        except Exception:
            worker.scoreboard.exception(worker.slot)
            log(f"error in ASGI app for {request_line(ex.req.environ)}:\n{traceback.format_exc()}")
        finally:
            ex.gone = ex.finished = True
        conn = self.conn
        if self.session is None:
            self.deny(403 if ex.status is None else 500)
        elif not conn.closed:
            conn.send(self.session.close(1000))
            conn.transport.close()
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

    def tick(self, now: float) -> None:
        """Keep-alive ping, or the close when a pong is overdue."""
        session = self.session
        out = session.tick(now)
        if out:
            self.conn.send(out)
        if session.closed:
            log(f"WebSocket {request_line(self.ex.req.environ)}: no pong, closed")
            self.conn.transport.close()
            self.wake()

    def going_away(self) -> None:
        """The stop's mercy is over: close with 1001 (going away)."""
        if self.session is not None and not self.conn.closed:
            self.conn.send(self.session.close(GOING_AWAY, "server restarting"))
            self.conn.transport.close()
        self.wake()
