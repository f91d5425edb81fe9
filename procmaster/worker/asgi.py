"""The ASGI runner: a worker whose loop is asyncio, serving one ASGI 3 app
(``asgi = module:app``) over the same listeners and wire protocols as the WSGI
worker.

Theory of operation
-------------------
The master forks this worker exactly as a WSGI one (``worker_main`` picks the
class from the config) and sees it only through the scoreboard, the ready pipe
and signals, so reloads, guards, cheaper and stats do not change.

Start-up: signals, then the app's ``lifespan`` startup (``asgi_lifespan``; a
failure logs the app's message and exits ``EXIT_FATAL``, which the master
answers with its crash back-off), then the listening sockets are the loop's readers (``accept``: a
bounded batch each time, each socket handed to the loop as a connection; a
pause or a stop removes the readers), then the ready line.

Each connection is an ``asgi_http.AsgiConnection``; a request's head starts
its task (``start``: the scope from the protocol's CGI variables). The
scoreboard's slot is busy while requests are in flight (``inflight``, also
written to the slot for stats); with ``harakiri`` a tick every quarter of it
(at most a second) rewrites the slot's start time (a heartbeat) and cancels a
request task older than ``harakiri`` (``HARAKIRI`` in the log, a 500 or a cut
connection): the master's harakiri then fires only when the loop itself stopped
ticking for ``harakiri`` seconds (a sync call stuck in an async app), and kills
the worker as it does a WSGI one.

Once a second ``sweep`` closes connections past their deadlines (the WSGI
worker's kinds: header, read, write, keep-alive), reports new modules for
py-autoreload and asks the guards (max-requests is asked after each request):
a guard's reason starts a graceful stop that exits ``EXIT_RECYCLE``.

Graceful stop (``SIGHUP``/``SIG_STOP``): stop accepting, let the requests in
flight finish (their responses say ``Connection: close``), close idle
connections after a moment, then the lifespan ``shutdown``; all of it within
``worker-reload-mercy``. ``SIGINT``/``SIGQUIT`` exit at once.

Must not know: other workers, reloads (it is told to stop), config files,
protocol names.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys
import time
import traceback

from .. import api
from ..app import asgi_not_applied
from ..guards import worker_guard
from ..ipc import (
    EXIT_FATAL,
    EXIT_RECYCLE,
    MASTER_ASKS,
    SIG_DUMP_STACKS,
    SIG_PAUSE,
    SIG_PRINT_REQUEST,
    SIG_REOPEN_LOG,
    SIG_RESUME,
    SIG_STOP,
)
from ..logs import log, request_logger
from .asgi_accept import accept
from .asgi_exchange import HttpExchange
from .asgi_http import AsgiConnection
from .asgi_lifespan import Lifespan
from .asgi_scope import http_scope
from .asgi_ws import CLOSE_WAIT, WsRun, is_websocket, websocket_scope
from .autoreload import report_modules, say_ready
from .listener import (
    NO_REQUEST_YET,
    WorkerListener,
    bytes_waiting,
    fds_again_line,
    keepalive_timeout,
    out_of_fds_line,
    timeout_kind,
)
from .response import request_line

__all__ = ["AsgiWorker", "new_loop"]

IDLE_CLOSE_WHEN_DRAINING = 1.0
SHUTDOWN_MINIMUM = 0.5  # seconds the lifespan shutdown gets even when the requests used the mercy


class AsgiWorker:
    """The ASGI worker. ``run_forever`` never returns: it exits the process."""

    def __init__(
        self, wid: int, cfg, listeners, apps, ready_fd: int, scoreboard, slot: int
    ) -> None:
        self.wid = wid
        self.cfg = cfg
        self.app = apps.single
        self.ready_fd = ready_fd
        self.scoreboard = scoreboard
        self.slot = slot
        self.who = f"worker {wid} (pid {os.getpid()})"
        self.listeners = [WorkerListener(listener, cfg) for listener in listeners]
        self.accepting = False  # the listening sockets are the loop's readers
        self.accepted = 0  # sockets accepted, not yet connections
        self.fd_episode = 0  # accept pauses since EMFILE was logged (0: none)
        self.conns: set[AsgiConnection] = set()
        self.inflight: set[HttpExchange] = set()
        self.socket_timeout = cfg.socket_timeout
        self.keepalive_timeout = keepalive_timeout(cfg.http_keepalive)
        self.limit_post = cfg.limit_post
        self.ws_max_size = cfg.websocket_max_size * 1024
        self.ws_ping_freq = float(cfg.websocket_ping_freq)
        self.ws_pong_tolerance = float(cfg.websocket_pong_tolerance)
        self.stopping = False
        self.paused = False
        self.stop_deadline = 0.0
        self.requests = 0
        self.req_log = request_logger(cfg, wid)
        self.harakiri = float(cfg.harakiri or 0)
        self.tick_every = min(1.0, self.harakiri / 4) if self.harakiri else 1.0
        self.next_sweep = 0.0
        self.guard = worker_guard(cfg, wid)
        self.recycle_reason: str | None = None
        self.exit_code = 0
        self.state: dict = {}
        self.timeouts = {"header": 0, "read": 0, "write": 0, "keepalive": 0}
        self.autoreload = cfg.py_autoreload > 0
        self.modules_seen: set[str] = set()
        self.nmodules = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        ignored = asgi_not_applied(cfg)
        if ignored and wid == 1:
            log(f"warning: not applied to an ASGI app: {', '.join(ignored)}")
        self.done: asyncio.Event | None = None

    # -- the process -------------------------------------------------------------

    def run_forever(self) -> None:
        loop = self.loop = new_loop(self.cfg.asgi_loop)
        asyncio.set_event_loop(loop)
        try:
            code = loop.run_until_complete(self.main())
        except Exception:
            log(f"{self.who} internal error:\n{traceback.format_exc()}")
            os._exit(1)
        self.log_timeouts()
        self.leave()
        sys.stdout.flush()
        os._exit(code)

    async def main(self) -> int:
        loop = self.loop
        self.done = asyncio.Event()
        self.setup_signals()
        lifespan = Lifespan(self.app, loop, self.state, self.who)
        why = await lifespan.startup()
        if why is not None:
            log(f"{self.who}: ASGI lifespan startup failed: {why}")
            return EXIT_FATAL
        if not self.stopping:
            self.listen()
        say_ready(self)
        self.scoreboard.worker_ready(self.slot, os.getpid())
        self.next_sweep = time.monotonic() + 1.0
        loop.call_later(self.tick_every, self.tick)
        await self.done.wait()
        # the requests in flight finished, or the mercy is over
        for ex in list(self.inflight):
            if ex.task is not None:
                ex.task.cancel()
        for conn in list(self.conns):
            if not conn.transport.is_closing():  # (a WebSocket's 1001 goes out)
                conn.abort()
        left = self.stop_deadline - time.monotonic()
        await lifespan.shutdown(max(left, SHUTDOWN_MINIMUM))
        return self.exit_code

    def listen(self) -> None:
        """Accept on the listening sockets (the loop's reader; ``accept``)."""
        if self.accepting:
            return
        self.accepting = True
        for lst in self.listeners:
            self.loop.add_reader(lst.fd, accept, self, lst)

    def stop_listening(self) -> None:
        if not self.accepting:
            return
        self.accepting = False
        for lst in self.listeners:
            self.loop.remove_reader(lst.fd)

    def out_of_fds(self, exc: OSError) -> None:
        """EMFILE: stop accepting for a second (never spin); the connections
        waiting stay in the listen queue. Logged once per episode (until an
        accept finds the queue empty: ``fds_again``)."""
        if not self.fd_episode:
            log(out_of_fds_line(self.who, exc))
        self.fd_episode += 1
        self.stop_listening()
        self.loop.call_later(1.0, self.accept_again)

    def fds_again(self) -> None:
        """After EMFILE, every waiting connection was accepted: the episode is over."""
        log(fds_again_line(self.who, self.fd_episode))
        self.fd_episode = 0

    def accept_again(self) -> None:
        if not (self.stopping or self.paused):
            self.listen()

    # -- signals -----------------------------------------------------------------

    def setup_signals(self) -> None:
        loop = self.loop
        for sig in (signal.SIGHUP, SIG_STOP):
            loop.add_signal_handler(sig, self.begin_stop)
        for sig in (signal.SIGINT, signal.SIGQUIT):
            loop.add_signal_handler(sig, self.exit_now)
        for sig in MASTER_ASKS:
            loop.add_signal_handler(sig, self.master_asks, sig)
        for sig in (signal.SIGUSR1, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)  # the master's, not ours
        # in the handler itself: a loop blocked by the app is reported too
        signal.signal(SIG_PRINT_REQUEST, self._print_requests)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if self.cfg.harakiri_verbose:
            faulthandler.register(SIG_DUMP_STACKS, file=log.fd, all_threads=True)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        log.reopen_if_moved()  # a rotation while we started: not into the old file

    def master_asks(self, sig: int) -> None:
        if sig == SIG_REOPEN_LOG:
            log.reopen()
        elif sig == SIG_PAUSE and not self.paused:
            self.paused = True
            self.stop_listening()
            self.scoreboard.stopping(self.slot)
            self.scoreboard.inflight(self.slot, len(self.inflight))
        elif sig == SIG_RESUME and self.paused:
            self.paused = False
            if not self.stopping:
                self.listen()
                self.scoreboard.worker_ready(self.slot, os.getpid())

    def exit_now(self) -> None:
        self.leave()
        os._exit(0)

    def _print_requests(self, signum, frame) -> None:
        """SIGUSR2: every request in flight with its age and its coroutine's stack."""
        now = time.time()
        busy = list(self.inflight)
        if not busy:
            log(f"{self.who}: idle")
        for ex in busy:
            env = ex.req.environ
            lines = [
                f"{self.who}: {request_line(env)} from {env.get('REMOTE_ADDR') or '-'} "
                f"running for {now - ex.start:.3f}s"
            ]
            if ex.task is not None:
                lines.extend(coroutine_stack(ex.task.get_coro()))
            log("\n".join(lines))

    # -- requests --------------------------------------------------------------

    def start(self, ex: HttpExchange) -> None:
        """A request's head arrived and nothing runs before it: start its task."""
        conn = ex.conn
        req = ex.req
        env = req.environ
        lst = conn.listener
        client = scheme = None  # from the environ (http_scope)
        if lst.proxied:
            lst.complete_environ(env, conn.remote, lst.server_name, lst.server_port)
        else:
            env["REMOTE_ADDR"], env["REMOTE_PORT"] = conn.remote
            client, scheme = conn.client, "http"
        if lst.transport is not None:  # HTTPS=on, a verified client, a PROXY header's client
            lst.transport.environ(env, conn)
            client = scheme = None
        ex.scope = http_scope(env, self.state, req.headers, client, scheme, req.target)
        run = ex.run
        if "HTTP_UPGRADE" in env and is_websocket(lst, env):
            websocket_scope(ex.scope)
            run = WsRun(ex).run
        ex.start = time.time()
        self.requests += 1
        inflight = self.inflight
        inflight.add(ex)
        scoreboard = self.scoreboard
        if len(inflight) == 1:
            scoreboard.request_start(self.slot, ex.start)  # busy: one in flight (Slot.inflight)
            if self.harakiri:
                scoreboard.request_desc(self.slot, request_line(env).encode("latin-1", "replace"))
        else:
            scoreboard.inflight(self.slot, len(inflight))
        if conn.feeding and conn.first is None:  # its first step runs once the read is parsed
            conn.first = (ex, run(self.app))
            return
        ex.task = self.loop.create_task(run(self.app))

    def request_finished(self, ex: HttpExchange) -> None:
        """The accounting of one request: scoreboard, guards, the request log."""
        inflight = self.inflight
        inflight.discard(ex)
        end = time.time()
        status = ex.status if ex.finished or not ex.conn.closed else "499 Client Closed Request"
        code = int(status[:3]) if status else 500
        scoreboard = self.scoreboard
        scoreboard.request_done(self.slot, code, ex.rsize + ex.hsize, end - ex.start)
        if inflight or self.paused or self.stopping:  # (idle and busy say 0 and 1 themselves)
            scoreboard.inflight(self.slot, len(inflight))
        if inflight:
            scoreboard.request_start(self.slot, end)  # still busy (see tick for the heartbeat)
        if self.guard is not None and self.recycle_reason is None:
            self.recycle_reason = self.guard.after_request(self.requests)
            if self.recycle_reason is not None:
                self.recycle()
        req_log = self.req_log
        if req_log is not None and (
            req_log.every or req_log.wanted(str(code), ex.rsize, end - ex.start, False)
        ):
            log.write_request(
                req_log.line(
                    ex.req.environ,
                    status or "500",
                    ex.rsize,
                    ex.hsize,
                    len(ex.headers or ()),
                    ex.start,
                    end,
                    self.requests,
                    scoreboard.total(),
                )
            )
        if self.stopping:
            self.check_done()

    # -- the tick: harakiri, deadlines, guards ------------------------------------------

    def tick(self) -> None:
        loop = self.loop
        loop.call_later(self.tick_every, self.tick)
        if self.harakiri and self.inflight:
            self.harakiri_check()
        now = time.monotonic()
        if now >= self.next_sweep:
            self.next_sweep = now + 1.0
            self.sweep(now)

    def harakiri_check(self) -> None:
        wall = time.time()
        oldest = min(self.inflight, key=lambda ex: ex.start)
        # the heartbeat: the master's harakiri sees a request "start" at the last tick,
        # so it fires only when this loop stops ticking
        self.scoreboard.request_start(self.slot, wall)
        self.scoreboard.request_desc(
            self.slot, request_line(oldest.req.environ).encode("latin-1", "replace")
        )
        for ex in list(self.inflight):
            ran = wall - ex.start
            if ex.conn.ws is not None:
                continue  # a WebSocket: the ping/pong keep-alive bounds it
            if ran >= self.harakiri and not ex.cancelled and ex.task is not None:
                ex.cancelled = True
                log(
                    f"HARAKIRI: {self.who} request {request_line(ex.req.environ)} ran "
                    f"{ran:.3f}s (harakiri {self.harakiri:g}s): cancelling its task"
                )
                self.scoreboard.count_harakiri(self.slot)
                ex.task.cancel()

    def sweep(self, now: float) -> None:
        if self.autoreload:
            report_modules(self)
        if self.guard is not None and self.recycle_reason is None:
            self.recycle_reason = self.guard.expired(now)
            if self.recycle_reason is not None:
                self.recycle()
        timeout = self.socket_timeout
        for conn in list(self.conns):
            if conn.closed:
                continue
            if conn.write_paused:
                if now - conn.write_since > timeout:
                    self.timeouts["write"] += 1
                    conn.abort()
                continue
            if conn.ws is not None:
                conn.ws.tick(now)
                continue
            if conn.queue:
                running = conn.queue[0]
                reading = conn.receiving is running and not conn.read_paused
                if reading and now > conn.deadline:
                    self.timeouts["read"] += 1
                    conn.abort()
                continue
            if self.stopping and not conn.in_request and conn.idle_since != NO_REQUEST_YET:
                sock = conn.transport.get_extra_info("socket")
                idle = now - conn.idle_since >= IDLE_CLOSE_WHEN_DRAINING
                if idle and not (sock is not None and bytes_waiting(sock.fileno())):
                    conn.transport.close()  # (a request on its way is read and answered instead)
                continue
            if now > conn.deadline:
                kind = timeout_kind(conn.in_request, conn.got_head, conn.idle_since)
                self.timeouts[kind] += 1
                conn.abort()
        if self.stopping:
            self.check_done()

    # -- stopping ------------------------------------------------------------------

    def begin_stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.scoreboard.inflight(self.slot, len(self.inflight))
        self.stop_deadline = time.monotonic() + self.cfg.worker_reload_mercy
        self.loop.call_at(self.stop_deadline - SHUTDOWN_MINIMUM, self.mercy_over)
        self.loop.call_at(self.stop_deadline - SHUTDOWN_MINIMUM - CLOSE_WAIT, self.going_away)
        self.stop_listening()
        self.check_done()

    def going_away(self) -> None:
        for conn in list(self.conns):
            if conn.ws is not None:
                conn.ws.going_away()  # 1001; the client answers within CLOSE_WAIT

    def mercy_over(self) -> None:
        self.going_away()  # (ends those that did not answer)
        if self.done is not None:
            self.done.set()

    def check_done(self) -> None:
        if (
            self.stopping
            and not (self.inflight or self.conns or self.accepted)
            and self.done is not None
        ):
            self.done.set()

    def forget(self, conn: AsgiConnection) -> None:
        self.conns.discard(conn)
        if self.stopping:
            self.check_done()

    def recycle(self) -> None:
        log(
            f"{self.who}: {self.recycle_reason}; finishing its requests, then stopping to be replaced"
        )
        self.exit_code = EXIT_RECYCLE
        self.begin_stop()

    def leave(self) -> None:
        runtime = api.current()
        if runtime is not None:
            runtime.exiting()

    def log_timeouts(self) -> None:
        if any(self.timeouts.values()):
            counts = ", ".join(f"{k} {v}" for k, v in self.timeouts.items())
            log(f"worker {self.wid}: connections closed by timeouts: {counts}")


def coroutine_stack(coro, limit: int = 30) -> list[str]:
    """Where a suspended coroutine waits, outermost first: the chain of what each
    awaits (a Task's own ``get_stack`` shows only the outermost frame)."""
    lines = []
    while coro is not None and len(lines) < limit:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return lines


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The worker's event loop: ``asgi-loop`` = asyncio, or uvloop (``auto``:
    uvloop when it is installed)."""
    if kind != "asyncio":
        try:
            # lazy: uvloop is optional, and only an ASGI worker runs a loop
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()
