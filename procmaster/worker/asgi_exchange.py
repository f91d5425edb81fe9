"""One request of the ASGI runner's ``http`` scope: the app's ``receive`` and
``send``, and its task's outcome.

Theory of operation
-------------------
An ``HttpExchange`` is made by its connection (``asgi_http.AsgiConnection``) when
a request's head arrives; the worker gives it a scope and runs ``run(app)``.
``receive()`` hands out the body the connection queued (``chunks``), then
``http.disconnect`` once the response is complete or the client left (``gone``);
``send()`` turns ``http.response.start``/``body`` into the protocol's bytes and
writes them through the connection's one write point, waiting while the
connection's writing is paused (``drain``). An exception before the head is a
500, after it a cut (``failed``); either way the worker's accounting runs once
(``request_finished``).

A request read at accept (Python 3.11+), or any request on 3.12+, is not left
for the loop to start: ``step`` runs its coroutine up to its first wait once the
read is parsed (a hello-world app finishes there), inside the request's own task,
which goes on from the first wait. Read at accept, that lets the answer go out
before the loop makes a transport; on 3.12 (an eager task) it also saves a trip
through the loop. The app sees its task and a context of its own, as always.

Must not know: sockets, the loop's transports, protocol names, other requests.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import traceback
from asyncio.tasks import _enter_task as enter_task
from asyncio.tasks import _leave_task as leave_task
from collections import deque
from collections.abc import Coroutine
from http import HTTPStatus

from ..logs import log
from ..protocols import Request
from .response import request_line

__all__ = ["DISCONNECT", "EAGER", "REASONS", "STEP_AT_ACCEPT", "HttpExchange", "step"]

REASONS = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
DISCONNECT = {"type": "http.disconnect"}
# a task made in a given context (the first step's) needs Python 3.11: a request
# read at accept takes its first step there. A task that runs its first step at
# once (eager, 3.12) saves a trip through the loop on any connection; by hand
# (3.11) it saves none: a kept-alive connection's requests start as plain tasks.
STEP_AT_ACCEPT = sys.version_info >= (3, 11)
EAGER = sys.version_info >= (3, 12)


class HttpExchange:
    """One request on an ASGI connection: scope, body queue, response state."""

    __slots__ = (
        "conn",
        "req",
        "scope",
        "chunks",
        "buffered",
        "body_done",
        "final_sent",
        "waiter",
        "status",
        "headers",
        "head_sent",
        "finished",
        "gone",
        "task",
        "start",
        "rsize",
        "hsize",
        "cancelled",
        "received",
    )

    def __init__(self, conn, req: Request) -> None:  # (conn: its asgi_http.AsgiConnection)
        self.conn = conn
        self.req = req
        self.scope: dict | None = None
        self.chunks: deque[bytes] | None = None  # (made with the first body bytes)
        self.buffered = 0
        self.body_done = False
        self.final_sent = False
        self.waiter: asyncio.Future | None = None
        self.status: str | None = None
        self.headers: list | None = None
        self.head_sent = False
        self.finished = False
        self.gone = False  # the response is complete or the client left: receive() disconnects
        self.task: asyncio.Task | None = None
        self.start = 0.0
        self.rsize = 0
        self.hsize = 0
        self.cancelled = False  # harakiri
        self.received = 0  # body bytes read (limit-post)

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the app's receive() and send() ---------------------------------------------

    async def receive(self) -> dict:
        while True:
            if self.chunks:
                chunks = self.chunks
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self.buffered = 0
                self.conn.body_taken()
                more = not self.body_done
                self.final_sent = not more
                return {"type": "http.request", "body": data, "more_body": more}
            if self.gone:
                return DISCONNECT
            if self.body_done and not self.final_sent:
                self.final_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            self.waiter = self.conn.loop.create_future()
            await self.waiter

    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.status is not None:
                raise RuntimeError("ASGI: http.response.start sent twice")
            code = message["status"]
            self.status = REASONS.get(code) or f"{int(code)} Unknown"
            self.headers = decoded(message.get("headers", ()))
            return
        if kind != "http.response.body":
            if kind == "http.response.trailers" or kind.startswith("http.response."):
                return  # an extension this server did not advertise
            raise RuntimeError(f"ASGI: unexpected message {kind!r} in the http scope")
        if self.status is None:
            raise RuntimeError("ASGI: http.response.body before http.response.start")
        if self.finished:
            raise RuntimeError("ASGI: http.response.body after the response was complete")
        conn = self.conn
        if conn.closed:
            return  # the client left: the app may finish its work, nothing is sent
        body = message.get("body", b"")
        more = message.get("more_body", False)
        proto = conn.proto
        req = self.req
        if conn.worker.stopping:
            req.keep_alive = False
        if not self.head_sent:
            head = proto.response_head(req, self.status, self.headers, None if more else len(body))
            self.head_sent = True
            self.hsize = len(head)
            data = head + proto.response_body(req, body) if body else head
        else:
            data = proto.response_body(req, body) if body else b""
        self.rsize += len(body)
        if not more:
            self.finished = True
            data += proto.response_end(req)
        if data:
            conn.send(data)
        if not more:
            conn.response_done(self)
        elif conn.write_paused:
            await conn.drain()

    # -- the task ------------------------------------------------------------------------

    async def run(self, app) -> None:
        conn = self.conn
        worker = conn.worker
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not self.cancelled:
                raise
            self.failed(None)
            return
        except Exception:
            self.failed(traceback.format_exc().rstrip())
            return
        finally:
            self.gone = True
        if not self.finished and not conn.closed:
            self.failed("the app returned without completing its response")
            return
        worker.request_finished(self)  # (the client left: counted as 499, not an error)

    def failed(self, why: str | None) -> None:
        """The app raised, returned early or was cancelled: a 500 if nothing was
        sent yet, else the connection is cut."""
        conn = self.conn
        worker = conn.worker
        if why is not None:
            worker.scoreboard.exception(worker.slot)
            log(f"error in ASGI app for {request_line(self.req.environ)}:\n{why}")
        if not conn.closed and not self.head_sent:
            self.req.keep_alive = False
            self.status = "500 Internal Server Error"
            body = b"Internal Server Error\n"
            proto = conn.proto
            try:
                head = proto.response_head(
                    self.req, self.status, [("Content-Type", "text/plain")], len(body)
                )
            except Exception:
                conn.abort()
            else:
                self.hsize, self.rsize = len(head), len(body)
                conn.send(head + proto.response_body(self.req, body) + proto.response_end(self.req))
                self.finished = True
                conn.response_done(self)
        elif not self.finished:
            self.status = self.status or "500 Internal Server Error"
            conn.abort()
        worker.request_finished(self)


DECODED: dict[tuple, list] = {}  # an app's response headers -> as str (the ones seen, bounded)
DECODED_MAX = 256


def decoded(headers) -> list[tuple[str, str]]:
    """An ASGI response's header fields (bytes pairs) as the protocols take them
    (latin-1 str pairs). An app sends the same few sets of fields again and
    again: the decoded list is kept, shared and never changed. Sets that do not
    repeat (a cookie per response) fill the cache, which then starts again."""
    key = headers = tuple(headers)  # (an iterable that can be read once, read once)
    try:
        return DECODED[key]
    except KeyError:
        pass
    except TypeError:  # (items that are not hashable: no caching)
        key = None
    fields = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
    if key is not None:
        if len(DECODED) >= DECODED_MAX:
            DECODED.clear()
        DECODED[key] = fields
    return fields


def step(loop: asyncio.AbstractEventLoop, ex: HttpExchange, coro) -> None:
    """Run a request's coroutine up to its first wait, inside its own task (an
    app that asks for its task, as anyio does for a thread or a cancel scope,
    finds it); from its first wait on, the task goes on as any other."""
    if EAGER:  # Python 3.12+: the task's first step runs in its constructor
        task = asyncio.Task(coro, loop=loop, eager_start=True)
    else:  # 3.11: the same by hand; the task's own first step takes the result over
        first = FirstStep(coro)
        ctx = contextvars.copy_context()
        task = loop.create_task(first, context=ctx)
        enter_task(loop, task)
        try:
            ctx.run(first.run)
        finally:
            leave_task(loop, task)
        if first.over:
            return  # (the task's scheduled step only ends it)
    if not task.done():
        ex.task = task


class FirstStep(Coroutine):
    """A coroutine whose first step ``step`` runs before its task does (3.11):
    the task's first ``send`` gives back what that step yielded (the future the
    coroutine waits on), its result or its exception; then it forwards."""

    __slots__ = ("coro", "fresh", "waits_on", "over", "result", "error")

    def __init__(self, coro) -> None:
        self.coro = coro
        self.fresh = True
        self.over = False
        self.waits_on = self.result = self.error = None

    def run(self) -> None:
        try:
            self.waits_on = self.coro.send(None)
        except StopIteration as exc:
            self.over, self.result = True, exc.value
        except BaseException as exc:  # (raised again in the task, as it would have been)
            self.over, self.error = True, exc

    def send(self, value):
        if self.fresh:
            self.fresh = False
            if self.error is not None:
                error, self.error = self.error, None
                raise error
            if self.over:
                raise StopIteration(self.result)
            waits_on, self.waits_on = self.waits_on, None
            return waits_on
        return self.coro.send(value)

    def throw(self, *args):
        if self.fresh and self.over:  # (cancelled before the task's first step)
            self.fresh = False
            return self.send(None)
        self.fresh = False
        self.waits_on = None
        return self.coro.throw(*args)

    def close(self) -> None:
        self.coro.close()

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        return self.send(None)

    # what coroutine_stack (SIGUSR2) follows
    @property
    def cr_frame(self):
        return self.coro.cr_frame

    @property
    def cr_await(self):
        return self.coro.cr_await
