"""One client connection: reading, the protocol's sink, the write queue, the
lingering close.

Theory of operation
-------------------
A connection reads what the socket has (``on_readable``) and feeds it to its
protocol object (sans-IO), whose events come back here (``on_head``/``on_body``/
``on_end``): bodies are stored as they arrive (``wsgi.Body``), complete requests
wait in ``ready`` and are run in order (``process``), one at a time: while a
response is in progress nothing else is run, so pipelined requests are answered
in order.

Memory per connection stays bounded whatever the client sends. The next
request is not started while more than ``HIGH_WATER`` bytes of the responses
before it are unsent (``on_writable`` resumes it). Nothing more is read while
complete requests wait (``ready``): a big read is fed to the protocol a slice
(``FEED_SLICE``) at a time, and once a slice completed a request the rest of
what was read waits, unparsed, in ``pending`` until those requests are
answered. A body is fed whole (it is stored as it arrives, not parsed ahead).
What the connection waits for is asked of epoll in one place (``rearm``), only
when it changes.

The worker's policy on a request (``limit-post``) is checked in the protocol's
sink (``sink.RequestSink``, the part of a connection that takes a request's
head, body and end), never raised into the parser: a refused request is recorded in
``refused`` and the connection ignores the protocol's further events; once
``feed()`` returned, the refusal is handled like a protocol error (``fail``):
answered where the protocol class can (``error_reply``), else the connection
closes.

Writes go straight to the socket when nothing waits before them; the rest is
queued (``out``) and written on ``EPOLLOUT``, after which the response in
progress is resumed (``Exchange.resume``). A request body being received when
the connection closes (a reset mid-upload) is closed at once, its temporary
file with it, and the connection drops its protocol (which refers back to it),
so nothing waits for a garbage collection. A response waiting for the socket
with nothing queued (a file sent with ``sendfile``) sets ``awaiting_write``.
After an error reply the connection lingers: it sends FIN and reads and drops
what the client still sends for a moment, so the client sees the answer
instead of a reset.

Must not know: protocol names (it asks the listener's protocol class), the app
and WSGI beyond storing a body, other connections.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections import deque

from ..logs import log
from ..protocols import ProtocolError, Request
from .glue import run
from .listener import NO_REQUEST_YET
from .response import HIGH_WATER
from .roles import Host, InFlight, Listener
from .sink import RequestSink

__all__ = ["Connection"]

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
READ_SIZE = 65536
LINGER_SECONDS = 2.0  # how long an error reply's connection drains what the client still sends
# a read larger than this is parsed a slice at a time while requests complete in it
# (a 4 KiB slice holds at most ~220 of the smallest requests)
FEED_SLICE = 4096


class Connection(RequestSink):
    """One client connection; the protocol's sink."""

    __slots__ = (
        "fd",
        "worker",
        "proto",
        "listener",
        "remote",
        "ready",
        "out",
        "out_size",
        "deadline",
        "in_request",
        "current",
        "reading",
        "closed",
        "close_after",
        "peer_closed",
        "idle_since",
        "got_head",
        "deferred_error",
        "refused",
        "awaiting_write",
        "pending",
        "input_done",
        "mask",
        "receiving",
        "layer",
    )

    def __init__(self, fd: int, worker: Host, listener: Listener, remote: tuple[str, str]) -> None:
        self.fd = fd
        self.worker = worker
        self.listener = listener
        self.remote = remote
        self.proto = listener.factory(self)
        self.ready: deque[Request] = deque()
        self.out: list[bytes | memoryview] = []
        self.out_size = 0
        now = worker.now
        self.deadline = now + worker.socket_timeout
        self.in_request = False
        self.current: InFlight | None = None
        self.reading = True
        self.closed = False
        self.close_after = False
        self.peer_closed = False
        self.idle_since = NO_REQUEST_YET  # (until a request is answered: listener.py)
        self.got_head = False
        self.deferred_error: ProtocolError | None = None
        # the worker's refusal of the request being read (limit-post)
        self.refused: ProtocolError | None = None
        # the response waits for the socket with nothing queued (sendfile)
        self.awaiting_write = False
        # bytes read but not yet parsed: they wait until the requests before them are answered
        self.pending = b""
        # nothing more to read: the client closed, or its bytes went bad
        self.input_done = False
        # what epoll reports for us; -1: not in the epoll set yet (the loop reads a
        # new connection at once, and one answered and closed then never enters it)
        self.mask = -1
        # the request whose body is arriving (closed at once if the connection closes)
        self.receiving: Request | None = None
        # transport layers (PROXY header, TLS: worker/transport.py); None for most sockets
        transport = listener.transport
        self.layer = None if transport is None else transport.start(self)

    # -- Sink: events from the protocol ------------------------------------------

    # -- reading ------------------------------------------------------------------

    def on_readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        worker = self.worker
        if not data:
            self.peer_closed = True
            try:
                self.proto.eof()
            except ProtocolError as exc:
                self.log_protocol_error(exc)  # cut inside a request or packet
            if not self.ready and self.current is None and not self.out:
                self.close()
                return
            self.pause_reading()
        else:
            if self.layer is not None:  # the read point of the transport layers
                data = self.layer.received(self, data)
                if not data:
                    return
            if not self.in_request:
                self.in_request = True
                self.got_head = False
                # the header deadline: the whole head within socket-timeout
                self.deadline = worker.now + worker.socket_timeout
            if not self.take(data):
                return
            if not self.got_head and worker.now > self.deadline:
                # a head trickled in for longer than the header deadline
                worker.timeouts["header"] += 1
                self.close()
                return
        if self.ready:
            self.process()
        elif self.out and self.current is None:
            self.flush()

    def take(self, data: bytes) -> bool:
        """Feed what was read to the protocol; False when that failed the
        connection. A read larger than ``FEED_SLICE`` goes a slice at a time
        while no body is arriving; once requests are complete, the rest waits
        in ``pending`` (see ``process``)."""
        while True:
            rest = b""
            if len(data) > FEED_SLICE and not self.got_head:
                data, rest = data[:FEED_SLICE], data[FEED_SLICE:]
            try:
                reply = self.proto.feed(data)
            except ProtocolError as exc:
                self.fail(self.take_refusal() or exc)
                return False
            if self.refused is not None:
                self.fail(self.take_refusal())
                return False
            if reply:
                self.send(reply)
                if self.proto.closing:  # the reply was the connection's last
                    self.close_after = True
                    if not self.out:
                        self.shutdown_and_close()
                    return False
            if not rest or self.closed:
                return not self.closed
            if self.ready:
                self.pending = rest
                return True
            data = rest

    def take_refusal(self) -> ProtocolError | None:
        """The worker's refusal recorded while the protocol fed us, once."""
        refused, self.refused = self.refused, None
        return refused

    def pause_reading(self) -> None:
        """Read nothing more: the client closed, or its bytes went bad."""
        self.input_done = True
        self.pending = b""
        self.rearm()

    def rearm(self) -> None:
        """Ask epoll for what this connection waits for now (only when that
        changes): its socket to take bytes while some are queued or a file
        waits; more bytes from the client while none wait unanswered."""
        if self.closed:
            return
        reading = self.reading = not (self.input_done or self.ready or self.pending)
        mask = EPOLLIN if reading else 0
        if self.out or self.awaiting_write:
            mask |= EPOLLOUT
        if mask != self.mask:
            if self.mask < 0:
                self.worker.register(self.fd, mask)
            else:
                self.worker.modify(self.fd, mask)
            self.mask = mask

    def fail(self, exc: ProtocolError) -> None:
        """Bad request bytes, or a request the worker refuses: answer where the
        protocol can (HTTP: an error status), then close. Where the protocol
        allows it, complete requests before the bad bytes are answered first
        (pipelining), then the error."""
        protocol = self.listener.protocol
        reply = protocol.error_reply(exc)
        if (
            reply is not None
            and protocol.pipelined_errors
            and (self.ready or self.current is not None)
        ):
            self.deferred_error = exc
            self.pause_reading()
            if self.current is None:
                self.process()
            return
        self.log_protocol_error(exc)
        if reply is not None and self.current is None:
            self.ready.clear()
            self.send(reply)
            self.linger()
        else:
            self.close()

    def log_protocol_error(self, exc: ProtocolError) -> None:
        lst = self.listener
        addr = self.remote[0] or lst.server_name
        answered = exc.status and lst.protocol.error_reply(exc) is not None
        status = f" -> {exc.status}" if answered else ""
        log(f"{lst.name} request from {addr or 'unix socket'}: {exc.message}{status}")

    def linger(self) -> None:
        """Close after the error reply is out, reading and dropping what the client
        still sends for a moment, so it sees our answer instead of a reset."""
        self.close_after = True
        self.proto.release()
        self.proto = DISCARD
        if not self.out:
            self.shutdown_and_close()

    # -- the app -----------------------------------------------------------------

    def process(self) -> None:
        """Run the complete requests in order, while the socket keeps up: the
        next one waits while more than ``HIGH_WATER`` bytes are unsent; bytes
        held back in ``pending`` are parsed once the requests before them are
        answered."""
        worker = self.worker
        ready = self.ready
        while True:
            while self.current is None and not self.closed:
                if not ready:
                    if not self.pending:
                        break
                    data, self.pending = self.pending, b""
                    if not self.take(data):
                        return
                    continue
                if self.out_size > HIGH_WATER and not self.flush():
                    break  # on_writable() goes on once the socket took it
                req = ready.popleft()
                if worker.stopping:
                    req.keep_alive = False
                if req.aborted:  # FastCGI ABORT_REQUEST before the app ran: just end it
                    self.send(self.proto.response_end(req))
                    self.request_done(req)
                    continue
                run(worker, self, req)
                if self.current is None:
                    self.request_done(req)
            # (a response in progress waits for EPOLLOUT to go on: only on_writable
            # may drain what it queued, or nothing would resume it)
            if (
                self.current is None
                and self.out
                and self.flush()  # the client read meanwhile: all of it is out
                and (ready or self.pending)
                and not self.closed
            ):
                continue  # so the next request goes now: nothing else would start it
            break
        self.rearm()

    def request_done(self, req: Request) -> None:
        if req.body is not None:
            req.body.close()
        worker = self.worker
        if not req.keep_alive or worker.stopping:
            self.close_after = True
            self.ready.clear()
            self.pending = b""
            if not self.out:  # all of it is written (the common case): close now
                self.in_request = False
                if self.proto is DISCARD:
                    self.shutdown_and_close()  # after an error reply: linger
                else:
                    self.close()
                return
        self.in_request = bool(self.ready or self.pending)
        if self.deferred_error is not None and not self.ready and not self.close_after:
            exc, self.deferred_error = self.deferred_error, None
            self.fail(exc)
            return
        # the clock now, not at the loop's wake-up: the app may have run for a while
        now = time.monotonic()
        self.idle_since = now
        self.deadline = now + worker.keepalive_timeout
        if self.close_after and not self.out:
            self.shutdown_and_close()

    def send(self, data: bytes) -> None:
        """Queue bytes; write at once when nothing is waiting before them."""
        if self.layer is not None:  # the write point of the transport layers (TLS)
            data = self.layer.wrap(data)
        if not data:
            return  # (an empty write would never drain from the queue)
        if not self.out:
            try:
                n = os.write(self.fd, data)
            except BlockingIOError:
                n = 0
            except OSError:
                self.broken()
                return
            if n == len(data):
                return
            data = memoryview(data)[n:]
            self.deadline = self.worker.now + self.worker.socket_timeout
            self.out.append(data)
            self.out_size += len(data)
            self.rearm()
            return
        self.out.append(data)
        self.out_size += len(data)

    def flush(self) -> bool:
        """Write what is queued; True when all is out."""
        out = self.out
        while out:
            try:
                if len(out) == 1:
                    n = os.write(self.fd, out[0])
                else:
                    n = os.writev(self.fd, out[:512])
            except BlockingIOError:
                break
            except OSError:
                self.broken()
                return False
            self.out_size -= n
            self.deadline = self.worker.now + self.worker.socket_timeout
            while n:
                first = out[0]
                if n >= len(first):
                    n -= len(first)
                    out.pop(0)
                else:
                    out[0] = memoryview(first)[n:]
                    n = 0
        if out:
            self.rearm()
            return False
        return True

    def on_writable(self) -> None:
        if self.flush():
            exchange = self.current
            if exchange is not None:
                if exchange.resume():
                    return  # still waiting for the socket
                if self.out or self.closed:
                    return
            if self.close_after:
                self.shutdown_and_close()
                return
            if self.ready or self.pending:
                self.process()
            else:
                self.rearm()

    def broken(self) -> None:
        """The client went away while we were writing to it."""
        exchange = self.current
        if exchange is not None:
            self.current = None
            exchange.abort("client disconnected")
        self.close()

    def shutdown_and_close(self) -> None:
        """Close after a complete response. After an error reply whose request was
        not read to its end (``_Discard``): send FIN, then go on reading and
        dropping for a moment (a lingering close), so the client reads our answer
        instead of a reset. Otherwise the client sent nothing more: just close."""
        if self.closed:
            return
        if isinstance(self.proto, _Discard) and not self.peer_closed:
            try:
                sock = socket.socket(fileno=os.dup(self.fd))
                try:
                    sock.shutdown(socket.SHUT_WR)
                finally:
                    sock.close()
            except OSError:
                self.close()
                return
            self.close_after = False
            self.input_done = False
            self.ready.clear()
            self.pending = b""
            self.in_request = True
            self.deadline = self.worker.now + LINGER_SECONDS
            self.rearm()
            return
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.current is not None or self.ready or self.receiving is not None:
            self.drop_requests()
        self.pending = b""
        # the protocol refers back to us (its sink): drop it, so no cycle outlives us
        self.proto.release()
        self.proto = DISCARD
        if self.out:
            self.out.clear()
            self.out_size = 0
        self.awaiting_write = False
        self.worker.forget(self)
        try:
            os.close(self.fd)
        except OSError:
            pass

    def drop_requests(self) -> None:
        """Closing: abort the response in progress, close the bodies of the
        requests waiting and of the one arriving (a spool file goes now, not at
        a garbage collection)."""
        exchange = self.current
        if exchange is not None:
            self.current = None
            exchange.abort("connection closed")
        for req in self.ready:
            if req.body is not None:
                req.body.close()
        self.ready.clear()
        receiving = self.receiving
        if receiving is not None:  # cut mid-body
            self.receiving = None
            if receiving.body is not None:
                receiving.body.close()


class _Discard:
    """Protocol stand-in after an error reply: swallow whatever still comes."""

    name = "discard"

    def feed(self, data: bytes) -> bytes:
        return b""

    def release(self) -> None:
        pass

    def eof(self) -> None:
        pass


DISCARD = _Discard()
