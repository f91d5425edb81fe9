"""The stats server, served by the master: uWSGI's stats JSON, Prometheus
``/metrics`` and the readiness and liveness answers a load balancer or
Kubernetes asks for.

Theory of operation
-------------------
``stats = ADDRESS`` (``host:port``, ``:port``, a unix path, ``@abstract``) binds a
listening socket in the master and registers it in the master's selector, so a
stats client is answered even when every worker is busy. Without ``stats-http``
each connection gets uWSGI's stats JSON document and is closed (what uwsgitop and
uWSGI's exporters read). With ``stats-http`` the request line is read first:
``GET /metrics`` answers the Prometheus text format 0.0.4; ``/ready`` (or
``/readyz``) 200 while every configured worker accepts and no stop has begun,
else 503 (from the first moment of a graceful stop, so the endpoints controller
takes the pod out while the workers finish); ``/live`` (``/livez``,
``/healthz``) 200: the answer is written by the master's loop itself, so it
comes only while that loop turns (a stuck master fails the probe by its
timeout); anything else the JSON document; all with HTTP/1.0 headers.

Sockets are non-blocking: a slow stats client holds an fd, never the master, and
only for ``CLIENT_TIMEOUT``; at most ``MAX_CLIENTS`` are open at once (the oldest
goes for a new one), and a master out of descriptors pauses accepting with one
log line instead of spinning (see ``StatsServer``). A unix stats socket gets
``chmod-socket``'s mode. The listening socket comes from
``procmaster.sockets.bind_stream``; a reload's re-executed master takes it over
(``STATS_FD_ENV``), so no stats client is refused.

Must not know: how workers are run, reloads are done, or requests are served.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections.abc import Callable

from ..ipc import STATS_FD_ENV
from ..logs import log
from ..sockets import bind_stream, sockaddr
from .document import StatsSource, render_json, render_metrics

__all__ = ["PROBES", "StatsServer"]

MAX_REQUEST = 8192
CLIENT_TIMEOUT = 10.0  # seconds a stats client has to send its request and read the answer
MAX_CLIENTS = 32  # stats clients open at once; a new one drops the oldest
ACCEPT_PAUSE = 1.0  # seconds without accepting when there is no descriptor for a client
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
# the probe paths with stats-http, and what each answers
PROBES = {
    "/ready": "ready",
    "/readyz": "ready",
    "/live": "live",
    "/livez": "live",
    "/healthz": "live",
}


class _Client:
    __slots__ = ("sock", "inbuf", "out", "deadline")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.inbuf = b""
        self.out = b""
        self.deadline = deadline


class StatsServer:
    """A listening socket in the master's selector; each event calls a method.

    Bounded whatever clients do: each connection has ``CLIENT_TIMEOUT`` to send its
    request and read the answer (``tick`` drops it after), at most ``MAX_CLIENTS``
    are open (a new one drops the oldest), and when ``accept`` fails for want of
    descriptors (EMFILE, ENFILE) the listening socket leaves the selector for
    ``ACCEPT_PAUSE`` (clients wait in the kernel's queue) instead of waking the
    loop again at once; that episode is said in one log line. The master's loop
    waits at most until ``deadline()`` and calls ``tick`` after each wake-up."""

    def __init__(
        self,
        address: str,
        http: bool,
        source: StatsSource | None,
        sel: selectors.BaseSelector,
        mode: int | None = None,
        document: Callable[[], bytes] | None = None,
    ) -> None:
        """``source``: the master's numbers (JSON, and /metrics with ``http``); or
        ``document``: what every client gets instead (the emperor's stats)."""
        self.address = address
        self.http = http
        self.source = source
        self.document = document if document is not None else lambda: render_json(source)
        self.sel = sel
        family, addr = sockaddr(address)
        self.path = addr if family == socket.AF_UNIX and not addr.startswith("\0") else None
        sock = self._inherited(address)
        if sock is None:
            sock = bind_stream(address, mode=mode)
        elif self.path and mode is not None:
            os.chmod(self.path, mode)  # chmod-socket may have changed with the reload
        sock.setblocking(False)
        self.sock = sock
        self.clients: dict[int, _Client] = {}  # by fd, oldest first
        self.resume_at: float | None = None  # accepting paused (no descriptors) until
        self.starved = False  # in an episode of accept failing for want of descriptors
        sel.register(sock, selectors.EVENT_READ, self.on_accept)

    def _inherited(self, address: str) -> socket.socket | None:
        """The stats socket of our previous image (a reload re-executes the master):
        taken over, so stats clients are never refused during a reload."""
        value = os.environ.pop(STATS_FD_ENV, "")
        fd, _, old_address = value.partition(":")
        if not fd.isdigit():
            return None
        sock = socket.socket(fileno=int(fd))
        if old_address != address:  # the stats address changed in the INI
            sock.close()
            return None
        os.set_inheritable(sock.fileno(), False)
        return sock

    @staticmethod
    def forget_inherited() -> None:
        """No stats in the re-read config: close what the previous image handed over."""
        fd = os.environ.pop(STATS_FD_ENV, "").partition(":")[0]
        if fd.isdigit():
            try:
                os.close(int(fd))
            except OSError:
                pass

    def export(self, environ: dict) -> None:
        """Before the master re-executes itself: hand the socket to the next image."""
        os.set_inheritable(self.sock.fileno(), True)
        environ[STATS_FD_ENV] = f"{self.sock.fileno()}:{self.address}"

    def close_in_child(self) -> None:
        """In a forked worker: drop the listening socket and the clients (the
        master alone serves)."""
        for client in self.clients.values():
            client.sock.close()
        self.clients.clear()
        self.sock.close()

    def close(self) -> None:
        for client in list(self.clients.values()):
            self.drop(client)
        if self.resume_at is None:
            try:
                self.sel.unregister(self.sock)
            except (KeyError, ValueError):
                pass
        self.sock.close()
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def shed(self) -> int:
        """Close every client (the master needs descriptors); how many."""
        clients = list(self.clients.values())
        for client in clients:
            self.drop(client)
        return len(clients)

    # -- deadlines --------------------------------------------------------------------

    def deadline(self) -> float | None:
        """When ``tick`` has something to do: a client's time is up, or accepting
        resumes."""
        first = next(iter(self.clients.values()), None)
        due = [d for d in (self.resume_at, first and first.deadline) if d is not None]
        return min(due) if due else None

    def tick(self, now: float) -> None:
        """Drop the clients whose time is up; accept again after a pause."""
        while self.clients:
            client = next(iter(self.clients.values()))
            if client.deadline > now:
                break
            self.drop(client)
        if self.resume_at is not None and now >= self.resume_at:
            self.resume_at = None
            self.sel.register(self.sock, selectors.EVENT_READ, self.on_accept)

    # -- events -----------------------------------------------------------------------

    def on_accept(self) -> None:
        for _ in range(16):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    self.pause(exc)
                    return
                continue  # ECONNABORTED and the like: that one client is gone
            self.starved = False
            if len(self.clients) >= MAX_CLIENTS:
                self.drop(next(iter(self.clients.values())))
            conn.setblocking(False)
            client = _Client(conn, time.monotonic() + CLIENT_TIMEOUT)
            self.clients[conn.fileno()] = client
            if self.http:
                self.sel.register(conn, selectors.EVENT_READ, lambda c=client: self.on_read(c))
            else:
                self.reply(client, self.document())

    def pause(self, exc: OSError) -> None:
        """No descriptor for a new client: stop accepting for ``ACCEPT_PAUSE``."""
        if not self.starved:
            self.starved = True
            log(
                f"stats server: accept: {exc.strerror}: not accepting stats clients for "
                f"{ACCEPT_PAUSE:g}s at a time until descriptors are free "
                f"({len(self.clients)} stats client(s) open)"
            )
        self.sel.unregister(self.sock)
        self.resume_at = time.monotonic() + ACCEPT_PAUSE

    def on_read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return
        client.inbuf += data
        if b"\r\n\r\n" not in client.inbuf and b"\n\n" not in client.inbuf:
            if len(client.inbuf) > MAX_REQUEST:
                self.drop(client)
            return
        self.sel.unregister(client.sock)
        parts = client.inbuf.split(b"\n", 1)[0].split()
        path = parts[1].decode("latin-1").partition("?")[0] if len(parts) > 1 else "/"
        status = "200 OK"
        if path in PROBES and self.source is not None:
            if PROBES[path] == "live" or self.source.ready():
                body = b"ok\n"
            else:
                status, body = "503 Service Unavailable", b"not ready\n"
            ctype = "text/plain; charset=utf-8"
        elif path == "/metrics" and self.source is not None:
            body = render_metrics(self.source)
            ctype = "text/plain; version=0.0.4; charset=utf-8"
        else:
            body = self.document()
            ctype = "application/json"
        head = (
            f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        self.reply(client, head + body)

    def reply(self, client: _Client, data: bytes) -> None:
        client.out = data
        self.on_write(client, registered=False)

    def on_write(self, client: _Client, registered: bool = True) -> None:
        try:
            while client.out:
                n = client.sock.send(client.out)
                client.out = client.out[n:]
        except BlockingIOError:
            if not registered:
                self.sel.register(client.sock, selectors.EVENT_WRITE, lambda: self.on_write(client))
            return
        except OSError:
            pass
        self.drop(client, registered=registered)

    def drop(self, client: _Client, registered: bool = True) -> None:
        fd = client.sock.fileno()
        if self.clients.get(fd) is client:
            del self.clients[fd]
        if registered:
            try:
                self.sel.unregister(client.sock)
            except (KeyError, ValueError):
                pass
        client.sock.close()
