"""WebSockets through uWSGI's API: an upgrade request runs in a thread of its
own; once it upgraded, its connection leaves the request path and the loop
drives its WebSocket session.

Theory of operation
-------------------
uWSGI's ``websocket_recv()`` blocks the app until a message comes. In uWSGI a
WebSocket served by a sync worker holds that worker (or thread, or async
core) for as long as it is open. Here a request that asks for a WebSocket
(``Upgrade: websocket`` on a protocol that ``upgrades``) is handed to a new
thread (``start``), whatever ``threads`` says: the app's blocking calls hold
that thread only, so one worker holds as many WebSockets as it has memory
for, and its loop goes on serving other clients. A request that does not
call ``websocket_handshake()`` is answered like any threaded request.

The loop alone touches the socket. The thread and the loop share the
request's ``Channel`` (the session behind a lock and condition):

* ``websocket_handshake()`` (thread) checks the request
  (``protocols.websocket.check_upgrade``), builds the 101 head and wakes the
  loop, which swaps the connection's protocol for ``WsWire`` (its ``feed``
  feeds the session) and sends the head;
* bytes from the client (loop): ``WsWire.feed`` -> session; pongs and close
  replies are written at once; complete messages wake the thread. Above
  ``websocket-max-size`` of unread messages, or while more than
  ``HIGH_WATER`` bytes wait for a client that does not read, the connection
  stops reading (memory stays bounded);
* ``websocket_send()`` (thread): the frame goes through the job's inbox
  (``appthreads``), so a client that does not read holds the thread once
  ``HIGH_WATER`` bytes wait, never the loop, and the socket timeout closes it;
* ``websocket_recv()`` (thread) waits on the condition; while it waits it
  pings the client every ``websocket-ping-freq`` seconds and gives up after
  ``websocket-pong-tolerance`` without a pong, as uWSGI does.

When the app returns, an open WebSocket is closed (1000) after what it sent;
the app's body after a handshake is dropped (uWSGI ignores it too). The
client closing, vanishing or breaking the protocol makes the app's next call
raise ``IOError``. A graceful stop (reload) lets WebSockets run on during
``worker-reload-mercy``, as requests do; shortly before it ends each open one
is closed with 1001 (going away), so clients see a clean close instead of a
reset. Harakiri does not apply to a WebSocket's thread: it holds no worker
core (an idle WebSocket is bounded by the ping/pong keep-alive instead).

Must not know: protocol names (the listener's class says ``upgrades``), the
app beyond calling it, other workers.
"""

from __future__ import annotations

import os
import threading
import time

from ..api.websocket import HANDSHAKE_FAILED, RECV_FAILED, SEND_FAILED, bind
from ..appthreads import AppThreads, Job
from ..logs import log
from ..protocols import HeadError, Request
from ..protocols.websocket import (
    GOING_AWAY,
    INTERNAL_ERROR,
    TEXT,
    HandshakeError,
    Session,
    accept_head,
    check_upgrade,
)
from .response import HIGH_WATER, Exchange, job_news, request_line, simple_response
from .roles import AppHost, Client

__all__ = ["WebSocketRunner", "start"]

NORMAL = 1000
GOING_AWAY_MARGIN = 2.0  # seconds before the end of the reload mercy when 1001 goes out


class WsJob(Job):
    __slots__ = ("channel",)


class Channel:
    """One upgrade request's WebSocket, shared by its thread and the loop."""

    __slots__ = (
        "runner",
        "job",
        "conn",
        "req",
        "cond",
        "send_lock",
        "session",
        "head",
        "upgraded",
        "swapped",
        "paused",
        "want_resume",
        "gone",
        "going_away",
    )

    def __init__(self, runner: WebSocketRunner, conn: Client, req: Request) -> None:
        self.runner = runner
        self.conn = conn
        self.req = req
        self.job: WsJob | None = None
        self.cond = threading.Condition(threading.Lock())
        self.send_lock = threading.Lock()
        self.session: Session | None = None
        self.head = b""
        self.upgraded = False  # the thread accepted (the 101 is on its way)
        self.swapped = False  # the loop sent the 101 and feeds the session
        self.paused = False  # the loop stopped reading (unread messages, a client behind)
        self.want_resume = False
        self.gone = False  # the connection closed
        self.going_away = False

    # -- the app's thread (api.websocket.Channel) ---------------------------------

    def handshake(self, key: str | None, origin: str | None, proto: str | None) -> None:
        if self.upgraded:
            raise OSError(HANDSHAKE_FAILED)
        req = self.req
        try:
            key = check_upgrade(req.environ, key)
            # as uWSGI: the origin given, else the request's, else "*"
            origin = origin or req.environ.get("HTTP_ORIGIN") or "*"
            head = accept_head(key, proto, [("Sec-WebSocket-Origin", origin)])
        except (HandshakeError, HeadError) as exc:
            log(f"websocket handshake refused for {request_line(req.environ)}: {exc}")
            raise OSError(HANDSHAKE_FAILED) from None
        runner = self.runner
        job = self.job
        resp = job.resp
        resp.status = "101 Switching Protocols"
        resp.headers = []
        with self.cond:
            if self.gone:
                raise OSError(HANDSHAKE_FAILED)
            self.head = head
            self.session = Session(
                runner.max_size, runner.ping_freq, runner.pong_tolerance, time.monotonic()
            )
            self.upgraded = True
        runner.wake(job)

    def recv(self, block: bool) -> bytes:
        session = self.session
        if session is None:
            raise OSError(RECV_FAILED)
        cond = self.cond
        while True:
            with cond:
                msg = session.next_message()
                if msg is not None:
                    if self.paused and session.queued <= self.runner.max_size // 2:
                        self.want_resume = True
                        self.runner.wake(self.job)
                    kind, data = msg
                    return data.encode("utf-8") if kind == TEXT else data
                if session.closed or self.gone or self.going_away:
                    raise OSError(RECV_FAILED)
                now = time.monotonic()
                frame = session.tick(now)
                if not frame:
                    if not block:
                        return b""
                    cond.wait(self._wait(session, now))
                    continue
            if session.closed:  # the close after a missing pong
                log(
                    f"websocket {request_line(self.req.environ)}: no pong within "
                    f"{session.pong_tolerance:g} s, closing"
                )
            self._put(frame)  # a ping, or that close
            if session.closed:
                raise OSError(RECV_FAILED)

    @staticmethod
    def _wait(session: Session, now: float) -> float | None:
        if session.ping_freq <= 0:
            return None
        if session.awaiting_pong:
            return max(0.05, session.last_ping + session.pong_tolerance - now + 0.01)
        return max(0.05, session.last_ping + session.ping_freq - now)

    def send(self, data: bytes, binary: bool) -> None:
        session = self.session
        if session is None:
            raise OSError(SEND_FAILED)
        with self.send_lock:
            with self.cond:
                if self.gone or self.going_away or session.closed or session.closing:
                    raise OSError(SEND_FAILED)
                frame = session.send(data) if binary else session.send_text_bytes(data)
            self._put(frame)

    def fileno(self) -> int:
        return self.conn.fd

    def _put(self, frame: bytes) -> None:
        try:
            self.runner.put(self.job, frame)
        except OSError:
            raise OSError(SEND_FAILED) from None

    def finish(self, code: int) -> None:
        """The app returned (``code`` 1000) or raised (1011): close an open
        WebSocket after what it sent."""
        session = self.session
        if session is None:
            return
        with self.cond:
            frame = b"" if self.gone else session.close(code)
        if frame:
            try:
                self.runner.put(self.job, frame)
            except OSError:
                pass

    # -- the loop ----------------------------------------------------------------

    def going(self) -> None:
        """The worker's reload mercy is ending: close with 1001 (going away)."""
        if self.going_away or not self.swapped:
            return
        with self.cond:
            self.going_away = True
            frame = self.session.close(GOING_AWAY, "server going away")
            self.cond.notify_all()
        if frame and not self.conn.closed:
            self.conn.send(frame)


class WsWire:
    """The connection's protocol once it upgraded: bytes go to the session."""

    __slots__ = ("channel",)
    name = "websocket"
    closing = False

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def release(self) -> None:
        pass

    def feed(self, data: bytes) -> bytes:
        ch = self.channel
        session = ch.session
        with ch.cond:
            out = session.receive(data)
            if session.messages or session.closed:
                ch.cond.notify_all()
            stop = session.queued > ch.runner.max_size
        conn = ch.conn
        if (stop or conn.out_size > HIGH_WATER) and not session.closed:
            ch.paused = True
            conn.input_done = True
            conn.rearm()
        return out

    def eof(self) -> None:
        ch = self.channel
        with ch.cond:
            ch.session.receive(b"")
            ch.cond.notify_all()

    def response_head(self, req: Request, status: str, headers: list, length: int | None) -> bytes:
        return self.channel.head

    def response_body(self, req: Request, data: bytes) -> bytes:
        return data

    def response_end(self, req: Request) -> bytes:
        return b""


class WebSocketRunner(AppThreads):
    """A worker's WebSocket threads: one per upgrade request, and the loop's
    side of their channels (made at the first upgrade request)."""

    def __init__(self, worker: AppHost) -> None:
        super().__init__(0, worker.scoreboard, worker.slot, HIGH_WATER)
        cfg = worker.cfg
        self.worker = worker
        self.max_size = cfg.websocket_max_size * 1024
        self.ping_freq = float(cfg.websocket_ping_freq)
        self.pong_tolerance = float(cfg.websocket_pong_tolerance)
        self.live: set[Channel] = set()
        worker.add_reader(self.efd, self.on_news)

    def start(self, conn: Client, req: Request, app, env: dict, start: float) -> None:
        channel = Channel(self, conn, req)
        exchange = Exchange(conn, req, start)
        conn.current = exchange
        req.keep_alive = False  # after a WebSocket (or a refusal) the connection closes
        # nothing more is read until the 101 went out: the bytes after it are the session's
        conn.input_done = True
        conn.rearm()

        def call(environ: dict, start_response):
            bind(channel)
            code = INTERNAL_ERROR  # the app raised, unless it returns
            try:
                result = app(environ, start_response)
                code = NORMAL
                if not channel.upgraded:
                    return result
                close = getattr(result, "close", None)  # the body after a handshake: dropped
                if close is not None:
                    close()
                return []
            finally:
                channel.finish(code)
                bind(None)

        job = exchange.job = channel.job = WsJob(exchange, call, env, exchange, b"")
        job.channel = channel
        job.pool = self
        exchange.writer = job.write
        self.live.add(channel)
        thread = threading.Thread(
            target=self.run_job, args=(job, None), daemon=True, name="websocket"
        )
        try:
            thread.start()
        except RuntimeError as exc:  # no thread to be had (memory, a limit): refused, not fatal
            self.live.discard(channel)
            conn.current = None
            log(f"websocket {request_line(env)} refused: {exc}")
            simple_response(conn, req, "503 Service Unavailable", b"no thread for a WebSocket\n")

    def wake(self, job: Job) -> None:
        """Tell the loop ``job`` has news that is not a chunk (the 101, a resume)."""
        with self.cond:
            wake = not job.flagged
            if wake:
                job.flagged = True
                self.news.append(job)
        if wake:
            os.eventfd_write(self.efd, 1)

    def cancel(self, job: Job) -> None:
        channel = job.channel
        with channel.cond:
            channel.gone = True
            channel.cond.notify_all()
        self.live.discard(channel)
        super().cancel(job)

    def on_news(self) -> None:
        worker = self.worker
        for job in self.finished():
            channel = job.channel
            conn = channel.conn
            if conn.closed or conn.current is not job.owner:
                job_news(worker, self, job)
                continue
            if channel.upgraded and not channel.swapped:
                channel.swapped = True
                conn.proto = WsWire(channel)
                # no request head is awaited any more: the head deadline does not
                # apply (idle WebSockets are the ping/pong keep-alive's)
                conn.got_head = True
                job.owner.send_head()
                conn.input_done = False
                conn.rearm()
            if channel.want_resume:
                self.resume(channel)
            job_news(worker, self, job)
            if job.done:
                self.live.discard(channel)

    def resume(self, channel: Channel) -> None:
        channel.want_resume = False
        conn = channel.conn
        if channel.paused and not conn.closed and not conn.peer_closed:
            channel.paused = False
            conn.input_done = False
            conn.rearm()

    def sweep(self, now: float) -> None:
        """Once a second (the loop's sweep): resume reading for a client that
        caught up; near the end of a stop's mercy, close with 1001."""
        worker = self.worker
        ending = worker.stopping and now >= worker.stop_deadline - GOING_AWAY_MARGIN
        for channel in list(self.live):
            if channel.conn.closed:
                self.live.discard(channel)
                continue
            if ending:
                channel.going()
            elif (
                channel.paused
                and channel.conn.out_size <= HIGH_WATER
                and channel.session.queued <= self.max_size
            ):
                self.resume(channel)


def start(worker: AppHost, conn: Client, req: Request, app, env: dict, start: float) -> None:
    """Run an upgrade request in a thread of its own (see the module docstring)."""
    runner = worker.websockets
    if runner is None:
        runner = worker.websockets = WebSocketRunner(worker)
    runner.start(conn, req, app, env, start)
