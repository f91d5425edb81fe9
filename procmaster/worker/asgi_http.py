"""The ASGI runner's connection: an asyncio protocol that drives a sans-IO wire
protocol and runs the app's ``http`` scope, one request at a time.

Theory of operation
-------------------
``AsgiConnection`` is the asyncio ``Protocol`` of an accepted socket (first on
``asgi_accept``'s early transport when read at accept) and its wire protocol's
``Sink``; bytes pass its transport layers (``worker/transport.py``: PROXY, TLS)
at one read point (``data_received``) and one write point (``send``). Reads go
to the protocol a ``FEED_SLICE`` at a time while no body arrives; a request's
head makes an ``HttpExchange`` and, when nothing runs on the connection, starts
the app (a task; or, read at accept or on Python 3.12+, its first step once the
read is parsed: ``first``, ``asgi_exchange.step``), so the body streams to
``receive()``. Pipelined requests wait in
``queue``; then the rest stays unparsed in ``pending`` and reading pauses.

Memory per connection is bounded: reading pauses while over ``BODY_HIGH`` body
bytes wait for ``receive()`` (resumed below ``BODY_LOW``) or a complete request
waits behind another; a ``send`` waits while over ``HIGH_WATER`` bytes are unsent.
Slow clients hold memory, never the loop (deadlines: the worker's ``sweep``);
``limit-post`` answers 413, a bad head 400/431 (``error_reply``), as in WSGI.
``receive()`` gives ``http.request``, then ``http.disconnect`` once the response
is complete or the client left; ``send()`` after the client left is a no-op (as
uvicorn). An exception before the head is a 500, after it a cut.

Must not know: protocol names, the master, other connections.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from ..logs import log
from ..protocols import ProtocolError, Request, released
from .asgi_exchange import EAGER, HttpExchange, step
from .listener import NO_REQUEST_YET
from .response import HIGH_WATER

__all__ = ["AsgiConnection"]

FEED_SLICE = 4096
BODY_HIGH = 64 * 1024  # pause reading while this many body bytes wait for receive()
BODY_LOW = 16 * 1024
LINGER_SECONDS = 1.0


class AsgiConnection(asyncio.Protocol):
    """One client connection of the ASGI worker; its protocol's sink."""

    def __init__(self, worker, listener) -> None:
        self.worker = worker
        self.listener = listener
        self.loop = worker.loop
        self.transport: asyncio.Transport | None = None
        self.proto = None
        self.remote = ("", "")
        self.client: tuple[str, int] | None = None  # the peer, for the scope
        self.queue: deque[HttpExchange] = deque()
        self.receiving: HttpExchange | None = None
        self.refused: ProtocolError | None = None
        self.pending = b""
        self.read_paused = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future | None = None
        self.write_since = 0.0
        self.closed = False
        self.close_after = False
        self.peer_closed = False
        self.layer = self.ws = None  # the first transport layer; the WebSocket (asgi_ws)
        # an error reply waiting for the answers of the requests before the bad bytes
        self.deferred: bytes | None = None
        self.in_request = False
        self.got_head = False
        # set while a read is parsed: a request started meanwhile waits in
        # ``first`` (exchange, coroutine) for its first step (AsgiWorker.start);
        # ``stepping``: on this connection, always (3.12), or while read at accept
        self.feeding = False
        self.first: tuple | None = None
        self.stepping = EAGER
        now = time.monotonic()
        self.deadline = now + worker.socket_timeout
        self.idle_since = NO_REQUEST_YET  # (until a request is answered: listener.py)

    # -- asyncio's callbacks ------------------------------------------------------------

    def connection_made(self, transport) -> None:
        if self.transport is not None:  # read at accept (asgi_accept): the loop takes over
            self.stepping = EAGER
            return self.transport.hand_over(self, transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER)
        if not self.listener.unix:
            peer = transport.get_extra_info("peername")
            if peer:
                self.remote = (str(peer[0]), str(peer[1]))
                self.client = (self.remote[0], int(peer[1]))
        self.proto = self.listener.factory(self)
        self.proto.keep_headers()  # the scope's headers as HTTP's parser read them
        self.worker.conns.add(self)
        # transport layers (PROXY header, TLS: worker/transport.py); None for most sockets
        layers = self.listener.transport
        self.layer = None if layers is None else layers.start(self)

    def data_received(self, data: bytes) -> None:
        if self.proto is None or self.deferred is not None:
            return
        if self.layer is not None:  # the read point of the transport layers
            data = self.layer.received(self, data)
            if not data or self.closed:
                return
        if self.ws is not None:  # upgraded: the bytes are the WebSocket session's
            return self.ws.on_bytes(data)
        if not self.in_request:
            self.in_request = True
            self.got_head = False
            self.deadline = time.monotonic() + self.worker.socket_timeout
        if not self.stepping:
            return self.take(data)
        self.feeding = True
        try:
            self.take(data)
            while self.first is not None:  # (a step may start the next request)
                (ex, coro), self.first = self.first, None
                step(self.loop, ex, coro)
        finally:
            self.feeding = False
            if self.first is not None:  # parsing raised after a head: as a task
                (ex, coro), self.first = self.first, None
                ex.task = self.loop.create_task(coro)

    def eof_received(self) -> bool | None:
        if self.proto is not None:
            try:
                self.proto.eof()
            except ProtocolError as exc:
                self.log_protocol_error(exc)
                self.abort()
                return None
        if self.queue:
            self.peer_closed = True
            if self.ws is not None:
                self.ws.on_bytes(b"")
            return True  # half-close: the response in progress still goes out
        return None

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.proto = released(self.proto)
        self.pending = b""
        for ex in self.queue:
            ex.gone = True
            ex.wake()
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_exception(ConnectionResetError())
        self.worker.forget(self)

    def send(self, data: bytes) -> None:
        """The one write point: through the transport layers (TLS), then the socket."""
        if self.layer is not None:
            data = self.layer.wrap(data)
        if data and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        """A transport layer failed (after its alert, if any, went out)."""
        if not self.closed and self.transport is not None:
            self.transport.close()

    def pause_writing(self) -> None:
        self.write_paused = True
        self.write_since = time.monotonic()

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter, self.drain_waiter = self.drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        if self.closed:
            return
        if self.drain_waiter is None:
            self.drain_waiter = self.loop.create_future()
        try:
            await self.drain_waiter
        except ConnectionResetError:
            pass  # the next send() is a no-op

    # -- reading ---------------------------------------------------------------------

    def take(self, data: bytes) -> None:
        """Feed what was read to the protocol, a slice at a time while no body
        arrives; once a complete request waits, keep the rest in ``pending``."""
        while data:
            rest = b""
            if len(data) > FEED_SLICE and not self.got_head:
                data, rest = data[:FEED_SLICE], data[FEED_SLICE:]
            try:
                reply = self.proto.feed(data)
            except ProtocolError as exc:
                refused, self.refused = self.refused, None
                self.fail(refused or exc)
                return
            if self.refused is not None:
                refused, self.refused = self.refused, None
                self.fail(refused)
                return
            if reply:
                self.send(reply)
                if self.proto.closing:
                    self.transport.close()
                    return
            if self.closed or self.proto is None:
                return
            if rest and self.queue and self.queue[-1].body_done:
                self.pending = rest
                break
            data = rest
        if (  # (most reads: nothing waits, nothing is paused, and flow has nothing to do)
            self.pending
            or self.read_paused
            or len(self.queue) > 1
            or self.receiving is not None
            or self.deferred is not None
        ):
            self.flow()

    def flow(self) -> None:
        """Pause reading while a complete request waits behind the running one,
        bytes wait unparsed, or the body waiting for receive() is large."""
        if self.closed:
            return
        queue = self.queue
        stop = (
            bool(self.pending)
            or self.deferred is not None
            or (len(queue) > 1 and queue[-1].body_done)
        )
        if not stop and self.receiving is not None:
            stop = self.receiving.buffered > (BODY_HIGH if not self.read_paused else BODY_LOW)
        if stop and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
        elif not stop and self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    def body_taken(self) -> None:
        if self.read_paused:
            self.deadline = time.monotonic() + self.worker.socket_timeout
            self.flow()

    # -- the sink ----------------------------------------------------------------------

    def on_head(self, req: Request) -> None:
        if self.refused is not None:
            return
        worker = self.worker
        self.got_head = True
        if req.content_length != 0:  # its body's deadline (a request without one is read)
            self.deadline = time.monotonic() + worker.socket_timeout
        limit = worker.limit_post
        if limit and req.content_length is not None and req.content_length > limit:
            self.refused = ProtocolError(
                f"request body of {req.content_length} bytes over limit-post", 413
            )
            return
        ex = HttpExchange(self, req)
        self.queue.append(ex)
        self.receiving = ex
        if len(self.queue) == 1:
            worker.start(ex)

    def on_body(self, req: Request, data: bytes) -> None:
        if self.refused is not None:
            return
        ex = self.receiving
        if ex is None or ex.req is not req:
            return
        if ex.chunks is None:
            ex.chunks = deque()
        ex.chunks.append(data)
        ex.buffered += len(data)
        self.deadline = time.monotonic() + self.worker.socket_timeout
        limit = self.worker.limit_post
        ex.received += len(data)
        if limit and ex.received > limit:
            self.refused = ProtocolError(f"request body over limit-post ({limit} bytes)", 413)
            return
        ex.wake()

    def on_end(self, req: Request) -> None:
        self.got_head = False
        ex = self.receiving
        self.receiving = None
        if self.refused is not None or ex is None or ex.req is not req:
            return
        ex.body_done = True
        if ex.waiter is not None:
            ex.wake()

    # -- responses -----------------------------------------------------------------

    def response_done(self, ex: HttpExchange) -> None:
        """The response of the running exchange is complete: close, or go on
        with the next request."""
        ex.gone = True
        if ex.waiter is not None:
            ex.wake()
        if self.queue and self.queue[0] is ex:
            self.queue.popleft()
        if self.receiving is ex:
            self.receiving = None
        now = time.monotonic()
        self.idle_since = now
        self.deadline = now + self.worker.keepalive_timeout
        if self.deferred is not None and not self.queue:
            reply, self.deferred = self.deferred, None
            self.answer_and_linger(reply)
            return
        if not (ex.req.keep_alive and ex.body_done) or self.worker.stopping or self.peer_closed:
            self.close_after = True
            self.queue.clear()
            self.pending = b""
            if not self.closed:
                self.transport.close()
            return
        self.in_request = bool(self.queue or self.pending)
        if self.queue:
            self.worker.start(self.queue[0])
        elif self.pending:
            data, self.pending = self.pending, b""
            self.take(data)
            return
        # the queue only shrank: that can end a pause, never start one (every
        # read ends in ``flow``, and nothing was read since)
        if self.read_paused:
            self.flow()

    def fail(self, exc: ProtocolError) -> None:
        """Bad request bytes, or a request the worker refuses: answer where the
        protocol can, then close (lingering, so the client reads the answer).
        Where the protocol allows it, the requests before the bad bytes are
        answered first (HTTP pipelining); a refusal of the request whose body is
        arriving is answered at once."""
        self.log_protocol_error(exc)
        protocol = self.listener.protocol
        reply = protocol.error_reply(exc)
        self.pending = b""
        if reply is not None and self.queue and self.receiving is None:
            if protocol.pipelined_errors:
                self.deferred = reply  # sent once the requests before it are answered
                self.flow()  # (and nothing more is read)
                return
        self.proto = released(self.proto)
        if reply is None or self.queue and self.queue[0].head_sent:
            self.abort()
            return
        for ex in self.queue:
            ex.gone = True
            ex.wake()
        self.queue.clear()
        self.receiving = None
        self.answer_and_linger(reply)

    def answer_and_linger(self, reply: bytes) -> None:
        self.send(reply)
        self.closed = True  # for the app's tasks: nothing more goes out
        if self.layer is None and self.transport.can_write_eof():
            self.transport.write_eof()  # then read and drop for a moment
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def log_protocol_error(self, exc: ProtocolError) -> None:
        lst = self.listener
        addr = self.remote[0] or lst.server_name
        status = f" -> {exc.status}" if exc.status and lst.protocol.error_reply(exc) else ""
        log(f"{lst.name} request from {addr or 'unix socket'}: {exc.message}{status}")

    def abort(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.abort()
