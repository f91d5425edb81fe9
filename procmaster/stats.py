"""The stats server and Prometheus metrics, served by the master.

Theory of operation
-------------------
``stats = ADDRESS`` (``host:port``, ``:port``, a unix path, ``@abstract``) binds a
listening socket in the master and registers it in the master's selector, so a
stats client is answered even when every worker is busy. Without ``stats-http``
each connection gets uWSGI's stats JSON document and is closed (what uwsgitop and
uWSGI's exporters read). With ``stats-http`` the request line is read first:
``GET /metrics`` answers the Prometheus text format 0.0.4, anything else the JSON
document, both with HTTP/1.0 headers.

Every number comes from the scoreboard (the workers' shared-memory slots), the
kernel (``TCP_INFO`` of each listening TCP socket for its accept queue,
``/proc/PID/statm`` for memory) and a few counters of the master (respawns,
reloads); serving stats never asks a worker anything, so it costs the request path
nothing. Sockets are non-blocking: a slow stats client holds an fd, never the
master, and only for ``CLIENT_TIMEOUT``; at most ``MAX_CLIENTS`` are open at once
(the oldest goes for a new one), and a master out of descriptors pauses accepting
with one log line instead of spinning (see ``StatsServer``). A unix stats socket
gets ``chmod-socket``'s mode.

What it reads of the master is a ``StatsSource``: the workers' slots, the
listening sockets, the respawn and reload counters and the start directory,
each a value or a callable the master hands in (never the master itself). The
listening socket comes from ``procmaster.sockets.bind_stream``; a reload's
re-executed master takes it over (``STATS_FD_ENV``), so no stats client is refused.

Must not know: how workers are run, reloads are done, or requests are served.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from . import __version__
from .ipc import STATS_FD_ENV
from .logs import log
from .scoreboard import BUCKETS, STATUS_BUSY, STATUS_IDLE, STATUS_NAMES, STATUS_STOPPING, Slot
from .sockets import bind_stream, sockaddr

__all__ = [
    "StatsServer",
    "StatsSource",
    "listen_queue",
    "render_json",
    "render_metrics",
    "stats_document",
]


@dataclass
class StatsSource:
    """What the stats read of the master."""

    workers: Callable[[], Iterable[tuple[int, int, Slot]]]  # (wid, pid, slot) by (wid, pid)
    respawns: Callable[[], Mapping[int, int]]  # wid -> times forked
    reloads: Callable[[], int]  # reloads started by this master image
    listeners: Sequence  # objects with ``sock``, ``address``, ``proto``
    cwd: str
    # one dict per shared cache (name, items, max_items, hits, misses, full, ...)
    caches: Callable[[], list[dict]] = field(default=lambda: [])


_PAGE = os.sysconf("SC_PAGE_SIZE")
_TCP_INFO_HEAD = struct.Struct("<8B6I")  # ..., rto, ato, snd_mss, rcv_mss, unacked, sacked
MAX_REQUEST = 8192
CLIENT_TIMEOUT = 10.0  # seconds a stats client has to send its request and read the answer
MAX_CLIENTS = 32  # stats clients open at once; a new one drops the oldest
ACCEPT_PAUSE = 1.0  # seconds without accepting when there is no descriptor for a client
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def listen_queue(sock: socket.socket) -> tuple[int, int]:
    """(connections waiting in the accept queue, its size) for a listening TCP
    socket, from the kernel (``TCP_INFO``: ``tcpi_unacked``/``tcpi_sacked`` of a
    socket in LISTEN state). Unix sockets report (0, 0): Linux does not say."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return 0, 0
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except OSError:
        return 0, 0
    fields = _TCP_INFO_HEAD.unpack_from(raw)
    return fields[12], fields[13]


def _memory(pid: int) -> tuple[int, int]:
    """(rss, vsz) in bytes, from /proc (0, 0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            vsz, rss = fh.read().split()[:2]
        return int(rss) * _PAGE, int(vsz) * _PAGE
    except (OSError, ValueError):
        return 0, 0


def stats_document(source: StatsSource) -> dict:
    """uWSGI's stats server document (same keys and types)."""
    respawns = source.respawns()
    sockets = []
    total_queue = 0
    for listener in source.listeners:
        queue, max_queue = listen_queue(listener.sock)
        total_queue += queue
        sockets.append(
            {
                "name": listener.address,
                "proto": listener.proto,
                "queue": queue,
                "max_queue": max_queue,
                "shared": 0,
                "can_offload": 0,
            }
        )
    workers = []
    busy = 0
    for wid, pid, slot in source.workers():
        rss, vsz = _memory(pid)
        in_request = slot.status == STATUS_BUSY
        busy += in_request
        status = STATUS_NAMES.get(slot.status, "idle")
        if status in ("starting", "free"):
            status = "cheap" if status == "free" else "idle"
        workers.append(
            {
                "id": wid,
                "pid": pid,
                "accepting": int(slot.status in (STATUS_IDLE, STATUS_BUSY)),
                "requests": slot.requests,
                "delta_requests": slot.requests,
                "exceptions": slot.exceptions,
                "harakiri_count": slot.harakiri,
                "in_flight": slot.inflight,
                "signals": 0,
                "signal_queue": 0,
                "status": status,
                "rss": rss,
                "vsz": vsz,
                "running_time": slot.rt_us,
                "last_spawn": int(slot.spawned_at),
                "respawn_count": respawns.get(wid, 1),
                "tx": slot.tx,
                "avg_rt": slot.rt_us // slot.requests if slot.requests else 0,
                "apps": [],
                "cores": [
                    {
                        "id": 0,
                        "requests": slot.requests,
                        "static_requests": 0,
                        "routed_requests": 0,
                        "offloaded_requests": 0,
                        "write_errors": 0,
                        "read_errors": 0,
                        "in_request": int(in_request),
                        "vars": [],
                        "req_info": {"request_start": int(slot.request_start)}
                        if in_request
                        else {},
                    }
                ],
            }
        )
    return {
        "version": __version__,
        "listen_queue": total_queue,
        "listen_queue_errors": 0,
        "signal_queue": 0,
        "load": busy + total_queue,
        "pid": os.getpid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cwd": source.cwd,
        "locks": [],
        "sockets": sockets,
        "workers": workers,
        "caches": [
            {
                "name": c["name"],
                "hash": "crc32",
                "hashsize": c["hashsize"],
                "keysize": c["keysize"],
                "max_items": c["max_items"],
                "blocks": c["max_items"],
                "blocksize": c["blocksize"],
                "items": c["items"],
                "hits": c["hits"],
                "miss": c["misses"],
                "full": c["full"],
                "last_modified_at": 0,
            }
            for c in source.caches()
        ],
    }


def render_json(source: StatsSource) -> bytes:
    return json.dumps(stats_document(source)).encode()


def _esc(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(source: StatsSource) -> bytes:
    """Prometheus text exposition format 0.0.4."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    slots = list(source.workers())

    family("procmaster_requests_total", "counter", "Requests served, per worker.")
    for wid, pid, slot in slots:
        out.append(f'procmaster_requests_total{{worker="{wid}",pid="{pid}"}} {slot.requests}')
    family("procmaster_exceptions_total", "counter", "Exceptions raised by the app, per worker.")
    for wid, pid, slot in slots:
        out.append(f'procmaster_exceptions_total{{worker="{wid}",pid="{pid}"}} {slot.exceptions}')
    family("procmaster_requests_in_flight", "gauge", "Requests in flight, per worker.")
    for wid, pid, slot in slots:
        out.append(f'procmaster_requests_in_flight{{worker="{wid}",pid="{pid}"}} {slot.inflight}')
    family("procmaster_responses_total", "counter", "Responses by status class.")
    for i in range(5):
        total = sum(slot.classes[i] for _, _, slot in slots)
        out.append(f'procmaster_responses_total{{status="{i + 1}xx"}} {total}')
    family("procmaster_request_duration_seconds", "histogram", "Time taken by requests.")
    cumulative = 0
    for i, bound in enumerate((*BUCKETS, "+Inf")):
        cumulative += sum(slot.buckets[i] for _, _, slot in slots)
        out.append(f'procmaster_request_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
    rt = sum(slot.rt_us for _, _, slot in slots) / 1e6
    out.append(f"procmaster_request_duration_seconds_sum {rt}")
    out.append(f"procmaster_request_duration_seconds_count {cumulative}")
    family("procmaster_tx_bytes_total", "counter", "Bytes sent to clients.")
    out.append(f"procmaster_tx_bytes_total {sum(slot.tx for _, _, slot in slots)}")
    family("procmaster_workers", "gauge", "Workers by state.")
    states = {"busy": 0, "idle": 0, "pause": 0}
    for _, _, slot in slots:
        if slot.status == STATUS_BUSY:
            states["busy"] += 1
        elif slot.status == STATUS_STOPPING:
            states["pause"] += 1
        else:
            states["idle"] += 1
    for state, n in states.items():
        out.append(f'procmaster_workers{{state="{state}"}} {n}')
    family("procmaster_worker_respawns_total", "counter", "Workers forked, per worker id.")
    for wid, n in sorted(source.respawns().items()):
        out.append(f'procmaster_worker_respawns_total{{worker="{wid}"}} {n}')
    family("procmaster_harakiri_total", "counter", "Workers killed by harakiri.")
    out.append(f"procmaster_harakiri_total {sum(slot.harakiri for _, _, slot in slots)}")
    family("procmaster_reloads_total", "counter", "Reloads started by this master image.")
    out.append(f"procmaster_reloads_total {source.reloads()}")
    family("procmaster_listen_queue", "gauge", "Connections waiting in a socket's accept queue.")
    family_max = []
    for listener in source.listeners:
        queue, max_queue = listen_queue(listener.sock)
        out.append(f'procmaster_listen_queue{{socket="{_esc(listener.address)}"}} {queue}')
        family_max.append((listener.address, max_queue))
    family("procmaster_listen_queue_max", "gauge", "Size of a socket's accept queue.")
    for address, max_queue in family_max:
        out.append(f'procmaster_listen_queue_max{{socket="{_esc(address)}"}} {max_queue}')
    caches = source.caches()
    if caches:
        family("procmaster_cache_items", "gauge", "Items in each shared cache.")
        for c in caches:
            out.append(f'procmaster_cache_items{{cache="{_esc(c["name"])}"}} {c["items"]}')
        for key, what in (
            ("hits", "Cache lookups that found the key."),
            ("misses", "Cache lookups that did not."),
            ("full", "Items refused because the cache was full."),
        ):
            family(f"procmaster_cache_{key}_total", "counter", what)
            for c in caches:
                out.append(f'procmaster_cache_{key}_total{{cache="{_esc(c["name"])}"}} {c[key]}')
    family("procmaster_worker_rss_bytes", "gauge", "Resident memory of each worker.")
    for wid, pid, _ in slots:
        rss, _vsz = _memory(pid)
        out.append(f'procmaster_worker_rss_bytes{{worker="{wid}",pid="{pid}"}} {rss}')
    return ("\n".join(out) + "\n").encode()


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
        parts = client.inbuf.split(b"\r\n", 1)[0].split()
        path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
        if path.partition("?")[0] == "/metrics" and self.source is not None:
            body = render_metrics(self.source)
            ctype = "text/plain; version=0.0.4; charset=utf-8"
        else:
            body = self.document()
            ctype = "application/json"
        head = (
            f"HTTP/1.0 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
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
