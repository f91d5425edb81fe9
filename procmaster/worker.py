"""One worker process: an event loop over its connections, calling the app.

Theory of operation
-------------------
The worker waits on one ``epoll`` for: the listening sockets it shares with its
siblings (registered ``EPOLLEXCLUSIVE`` so one connection wakes one worker), its
connections, and the signal wake-up pipe. Sockets are non-blocking: reading a
request and writing a response wait on the socket, never on the worker, so a
slow or idle client holds memory, not the worker.

A connection feeds what it reads to its protocol (sans-IO), which reports
request events back (``on_head``/``on_body``/``on_end``). Bodies are stored as
they arrive (``wsgi.Body``: memory, then a temporary file). A request goes to the
app only once complete; the app call is synchronous. The response is framed by
the protocol and written; when the socket cannot take it all, the rest waits for
``EPOLLOUT`` and an app's iterator is resumed only when the socket drained
(back-pressure: one bounded buffer per connection). With ``threads`` > 1 the app
runs in a pool of threads instead (``procmaster.appthreads``): the loop hands
complete requests over and sends the responses the pool hands back. While a response is in
progress the connection does not read, so pipelined requests are answered in
order and cannot pile up.

Graceful stop (``SIGHUP``/``SIGTERM`` from the master): stop accepting, finish
what is in flight, answer each next request on a kept-alive connection with
``Connection: close``, close connections that stay idle, then exit. ``SIGINT``
and ``SIGQUIT`` exit at once. The worker dies with the master (``PR_SET_PDEATHSIG``).
A guard (``procmaster.guards``: max-requests, reload-on-rss, max-worker-lifetime)
starts the same graceful stop, and the worker then exits with ``EXIT_RECYCLE``.

Must not know: other workers, reloads (it is told to stop), the config files.
"""

from __future__ import annotations

import ctypes
import errno
import faulthandler
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections import deque
from fcntl import F_SETFL, fcntl
from urllib.parse import unquote_to_bytes

from .appthreads import AppThreads, Job
from .guards import worker_guard
from .ipc import (
    EXIT_RECYCLE,
    MASTER_ASKS,
    SIG_DUMP_STACKS,
    SIG_PAUSE,
    SIG_PRINT_REQUEST,
    SIG_REOPEN_LOG,
    SIG_RESUME,
    encode_module,
    encode_ready,
)
from .logs import RequestLogger, log
from .process import die_with_parent, process_name, set_process_name
from .protocols import ProtocolError, Request, protocol_class
from .static import static_files
from .wsgi import (
    EMPTY_INPUT,
    SPOOL_THRESHOLD,
    Body,
    FileWrapper,
    Response,
    base_environ,
    url_scheme,
)

__all__ = ["Worker"]

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
EPOLLERR = select.EPOLLERR | select.EPOLLHUP
EPOLLEXCLUSIVE = getattr(select, "EPOLLEXCLUSIVE", 0)

NONBLOCK_FLAGS = os.O_RDWR | os.O_NONBLOCK
READ_SIZE = 65536
HIGH_WATER = 256 * 1024  # stop pulling from an app iterator above this many unsent bytes
IDLE_CLOSE_WHEN_DRAINING = 1.0
LINGER_SECONDS = 2.0  # how long an error reply's connection drains what the client still sends  # seconds an idle keep-alive connection may stay while stopping

STATUS_500 = b"500 Internal Server Error"
ERROR_REASONS = {
    400: "Bad Request",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


class Connection:
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
        "body",
        "deadline",
        "in_request",
        "current",
        "streaming",
        "reading",
        "closed",
        "close_after",
        "peer_closed",
        "idle_since",
        "got_head",
        "deferred_error",
    )

    def __init__(self, fd: int, worker: Worker, listener, remote: tuple[str, str]) -> None:
        self.fd = fd
        self.worker = worker
        self.listener = listener
        self.remote = remote
        self.proto = listener.factory(self)
        self.ready: deque[Request] = deque()
        self.out: list[bytes | memoryview] = []
        self.out_size = 0
        self.body: Body | None = None
        now = worker.now
        self.deadline = now + worker.socket_timeout
        self.in_request = False
        self.current: Exchange | None = None
        self.streaming = False
        self.reading = True
        self.closed = False
        self.close_after = False
        self.peer_closed = False
        self.idle_since = now
        self.got_head = False
        self.deferred_error: ProtocolError | None = None

    # -- Sink: events from the protocol ------------------------------------------

    def on_head(self, req: Request) -> None:
        worker = self.worker
        self.got_head = True  # the header deadline is met; the body gets its own
        self.deadline = worker.now + worker.socket_timeout
        limit = worker.limit_post
        if limit and req.content_length is not None and req.content_length > limit:
            raise ProtocolError(f"request body of {req.content_length} bytes over limit-post", 413)
        if req.content_length != 0:
            req.body = Body(worker.spool_threshold)

    def on_body(self, req: Request, data: bytes) -> None:
        body = req.body
        if body is None:
            body = req.body = Body(self.worker.spool_threshold)
        body.write(data)
        # socket-timeout between body bytes, not for the whole body
        self.deadline = self.worker.now + self.worker.socket_timeout
        limit = self.worker.limit_post
        if limit and body.size > limit:
            raise ProtocolError(f"request body over limit-post ({limit} bytes)", 413)

    def on_end(self, req: Request) -> None:
        self.ready.append(req)

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
                worker.log_protocol_error(self, exc)  # cut inside a request or packet
            if not self.ready and self.current is None and not self.out:
                self.close()
                return
            self.pause_reading()
        else:
            if not self.in_request:
                self.in_request = True
                self.got_head = False
                # the header deadline: the whole head within socket-timeout
                self.deadline = worker.now + worker.socket_timeout
            try:
                reply = self.proto.feed(data)
            except ProtocolError as exc:
                self.fail(exc)
                return
            if reply:
                self.send(reply)
            if not self.got_head and worker.now > self.deadline:
                # a head trickled in for longer than the header deadline
                worker.timeouts["header"] += 1
                self.close()
                return
        if self.ready:
            self.process()
        elif self.out:
            self.flush()

    def pause_reading(self) -> None:
        if self.reading and not self.closed:
            self.reading = False
            self.worker.modify(self.fd, EPOLLOUT if self.out else 0)

    def fail(self, exc: ProtocolError) -> None:
        """Bad request bytes: answer with an error status where the protocol can
        (HTTP), then close. Complete requests before the bad bytes are answered
        first (pipelining), then the error."""
        worker = self.worker
        if exc.status and self.proto.name == "http" and (self.ready or self.current is not None):
            self.deferred_error = exc
            self.pause_reading()
            if self.current is None:
                self.process()
            return
        worker.log_protocol_error(self, exc)
        if exc.status and self.proto.name == "http" and self.current is None:
            reason = ERROR_REASONS.get(exc.status, "Bad Request")
            body = f"{exc.status} {reason}\n".encode()
            head = (
                f"HTTP/1.1 {exc.status} {reason}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            self.ready.clear()
            self.send(head + body)
            self.linger()
        else:
            self.close()

    def linger(self) -> None:
        """Close after the error reply is out, reading and dropping what the client
        still sends for a moment, so it sees our answer instead of a reset."""
        self.close_after = True
        self.proto = _Discard()
        if not self.out:
            self.shutdown_and_close()

    # -- the app -----------------------------------------------------------------

    def process(self) -> None:
        """Run the complete requests in order, while the socket keeps up."""
        worker = self.worker
        while self.ready and self.current is None and not self.closed:
            req = self.ready.popleft()
            if worker.stopping:
                req.keep_alive = False
            if req.aborted:  # FastCGI ABORT_REQUEST before the app ran: just end it
                self.send(self.proto.response_end(req))
                self.request_done(req)
                continue
            worker.run(self, req)
            if self.current is None:
                self.request_done(req)
        if self.out:
            self.flush()

    def request_done(self, req: Request) -> None:
        if req.body is not None:
            req.body.close()
        worker = self.worker
        if not req.keep_alive or worker.stopping:
            self.close_after = True
            self.ready.clear()
        self.in_request = bool(self.ready)
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
            self.worker.modify(self.fd, EPOLLOUT)
            self.deadline = self.worker.now + self.worker.socket_timeout
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
            self.worker.modify(self.fd, EPOLLOUT)
            return False
        return True

    def on_writable(self) -> None:
        if self.flush():
            if self.current is not None:
                self.worker.resume(self)
                if self.out or self.closed:
                    return
            if self.close_after:
                self.shutdown_and_close()
                return
            self.worker.modify(self.fd, EPOLLIN if self.reading else 0)
            if self.ready:
                self.process()

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
            self.reading = True
            self.in_request = True
            self.deadline = self.worker.now + LINGER_SECONDS
            self.worker.modify(self.fd, EPOLLIN)
            return
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        exchange = self.current
        if exchange is not None:
            self.current = None
            exchange.abort("connection closed")
        for req in self.ready:
            if req.body is not None:
                req.body.close()
        self.ready.clear()
        self.out.clear()
        self.worker.forget(self)
        try:
            os.close(self.fd)
        except OSError:
            pass


class _Discard:
    """Protocol stand-in after an error reply: swallow whatever still comes."""

    name = "discard"

    def feed(self, data: bytes) -> bytes:
        return b""

    def eof(self) -> None:
        pass


def _legacy_write(exchange: Exchange, data: bytes) -> None:
    exchange.conn.worker.legacy_write(exchange, data)


class Exchange(Response):
    """One request's response: its ``start_response`` (``wsgi.Response``) and what
    the worker tracks while sending it (an app iterator may wait for the socket).
    One object per request, no bound methods built on the hot path."""

    __slots__ = (
        "conn",
        "req",
        "result",
        "iterator",
        "start",
        "rsize",
        "hsize",
        "app_result_closed",
        "declared",
    )

    def __init__(self, conn: Connection, req: Request, start: float) -> None:
        self.status = None
        self.headers = None
        self.headers_sent = False
        self.writer = _legacy_write
        self.conn = conn
        self.req = req
        self.result = None
        self.iterator = None
        self.start = start
        self.rsize = 0
        self.hsize = 0
        self.app_result_closed = False
        # the app's Content-Length once the head is sent (-1: none; -2: end sent)
        self.declared = -1

    def close_result(self) -> None:
        if not self.app_result_closed:
            self.app_result_closed = True
            close = getattr(self.result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log(
                        f"error in close() of the app's iterable:\n{traceback.format_exc().rstrip()}"
                    )

    def abort(self, why: str) -> None:
        self.close_result()
        req = self.req
        log(
            f"{why} during response to {req.environ.get('REQUEST_METHOD')} "
            f"{req.environ.get('REQUEST_URI') or req.environ.get('PATH_INFO')} "
            f"({self.rsize} bytes sent)"
        )


class WorkerListener:
    """What a worker needs of a listening socket."""

    __slots__ = ("fd", "sock", "proto", "proxied", "factory", "unix", "server_name", "server_port")

    def __init__(self, listener, cfg) -> None:
        self.sock = listener.sock
        self.fd = listener.sock.fileno()
        self.proto = listener.proto
        self.proxied = listener.proto != "http"
        self.unix = listener.sock.family == socket.AF_UNIX
        if self.unix:
            self.server_name, self.server_port = "localhost", "0"
        else:
            name = listener.sock.getsockname()
            self.server_name, self.server_port = str(name[0]), str(name[1])
        cls = protocol_class(listener.proto)
        buffer_size = cfg.buffer_size
        if listener.proto == "http":
            sname, sport = self.server_name, self.server_port

            def factory(sink, cls=cls):
                return cls(sink, buffer_size=buffer_size, server_name=sname, server_port=sport)
        elif listener.proto == "fastcgi":
            # what GET_VALUES reports: one request at a time per connection
            max_conns = max(int(cfg.listen), 1)

            def factory(sink, cls=cls):
                return cls(sink, buffer_size=buffer_size, max_conns=max_conns, max_reqs=max_conns)
        else:

            def factory(sink, cls=cls):
                return cls(sink, buffer_size=buffer_size)

        self.factory = factory


class Worker:
    """The worker's loop. ``run_forever`` never returns: it exits the process."""

    def __init__(
        self, wid: int, cfg, listeners, apps, ready_fd: int, scoreboard, slot: int
    ) -> None:
        self.wid = wid
        self.cfg = cfg
        self.apps = apps
        self.ready_fd = ready_fd
        self.scoreboard = scoreboard
        self.slot = slot
        self.listeners = [WorkerListener(listener, cfg) for listener in listeners]
        self.by_fd = {lst.fd: lst for lst in self.listeners}
        self.conns: dict[int, Connection] = {}
        self.epoll = select.epoll()
        self.now = time.monotonic()
        self.socket_timeout = float(cfg.socket_timeout)
        self.keepalive_timeout = keepalive_timeout(cfg.get("http-keepalive"))
        self.limit_post = int(cfg.get("limit-post") or 0)
        # bodies above post-buffering (uWSGI's meaning) are spooled to a temp file
        self.spool_threshold = int(cfg.get("post-buffering") or 0) or SPOOL_THRESHOLD
        self.stopping = False
        self.stop_deadline = 0.0
        self.requests = 0
        self.logging = not cfg.disable_logging
        self.req_log = RequestLogger(cfg, wid) if self.logging else None
        self.static = static_files(cfg)  # static-map & co: files served before the app
        threads = int(cfg.get("threads") or 1)
        self.base_env = base_environ(
            multithread=threads > 1, multiprocess=cfg.processes > 1 or bool(cfg.get("lazy-apps"))
        )
        self.accepting = False
        self.accept_paused = False  # EMFILE: accepting resumes when a connection closes
        self.paused = False  # the master's ``p``: accept nothing until resumed
        self.signal_r = -1
        # py-autoreload: tell the master about modules imported here, so it watches them
        self.autoreload = bool(cfg.get("py-autoreload"))
        self.modules_seen: set[str] = set()
        self.nmodules = 0
        # guards: harakiri needs each request named in the scoreboard; limits recycle us
        self.harakiri = bool(cfg.get("harakiri"))
        self.guard = worker_guard(cfg, wid)
        self.recycle_reason: str | None = None
        self.exit_code = 0
        self.pool = AppThreads(threads, scoreboard, slot) if threads > 1 else None
        # connections closed by a deadline, by kind (logged at exit)
        self.timeouts = {"header": 0, "read": 0, "write": 0, "keepalive": 0}
        self.fd_warned = False

    # -- set-up ------------------------------------------------------------------

    def setup_signals(self) -> None:
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.signal_r = r
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, *MASTER_ASKS):
            signal.signal(sig, self._on_signal)
        for sig in (signal.SIGUSR1, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)  # the master's, not ours
        signal.signal(SIG_PRINT_REQUEST, self._print_request)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.epoll.register(r, EPOLLIN)
        if self.cfg.get("harakiri-verbose"):
            faulthandler.register(SIG_DUMP_STACKS, file=log.fd, all_threads=True)
        if self.pool is not None:
            self.epoll.register(self.pool.fileno(), EPOLLIN)
        # blocked by the master around the fork: from now on they reach our handlers
        signal.pthread_sigmask(signal.SIG_SETMASK, ())

    def _on_signal(self, signum, frame) -> None:
        # the work happens in the loop (the wake-up fd woke it); nothing here
        pass

    def _print_request(self, signum, frame) -> None:
        """SIGUSR2 (forwarded by the master): log what this worker is doing now.
        Done in the handler, so a request stuck in the app is reported too."""
        now = time.time()
        busy = [c.current for c in list(self.conns.values()) if c.current is not None]
        if not busy:
            log(f"worker {self.wid} (pid {os.getpid()}): idle")
        for exchange in busy:
            env = exchange.req.environ
            log(
                f"worker {self.wid} (pid {os.getpid()}): {env.get('REQUEST_METHOD')} "
                f"{env.get('REQUEST_URI') or env.get('PATH_INFO')} from "
                f"{env.get('REMOTE_ADDR') or '-'} running for {now - exchange.start:.3f}s"
            )

    def handle_signals(self) -> None:
        try:
            data = os.read(self.signal_r, 64)
        except BlockingIOError:
            return
        for signum in data:
            if signum in (signal.SIGINT, signal.SIGQUIT):
                os._exit(0)
            if signum in (signal.SIGHUP, signal.SIGTERM):
                self.begin_stop()
            elif signum == SIG_REOPEN_LOG:
                log.reopen()  # the master rotated or reopened the log
            elif signum == SIG_PAUSE:
                self.pause_accepting()
            elif signum == SIG_RESUME:
                self.paused = False
                if not self.accepting and not self.stopping:
                    self.start_accepting()
                    self.scoreboard.worker_ready(self.slot, os.getpid())

    def start_accepting(self) -> None:
        for lst in self.listeners:
            self.epoll.register(lst.fd, EPOLLIN | EPOLLEXCLUSIVE)
        self.accepting = True

    def begin_stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.stop_deadline = self.now + float(self.cfg.worker_reload_mercy)
        if self.accepting:
            for lst in self.listeners:
                try:
                    self.epoll.unregister(lst.fd)
                except OSError:
                    pass
                lst.sock.close()
            self.accepting = False
        for conn in list(self.conns.values()):
            if conn.current is None and not conn.ready and not conn.in_request and not conn.out:
                # idle keep-alive: serve a request that is already on its way, else
                # close once it stayed idle for a moment (see sweep())
                conn.idle_since = min(conn.idle_since, self.now)

    # -- the loop ------------------------------------------------------------------

    def run_forever(self) -> None:
        self.setup_signals()
        self.start_accepting()
        os.write(self.ready_fd, encode_ready(os.getpid()))
        if self.autoreload:
            self.report_modules()
        else:
            os.close(self.ready_fd)
        self.scoreboard.worker_ready(self.slot, os.getpid())
        poll = self.epoll.poll
        conns = self.conns
        by_fd = self.by_fd
        signal_r = self.signal_r
        pool_fd = self.pool.fileno() if self.pool is not None else -2
        next_sweep = time.monotonic() + 1.0
        try:
            while True:
                events = poll(1.0)
                self.now = now = time.monotonic()
                if now >= next_sweep:
                    # before handling the events: a connection whose bytes are
                    # waiting (while the app ran for another) is not idle
                    next_sweep = now + 1.0
                    self.sweep({fd for fd, _ in events})
                for fd, ev in events:
                    conn = conns.get(fd)
                    if conn is not None:
                        if ev & EPOLLOUT:
                            conn.on_writable()
                        if ev & (EPOLLIN | EPOLLERR) and not conn.closed and conn.reading:
                            conn.on_readable()
                        elif ev & EPOLLERR and not conn.closed and not ev & EPOLLOUT:
                            conn.close()
                    elif fd in by_fd:
                        self.accept(by_fd[fd])
                    elif fd == signal_r:
                        self.handle_signals()
                    elif fd == pool_fd:
                        self.threads_done()
                if self.recycle_reason is not None and not self.stopping:
                    self.recycle()
                if self.stopping and (not conns or now > self.stop_deadline):
                    break
        except Exception:
            log(f"worker {self.wid} (pid {os.getpid()}) internal error:\n{traceback.format_exc()}")
            os._exit(1)
        self.log_timeouts()
        os._exit(self.exit_code)

    def recycle(self) -> None:
        """A guard's limit was reached: finish what is in flight, then exit to be replaced."""
        log(
            f"worker {self.wid} (pid {os.getpid()}): {self.recycle_reason}; "
            "finishing its requests, then stopping to be replaced"
        )
        self.exit_code = EXIT_RECYCLE
        self.begin_stop()

    def log_timeouts(self) -> None:
        """At exit: how many connections each deadline closed, if any."""
        if any(self.timeouts.values()):
            counts = ", ".join(f"{k} {v}" for k, v in self.timeouts.items())
            log(f"worker {self.wid}: connections closed by timeouts: {counts}")

    def accept(self, lst: WorkerListener) -> None:
        sock = lst.sock
        for _ in range(64):
            try:
                fd, addr = sock._accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    self.out_of_fds(lst)
                return
            fcntl(fd, F_SETFL, NONBLOCK_FLAGS)  # one syscall: a new socket is O_RDWR
            if lst.unix:
                remote = ("", "")
            else:
                _setnodelay(fd)
                remote = (addr[0], str(addr[1]))
            conn = Connection(fd, self, lst, remote)
            self.conns[fd] = conn
            self.epoll.register(fd, EPOLLIN)

    def pause_accepting(self) -> None:
        """The master's ``p`` (pause): serve the connections we have, accept none
        (new ones wait in the listen queue) until resumed."""
        self.paused = True
        if self.accepting:
            for lst in self.listeners:
                try:
                    self.epoll.unregister(lst.fd)
                except OSError:
                    pass
            self.accepting = False
            self.scoreboard.stopping(self.slot)

    def out_of_fds(self, lst: WorkerListener) -> None:
        """EMFILE: stop accepting until a connection closes (never spin); said once."""
        if self.accepting:
            if not self.fd_warned:
                self.fd_warned = True
                log(
                    f"worker {self.wid}: out of file descriptors; pausing accept until connections close"
                )
            for other in self.listeners:
                try:
                    self.epoll.unregister(other.fd)
                except OSError:
                    pass
            self.accepting = False
            self.accept_paused = True

    def modify(self, fd: int, mask: int) -> None:
        try:
            self.epoll.modify(fd, mask)
        except OSError:
            pass

    def forget(self, conn: Connection) -> None:
        """A connection is closing (its fd is closed right after: that takes it
        out of the epoll set, no unregister needed)."""
        self.conns.pop(conn.fd, None)
        if self.accept_paused and not self.stopping and not self.paused:
            self.accept_paused = False
            self.start_accepting()

    def report_modules(self) -> None:
        """py-autoreload: send the master the source files of modules imported
        since the last call (one line each, written whole)."""
        if len(sys.modules) == self.nmodules:
            return
        from .watch import module_files

        self.nmodules = len(sys.modules)
        for path in module_files(self.modules_seen):
            try:
                os.write(self.ready_fd, encode_module(path))
            except OSError:
                return

    def sweep(self, active: set[int]) -> None:
        """Close connections past their deadline (socket-timeout, keep-alive),
        except those in ``active`` (they have events to handle now)."""
        if self.autoreload:
            self.report_modules()
        if not self.accepting and not self.stopping:
            # paused by EMFILE with no connection of ours to free a descriptor
            # (the app holds them): try again once a second, never in a loop
            self.start_accepting()
        now = self.now
        if self.guard is not None and self.recycle_reason is None:
            self.recycle_reason = self.guard.expired(now)
        for conn in list(self.conns.values()):
            if conn.closed or conn.fd in active:
                continue
            if conn.current is not None and not conn.out:
                continue  # the app is producing (threads) or waiting: not the client's fault
            if self.stopping and not conn.in_request and not conn.out and not conn.ready:
                if now - conn.idle_since >= IDLE_CLOSE_WHEN_DRAINING:
                    conn.close()
                continue
            if now > conn.deadline:
                if conn.out:
                    kind = "write"
                elif not conn.in_request:
                    kind = "keepalive"
                else:
                    kind = "read" if conn.got_head else "header"
                self.timeouts[kind] += 1
                conn.close()

    # -- requests ------------------------------------------------------------------

    def log_protocol_error(self, conn: Connection, exc: ProtocolError) -> None:
        addr = conn.remote[0] or conn.listener.server_name
        status = f" -> {exc.status}" if exc.status and conn.listener.proto == "http" else ""
        log(f"{conn.listener.proto} request from {addr or 'unix socket'}: {exc.message}{status}")

    def run(self, conn: Connection, req: Request) -> None:
        """Call the app for one complete request and queue its response."""
        env = req.environ
        env.update(self.base_env)
        if conn.listener.proxied:
            self.proxied_environ(env, conn)
        else:
            env["REMOTE_ADDR"], env["REMOTE_PORT"] = conn.remote
        body = req.body
        env["wsgi.input"] = body.stream() if body is not None else EMPTY_INPUT
        app = self.apps.single
        if self.static is not None:
            app = self.static.match(env) or app
        if app is None:
            app, script_name, path_info = self.apps.resolve(env.get("PATH_INFO", ""))
            if app is None:
                self.simple_response(conn, req, "404 Not Found", b"no app mounted here\n")
                return
            env["SCRIPT_NAME"] = env.get("SCRIPT_NAME", "").rstrip("/") + script_name
            env["PATH_INFO"] = path_info
        start = time.time()
        self.requests += 1
        if self.pool is not None:
            self.run_threaded(conn, req, app, env, start)
            return
        self.scoreboard.request_start(self.slot, start)
        if self.harakiri:
            self.scoreboard.request_desc(self.slot, describe(env))
        conn.current = resp = exchange = Exchange(conn, req, start)
        try:
            result = exchange.result = app(env, resp.start_response)
            if type(result) is list or type(result) is tuple:
                if len(result) == 1 and type(result[0]) is bytes:
                    data = result[0]
                else:
                    data = b"".join(result)
                if resp.status is None:
                    raise RuntimeError("the app returned without calling start_response()")
                proto = conn.proto
                if resp.headers_sent:  # the app used write() before returning
                    conn.send(proto.response_body(req, data) + proto.response_end(req))
                else:
                    head = proto.response_head(req, resp.status, resp.headers, len(data))
                    resp.headers_sent = True
                    exchange.hsize = len(head)
                    conn.send(head + proto.response_body(req, data) + proto.response_end(req))
                exchange.rsize += len(data)
                # an exact list or tuple has no close(): nothing to call
                conn.current = None
                self.request_finished(conn, exchange, resp.status)
                return
            if isinstance(result, FileWrapper) and self.sendfile_response(conn, exchange):
                return
            exchange.iterator = iter(result)
        except Exception:
            self.app_error(conn, exchange)
            return
        self.pump(conn, exchange)

    def run_threaded(self, conn: Connection, req: Request, app, env: dict, start: float) -> None:
        """threads > 1: hand the request to the pool; ``threads_done`` sends the response."""
        exchange = Exchange(conn, req, start)
        conn.current = exchange
        desc = describe(env) if self.harakiri else b""
        self.pool.submit(Job(exchange, app, env, exchange, desc))

    def threads_done(self) -> None:
        """Responses the app threads finished: send them (the loop's thread only)."""
        for job in self.pool.finished():
            exchange = job.owner
            exchange.app_result_closed = True  # the thread closed it
            conn = exchange.conn
            req = exchange.req
            resp = exchange
            if conn.closed or conn.current is not exchange:
                self.request_finished(conn, exchange, resp.status or "500")
                continue
            proto = conn.proto
            if job.error is not None:
                env = req.environ
                log(
                    f"error in the app for {env.get('REQUEST_METHOD')} "
                    f"{env.get('REQUEST_URI') or env.get('PATH_INFO')}:\n{job.error}"
                )
                self.scoreboard.exception(self.slot)
                data = b"Internal Server Error\n"
                resp.status = "500 Internal Server Error"
                resp.headers = [("Content-Type", "text/plain")]
                req.keep_alive = False
            else:
                data = b"".join(job.chunks)
            head = proto.response_head(req, resp.status, resp.headers, len(data))
            resp.headers_sent = True
            exchange.hsize = len(head)
            conn.send(head + proto.response_body(req, data) + proto.response_end(req))
            exchange.rsize = len(data)
            self.finish(conn, exchange)
            if not conn.closed:
                self.after_exchange(conn, req)

    def proxied_environ(self, env: dict, conn: Connection) -> None:
        """uwsgi/FastCGI/SCGI: the proxy sent the CGI variables; fill what it left out."""
        lst = conn.listener
        env.setdefault("REMOTE_ADDR", conn.remote[0])
        # nginx passes every request header as HTTP_*, these two included; CGI
        # (and PEP 3333) have them as CONTENT_TYPE / CONTENT_LENGTH only
        env.pop("HTTP_CONTENT_TYPE", None)
        env.pop("HTTP_CONTENT_LENGTH", None)
        if "PATH_INFO" not in env:
            # nginx's stock fastcgi_params send no PATH_INFO: the path is in
            # SCRIPT_NAME (and REQUEST_URI); for a WSGI app it is PATH_INFO
            path = env.get("SCRIPT_NAME")  # already percent-decoded by nginx
            if not path:
                uri = env.get("REQUEST_URI", "").partition("?")[0]
                path = unquote_to_bytes(uri.encode("latin-1")).decode("latin-1")
            env["PATH_INFO"] = path
            env["SCRIPT_NAME"] = ""
        env.setdefault("SCRIPT_NAME", "")
        env.setdefault("QUERY_STRING", "")
        env.setdefault("SERVER_NAME", lst.server_name)
        env.setdefault("SERVER_PORT", lst.server_port)
        env.setdefault("SERVER_PROTOCOL", "HTTP/1.1")
        env["wsgi.url_scheme"] = url_scheme(env)

    def legacy_write(self, exchange: Exchange, data: bytes) -> None:
        """PEP 3333 ``write()``: send the head if needed, then the data; block (on
        this connection only) when the client is slow, as the app expects."""
        conn = exchange.conn
        if conn.closed:
            raise OSError(errno.EPIPE, "the client connection is gone")
        if not exchange.headers_sent:
            self.send_head(conn, exchange)
        if data:
            conn.send(conn.proto.response_body(exchange.req, data))
            exchange.rsize += len(data)
        if conn.out_size > HIGH_WATER:
            self.block_until_drained(conn)

    def block_until_drained(self, conn: Connection) -> None:
        deadline = time.monotonic() + self.socket_timeout
        poller = select.poll()
        poller.register(conn.fd, select.POLLOUT)
        while conn.out and not conn.closed:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                conn.broken()
                raise OSError(errno.ETIMEDOUT, "client too slow to read the response")
            conn.flush()
        if conn.closed:
            raise OSError(errno.EPIPE, "the client connection is gone")

    def send_head(self, conn: Connection, exchange: Exchange, length: int | None = None) -> None:
        resp = exchange
        head = conn.proto.response_head(exchange.req, resp.status, resp.headers, length)
        for name, value in resp.headers:
            if len(name) == 14 and name.lower() == "content-length" and value.isdigit():
                exchange.declared = int(value)
        resp.headers_sent = True
        exchange.hsize = len(head)
        conn.send(head)

    def pump(self, conn: Connection, exchange: Exchange) -> None:
        """Pull chunks from the app's iterator while the socket keeps up."""
        proto = conn.proto
        req = exchange.req
        resp = exchange
        try:
            for chunk in exchange.iterator:
                if resp.status is None:
                    raise RuntimeError("the app yielded body data before calling start_response()")
                if not chunk:
                    continue
                if not resp.headers_sent:
                    self.send_head(conn, exchange)
                data = proto.response_body(req, chunk)
                exchange.rsize += len(chunk)
                if 0 <= exchange.declared <= exchange.rsize:
                    # the last bytes of a declared length: the end (FastCGI's
                    # END_REQUEST) goes in the same write, or nginx may read the
                    # body, give up on the kept-alive connection and close it
                    data += proto.response_end(req)
                    exchange.declared = -2
                conn.send(data)
                if conn.closed:
                    return
                if conn.out_size > HIGH_WATER:
                    return  # resumed from on_writable()
            if resp.status is None:
                raise RuntimeError("the app returned without calling start_response()")
            if not resp.headers_sent:
                self.send_head(conn, exchange, 0)
        except Exception:
            self.app_error(conn, exchange)
            return
        if exchange.declared != -2:
            conn.send(proto.response_end(req))
        self.finish(conn, exchange)

    def resume(self, conn: Connection) -> None:
        exchange = conn.current
        if exchange is not None and exchange.iterator is not None:
            self.pump(conn, exchange)
            if conn.current is None and not conn.closed:
                self.after_exchange(conn, exchange.req)

    def sendfile_response(self, conn: Connection, exchange: Exchange) -> bool:
        """``wsgi.file_wrapper`` over a real file with identity framing: sendfile."""
        wrapper = exchange.result
        resp = exchange
        req = exchange.req
        fd = wrapper.fileno()
        if fd is None or resp.status is None or conn.listener.proto not in ("http", "uwsgi"):
            return False
        try:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
            size = os.fstat(fd).st_size - offset
        except OSError:
            return False
        length = size
        for k, v in resp.headers:
            if k.lower() == "content-length":
                length = min(int(v), size)
            elif k.lower() == "transfer-encoding":
                return False
        self.send_head(conn, exchange, length)
        if not req.head_only and length:
            if not self.blocking_flush(conn):
                return True
            sent = 0
            while sent < length:
                try:
                    n = os.sendfile(conn.fd, fd, offset + sent, length - sent)
                except BlockingIOError:
                    if not self.wait_writable(conn):
                        return True
                    continue
                except OSError:
                    conn.broken()
                    return True
                if n == 0:
                    break
                sent += n
            exchange.rsize = sent
        conn.send(conn.proto.response_end(req))
        self.finish(conn, exchange)
        return True

    def wait_writable(self, conn: Connection) -> bool:
        poller = select.poll()
        poller.register(conn.fd, select.POLLOUT)
        if not poller.poll(self.socket_timeout * 1000):
            conn.broken()
            return False
        return True

    def blocking_flush(self, conn: Connection) -> bool:
        while conn.out and not conn.closed:
            if not conn.flush() and not self.wait_writable(conn):
                return False
        return not conn.closed

    def app_error(self, conn: Connection, exchange: Exchange) -> None:
        """The app raised: 500 if nothing was sent yet, else cut the connection."""
        req = exchange.req
        env = req.environ
        log(
            f"error in the app for {env.get('REQUEST_METHOD')} {env.get('REQUEST_URI') or env.get('PATH_INFO')}:\n"
            f"{traceback.format_exc().rstrip()}"
        )
        self.scoreboard.exception(self.slot)
        exchange.close_result()
        if conn.closed:
            self.request_finished(conn, exchange, "500 Internal Server Error")
            return
        if exchange.headers_sent:
            conn.current = None
            self.request_finished(conn, exchange, exchange.status or "500")
            conn.close()
            return
        body = b"Internal Server Error\n"
        exchange.status = "500 Internal Server Error"
        exchange.headers = [("Content-Type", "text/plain")]
        req.keep_alive = False
        self.send_head(conn, exchange, len(body))
        conn.send(conn.proto.response_body(req, body) + conn.proto.response_end(req))
        exchange.rsize = len(body)
        self.finish(conn, exchange)

    def simple_response(self, conn: Connection, req: Request, status: str, body: bytes) -> None:
        proto = conn.proto
        conn.send(
            proto.response_head(req, status, [("Content-Type", "text/plain")], len(body))
            + proto.response_body(req, body)
            + proto.response_end(req)
        )

    def finish(self, conn: Connection, exchange: Exchange) -> None:
        conn.current = None
        exchange.close_result()
        self.request_finished(conn, exchange, exchange.status)

    def after_exchange(self, conn: Connection, req: Request) -> None:
        conn.request_done(req)
        if not conn.closed and not conn.out:
            self.modify(conn.fd, EPOLLIN if conn.reading else 0)
            if conn.ready:
                conn.process()

    def request_finished(self, conn: Connection, exchange: Exchange, status: str) -> None:
        scoreboard = self.scoreboard
        scoreboard.request_end(self.slot)
        end = time.time()
        code = status[:3] if status else "500"
        scoreboard.response(
            self.slot,
            int(code) if code.isdigit() else 500,
            exchange.rsize + exchange.hsize,
            end - exchange.start,
        )
        if self.guard is not None and self.recycle_reason is None:
            self.recycle_reason = self.guard.after_request(self.requests)
        if self.logging:
            resp = exchange
            line = self.req_log.line(
                exchange.req.environ,
                status or "500",
                exchange.rsize,
                exchange.hsize,
                len(resp.headers or ()),
                exchange.start,
                end,
                self.requests,
                self.scoreboard.total(),
            )
            log.write_request(line)


def describe(env: dict) -> bytes:
    """The request as ``METHOD URI``, for the scoreboard (harakiri logs it)."""
    uri = env.get("REQUEST_URI") or env.get("PATH_INFO", "")
    return f"{env.get('REQUEST_METHOD')} {uri}".encode("latin-1", "replace")


DEFAULT_KEEPALIVE = 15.0


def keepalive_timeout(value) -> float:
    """Idle time a kept-alive connection may wait for its next request.

    ``http-keepalive`` as uWSGI: 0 (the default) or bare/1 mean "keep-alive on"
    with our default idle timeout; a larger number is the timeout in seconds.
    (procmaster always keeps HTTP/1.1 connections alive, as uWSGI's
    http11-socket does.)"""
    if value is True or not value or value == 1:
        return DEFAULT_KEEPALIVE
    return float(value)


def _setnodelay(fd: int) -> None:
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


def worker_main(
    wid: int,
    cfg,
    listeners,
    apps,
    ready_fd: int,
    scoreboard,
    slot: int,
    master_pid: int,
    load_apps_here,
) -> None:
    """Entry point in the forked child; never returns."""
    try:
        die_with_parent(master_pid)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        # until the loop has its handlers (after a lazy app load, maybe seconds):
        # a stop request ends a starting worker at once (the master's handler,
        # inherited by the fork, would lose it), and the master's other requests
        # (print request, pause, reopen log) are ignored, never fatal
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for sig in (SIG_PRINT_REQUEST, *MASTER_ASKS):
            signal.signal(sig, signal.SIG_IGN)
        name = process_name(cfg, f"worker {wid}")
        if name:
            set_process_name(name)
        if apps is None:
            apps = load_apps_here()
        worker = Worker(wid, cfg, listeners, apps, ready_fd, scoreboard, slot)
        worker.run_forever()
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException:
        try:
            log(f"worker {wid} failed to start:\n{traceback.format_exc().rstrip()}")
        finally:
            os._exit(1)
    finally:
        sys.stdout.flush()
        os._exit(1)
