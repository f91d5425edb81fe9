"""One worker process: the event loop over its listening sockets and connections.

Theory of operation
-------------------
The worker waits on one ``epoll`` for: the listening sockets it shares with its
siblings (registered ``EPOLLEXCLUSIVE`` so one connection wakes one worker), its
connections, the signal wake-up pipe, and (``threads`` > 1) the pool's eventfd.
Sockets are non-blocking: reading a request and writing a response wait on the
socket, never on the worker, so a slow or idle client holds memory, not the
worker. What a connection does with its events is ``connection.py``'s; how a
response goes out, ``response.py``'s; the app call, ``glue.py``'s.

Once a second, ``sweep`` closes connections past their deadline (header, read,
write, keep-alive: counted and logged at exit), reports newly imported modules
(py-autoreload) and asks the guards whether this worker has lived long enough.

Graceful stop (``SIGHUP``/``SIGTERM`` from the master): stop accepting (after
taking the clients already in the listen queue, which a closing port would
reset), close this worker's copy of the listeners, finish what is in flight, answer each next request on a kept-alive connection with
``Connection: close``, close connections that stay idle, then exit. ``SIGINT``
and ``SIGQUIT`` exit at once. The worker dies with the master (``PR_SET_PDEATHSIG``).
A guard (``procmaster.guards``: max-requests, reload-on-rss, max-worker-lifetime)
starts the same graceful stop, and the worker then exits with ``EXIT_RECYCLE``.
Accepting has one owner, ``update_accepting``: the listeners are in the epoll
set exactly when the worker is not stopping, not paused by the master
(``SIG_PAUSE`` until ``SIG_RESUME``) and not out of descriptors. ``EMFILE`` on
accept sets the last (logged once per episode); a closing connection or the
once-a-second sweep clears it to try again, and the episode ends (logged too)
once an accept finds the queue empty.

A PEP 3333 ``write()`` whose client is slow waits in ``wait_drained``: the loop
runs nested (other connections are read, written and answered, their apps
called) until that client took the bytes, up to ``MAX_NESTED`` deep; past it
the write waits on its own socket alone.

Must not know: other workers, reloads (it is told to stop), the config files,
protocol names (a listener's protocol class says what the worker needs).
"""

from __future__ import annotations

import errno
import faulthandler
import os
import select
import signal
import time
import traceback
from fcntl import F_SETFL, fcntl

from .. import api
from ..appthreads import AppThreads
from ..guards import worker_guard
from ..ipc import (
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
from ..process import SIGNAL_SEEN, read_signals, signal_pipe
from ..routing.front import front_door
from ..wsgi import SPOOL_THRESHOLD, base_environ
from .autoreload import report_modules, say_ready
from .connection import Connection
from .listener import (
    NO_REQUEST_YET,
    WorkerListener,
    bytes_waiting,
    fds_again_line,
    keepalive_timeout,
    out_of_fds_line,
    setnodelay,
    timeout_kind,
)
from .response import HIGH_WATER, request_line, threads_done
from .roles import Client

__all__ = ["Worker", "WorkerListener"]

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
EPOLLERR = select.EPOLLERR | select.EPOLLHUP
EPOLLEXCLUSIVE = getattr(select, "EPOLLEXCLUSIVE", 0)

NONBLOCK_FLAGS = os.O_RDWR | os.O_NONBLOCK
IDLE_CLOSE_WHEN_DRAINING = 1.0  # seconds an idle keep-alive connection may stay while stopping
NO_ADDRESS = ("", "")  # a unix socket's peer
ACCEPT_BATCH = 64  # connections taken (and served at once) per wake-up
MAX_NESTED = 8  # write() calls waiting for their clients while the loop runs on


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
        self.rotate_tickets = None  # TLS session ticket keys (ssl-tickets-rotate)
        if any(lst.transport is not None for lst in self.listeners):
            from .transport import rotate_tickets  # lazily: as listener.py, sockets with layers

            self.rotate_tickets = rotate_tickets
        self.by_fd = {lst.fd: lst for lst in self.listeners}
        self.conns: dict[int, Connection] = {}
        self.epoll = select.epoll()
        self.now = time.monotonic()
        self.socket_timeout = cfg.socket_timeout
        self.keepalive_timeout = keepalive_timeout(cfg.http_keepalive)
        self.limit_post = cfg.limit_post
        # bodies above post-buffering (uWSGI's meaning) are spooled to a temp file
        self.spool_threshold = cfg.post_buffering or SPOOL_THRESHOLD
        self.stopping = False
        self.stop_deadline = 0.0
        self.requests = 0
        self.req_log = request_logger(cfg, wid)  # None: no request is ever logged
        self.logging = self.req_log is not None
        # route rules, add-header, static-map & co: asked before the app (None: nothing)
        self.static = front_door(cfg, apps)
        threads = cfg.threads
        self.base_env = base_environ(
            multithread=threads > 1, multiprocess=cfg.processes > 1 or cfg.lazy_apps
        )
        self.accepting = False  # the listeners are in the epoll set (update_accepting's)
        self.fd_starved = False  # EMFILE: try again when a connection closes, or in a second
        self.fd_episode = 0  # accepts refused since EMFILE was logged (0: none)
        self.paused = False  # the master's ``p``: accept nothing until resumed
        self.signal_r = -1
        # py-autoreload: tell the master about modules imported here, so it watches them
        self.autoreload = cfg.py_autoreload > 0
        self.modules_seen: set[str] = set()
        self.nmodules = 0
        # guards: harakiri needs each request named in the scoreboard; limits recycle us
        self.harakiri = cfg.harakiri > 0
        self.guard = worker_guard(cfg, wid)
        self.recycle_reason: str | None = None
        self.exit_code = 0
        self.pool = AppThreads(threads, scoreboard, slot, HIGH_WATER) if threads > 1 else None
        # connections closed by a deadline, by kind (logged at exit)
        self.timeouts = {"header": 0, "read": 0, "write": 0, "keepalive": 0}
        self.nested = 0  # write() calls waiting in wait_drained
        # WebSockets (worker/websocket.py, made at the first upgrade request) and
        # other descriptors with their handler, polled by the loop
        self.websockets = None
        self.readers: dict[int, object] = {}
        self.usignals = None  # uWSGI signals from the master (api.signals), polled too
        self.next_sweep = 0.0

    # -- set-up ------------------------------------------------------------------

    def setup_signals(self) -> None:
        r = self.signal_r = signal_pipe(
            (signal.SIGHUP, SIG_STOP, signal.SIGINT, signal.SIGQUIT, *MASTER_ASKS)
        )
        for sig in (signal.SIGUSR1, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)  # the master's, not ours
        signal.signal(SIG_PRINT_REQUEST, self._print_request)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.epoll.register(r, EPOLLIN)
        if self.cfg.harakiri_verbose:
            faulthandler.register(SIG_DUMP_STACKS, file=log.fd, all_threads=True)
        if self.pool is not None:
            self.epoll.register(self.pool.fileno(), EPOLLIN)
        # blocked by the master around the fork: from now on they reach our handlers
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        log.reopen_if_moved()  # a rotation while we started: not into the old file

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
                f"worker {self.wid} (pid {os.getpid()}): {request_line(env)} from "
                f"{env.get('REMOTE_ADDR') or '-'} running for {now - exchange.start:.3f}s"
            )

    def handle_signals(self) -> None:
        SIGNAL_SEEN[0] = False  # (before reading: a later signal sets it again)
        for signum in read_signals(self.signal_r):
            if signum in (signal.SIGINT, signal.SIGQUIT):
                self.leave()
                os._exit(0)
            if signum in (signal.SIGHUP, SIG_STOP):
                self.begin_stop()
            elif signum == SIG_REOPEN_LOG:
                log.reopen()  # the master rotated or reopened the log
            elif signum == SIG_PAUSE:
                self.pause_accepting()
            elif signum == SIG_RESUME:
                if self.paused:
                    self.paused = False
                    self.update_accepting()
                    if not self.stopping:
                        self.scoreboard.worker_ready(self.slot, os.getpid())

    def update_accepting(self) -> None:
        """The one place the listeners enter or leave the epoll set: they are in
        it exactly when the worker is not stopping, not paused by the master and
        not out of descriptors. Idempotent."""
        want = not (self.stopping or self.paused or self.fd_starved)
        if want == self.accepting:
            return
        self.accepting = want
        for lst in self.listeners:
            if want:
                self.epoll.register(lst.fd, EPOLLIN | EPOLLEXCLUSIVE)
            else:
                try:
                    self.epoll.unregister(lst.fd)
                except OSError:
                    pass  # already closed

    def begin_stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.stop_deadline = self.now + self.cfg.worker_reload_mercy
        self.update_accepting()
        for lst in self.listeners:
            # the listen queue's clients are served, not reset when the port closes
            # (taken without reading: a connection served at once lets its client
            # come back to the queue, and the drain would never see it empty)
            while self.accept(lst, serve=False) == ACCEPT_BATCH:
                pass  # a whole batch: there may be more (fewer: the queue is empty)
            lst.sock.close()

    # -- the loop ------------------------------------------------------------------

    def run_forever(self) -> None:
        self.setup_signals()
        self.update_accepting()
        say_ready(self)
        self.scoreboard.worker_ready(self.slot, os.getpid())
        runtime = api.current()
        usignals = runtime.signals if runtime is not None and runtime.signals.sock else None
        if usignals is not None:  # uWSGI signals from the master (uwsgi.register_signal)
            self.epoll.register(usignals.sock.fileno(), EPOLLIN)
            self.usignals = usignals
        self.next_sweep = time.monotonic() + 1.0
        try:
            while True:
                self.turn(1.0)
                if self.fd_episode and self.accepting:
                    self.end_fd_episode()
                if self.recycle_reason is not None and not self.stopping:
                    self.recycle()
                if self.stopping and (not self.conns or self.now > self.stop_deadline):
                    break
        except Exception:
            log(f"worker {self.wid} (pid {os.getpid()}) internal error:\n{traceback.format_exc()}")
            os._exit(1)
        self.log_timeouts()
        self.leave()
        os._exit(self.exit_code)

    def turn(self, timeout: float) -> None:
        """One wait on the epoll set (up to ``timeout`` seconds) and what it
        reported: the loop's body, also run nested by ``wait_drained``."""
        pool = self.pool
        if pool is None:
            events = self.epoll.poll(timeout)
        else:  # while awake, the app threads' news needs no wake-up (appthreads)
            events = self.epoll.poll(timeout if pool.loop_sleeps() else 0)
            pool.loop_woke()
        self.now = now = time.monotonic()
        if now >= self.next_sweep:
            # before handling the events: a connection whose bytes are
            # waiting (while the app ran for another) is not idle
            self.next_sweep = now + 1.0
            self.sweep({fd for fd, _ in events})
        conns = self.conns
        by_fd = self.by_fd
        ready_listeners = None
        pool_fired = False
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
                # accepted after the other events: a new connection is served
                # at once, so a signal of the same wake-up (stop, reopen the
                # log, pause) comes first, as it did before
                if ready_listeners is None:
                    ready_listeners = [by_fd[fd]]
                else:
                    ready_listeners.append(by_fd[fd])
            elif fd == self.signal_r:
                self.handle_signals()
            elif pool is not None and fd == pool.efd:
                pool_fired = True
            elif self.usignals is not None and fd == self.usignals.sock.fileno():
                self.usignals.on_readable()
                if self.usignals.sock is None:
                    self.usignals = None
            elif fd in self.readers:
                self.readers[fd]()
        if pool is not None and (pool_fired or pool.news):
            threads_done(self, pool_fired)
        if ready_listeners is not None:
            for lst in ready_listeners:
                if self.accepting:
                    self.accept(lst)

    def wait_drained(self, conn: Client, deadline: float) -> bool:
        """A ``write()`` of the app of ``conn`` waits for its client: run the loop
        (nested) until ``conn`` has nothing queued or closed; False at the
        deadline. Past ``MAX_NESTED`` waiting writes, wait on ``conn`` alone."""
        if self.nested >= MAX_NESTED:
            return _wait_alone(conn, deadline)
        self.nested += 1
        try:
            while conn.out and not conn.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.turn(min(left, 1.0))
        finally:
            self.nested -= 1
        return True

    def leave(self) -> None:
        """Asked to stop: the app's exit hooks (``uwsgi.atexit``, ``atexit``) run."""
        runtime = api.current()
        if runtime is not None:
            runtime.exiting()

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

    def accept(self, lst: WorkerListener, serve: bool = True) -> int:
        """Take the waiting connections (up to ``ACCEPT_BATCH``; returns how many)
        and read each at once: a front end has usually written its whole request,
        so it is answered here and never enters the epoll set unless it waits
        (``Connection.rearm``). ``serve`` False: only take them, as a stop does."""
        sock = lst.sock
        conns = self.conns
        unix = lst.unix
        seen = SIGNAL_SEEN
        for taken in range(ACCEPT_BATCH):
            if seen[0] and serve:  # a signal while we ran (preempted, or an app):
                self.handle_signals()  # it comes before the next client
                if not self.accepting:
                    return taken
            try:
                fd, addr = sock._accept()
            except BlockingIOError:
                if self.fd_episode:
                    self.fds_again()  # everything waiting was accepted
                return taken
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    self.out_of_fds(exc)
                return taken
            fcntl(fd, F_SETFL, NONBLOCK_FLAGS)  # one syscall: a new socket is O_RDWR
            if unix:
                conn = Connection(fd, self, lst, NO_ADDRESS)
            else:
                setnodelay(fd)
                conn = Connection(fd, self, lst, (addr[0], str(addr[1])))
            conns[fd] = conn
            if serve:
                conn.on_readable()
                # the app may have run: the next connection's deadlines count from now
                self.now = time.monotonic()
            if not conn.closed and conn.mask < 0:
                conn.rearm()  # nothing to read yet, or more to come: wait in epoll
        return ACCEPT_BATCH

    def pause_accepting(self) -> None:
        """The master's ``p`` (pause): serve the connections we have, accept none
        (new ones wait in the listen queue) until resumed."""
        if not self.paused:
            self.paused = True
            self.update_accepting()
            self.scoreboard.stopping(self.slot)

    def out_of_fds(self, exc: OSError) -> None:
        """EMFILE: stop accepting until a connection closes or a second passed
        (never spin); logged once per episode (until an accept succeeds)."""
        if not self.fd_episode:
            log(out_of_fds_line(f"worker {self.wid} (pid {os.getpid()})", exc))
        self.fd_episode += 1
        self.fd_starved = True
        self.update_accepting()

    def fds_again(self) -> None:
        """After EMFILE, every waiting connection was accepted: the episode is over."""
        log(fds_again_line(f"worker {self.wid} (pid {os.getpid()})", self.fd_episode))
        self.fd_episode = 0

    def end_fd_episode(self) -> None:
        """Accepting again after EMFILE: the episode ends with an accept that finds
        nothing waiting. Accept was paused, and the queue may have emptied
        meanwhile (an accept fails with EMFILE even with nothing waiting), so no
        wake-up would come for it: try each listener now."""
        for lst in self.listeners:
            if self.fd_episode and self.accepting:
                self.accept(lst)

    def register(self, fd: int, mask: int) -> None:
        self.epoll.register(fd, mask)

    def add_reader(self, fd: int, handler) -> None:
        """Poll ``fd`` for reading; the loop calls ``handler()`` when it is readable."""
        self.readers[fd] = handler
        self.epoll.register(fd, EPOLLIN)

    def modify(self, fd: int, mask: int) -> None:
        try:
            self.epoll.modify(fd, mask)
        except OSError:
            pass

    def forget(self, conn: Client) -> None:
        """A connection is closing (its fd is closed right after: that takes it
        out of the epoll set, no unregister needed)."""
        self.conns.pop(conn.fd, None)
        if self.fd_starved:
            self.fd_starved = False
            self.update_accepting()

    def sweep(self, active: set[int]) -> None:
        """Close connections past their deadline (socket-timeout, keep-alive),
        except those in ``active`` (they have events to handle now)."""
        if self.autoreload:
            report_modules(self)
        if self.fd_starved:
            # paused by EMFILE with no connection of ours to free a descriptor
            # (the app holds them): try again once a second, never in a loop
            self.fd_starved = False
            self.update_accepting()
        now = self.now
        if self.guard is not None and self.recycle_reason is None:
            self.recycle_reason = self.guard.expired(now)
        if self.websockets is not None:
            self.websockets.sweep(now)
        if self.rotate_tickets is not None:
            self.rotate_tickets(self.listeners, now)
        for conn in list(self.conns.values()):
            if conn.closed or conn.fd in active:
                continue
            writing = conn.out or conn.awaiting_write
            if conn.current is not None and not writing:
                continue  # the app is producing (threads) or waiting: not the client's fault
            if (
                self.stopping
                and not conn.in_request
                and not writing
                and not conn.ready
                and conn.idle_since != NO_REQUEST_YET  # (a first request: its deadline)
            ):
                idle = now - conn.idle_since >= IDLE_CLOSE_WHEN_DRAINING
                if idle and not bytes_waiting(conn.fd):  # (a request on its way: served)
                    conn.close()
                continue
            if now > conn.deadline:
                if writing:
                    kind = "write"
                else:
                    kind = timeout_kind(conn.in_request, conn.got_head, conn.idle_since)
                self.timeouts[kind] += 1
                conn.close()


def _wait_alone(conn: Client, deadline: float) -> bool:
    """Wait for ``conn``'s socket alone (the worker waits with it); False at the deadline."""
    poller = select.poll()
    poller.register(conn.fd, select.POLLOUT)
    while conn.out and not conn.closed:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            return False
        conn.flush()
    return True
