"""The stats document: uWSGI's JSON and the Prometheus text, from what the master
hands in (``StatsSource``).

Theory of operation
-------------------
Every number comes from the scoreboard (the workers' shared-memory slots), the
kernel (``TCP_INFO`` of each listening TCP socket for its accept queue,
``/proc/PID/statm`` for memory) and a few counters of the master (respawns,
reloads); rendering never asks a worker anything, so it costs the request path
nothing. What it reads of the master is a ``StatsSource``: the workers' slots, the
listening sockets, the respawn and reload counters, the start directory and
whether the master is ready (every worker accepting, no stop begun), each a value
or a callable the master hands in (never the master itself).

Must not know: how workers are run, reloads are done, or requests are served;
sockets other than the listeners it measures.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .. import __version__
from ..scoreboard import BUCKETS, STATUS_BUSY, STATUS_IDLE, STATUS_NAMES, STATUS_STOPPING, Slot

__all__ = [
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
    # every configured worker accepts and no stop has begun (readiness probes)
    ready: Callable[[], bool] = field(default=lambda: True)


_PAGE = os.sysconf("SC_PAGE_SIZE")
_TCP_INFO_HEAD = struct.Struct("<8B6I")  # ..., rto, ato, snd_mss, rcv_mss, unacked, sacked


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


def memory(pid: int) -> tuple[int, int]:
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
        rss, vsz = memory(pid)
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
        rss, _vsz = memory(pid)
        out.append(f'procmaster_worker_rss_bytes{{worker="{wid}",pid="{pid}"}} {rss}')
    return ("\n".join(out) + "\n").encode()
