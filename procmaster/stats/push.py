"""Stats pushers: ``stats-push = statsd:HOST:PORT[,PREFIX]`` and
``carbon = HOST:PORT``, the master sending its numbers over UDP at a fixed
frequency, under uWSGI's metric names.

Theory of operation
-------------------
``Pushers`` sits in the master's loop like a timer: ``deadline()`` says when the
next push is due (the loop's select waits no longer), ``tick(now)`` sends what is
due. A push reads the same ``StatsSource`` as the stats server (scoreboard slots,
``/proc`` for memory, ``TCP_INFO`` for the accept queues) and sends it on
non-blocking sockets (statsd: UDP datagrams; carbon: a TCP connection driven by
the master's selector): a collector that is down, slow or unreachable costs a
failed send (said once per episode), never a wait. Addresses are
resolved once, when the pusher is made.

statsd (uWSGI's ``stats_pusher_statsd``): one datagram per metric,
``PREFIX.NAME:VALUE|g`` for gauges, ``|c`` for counters, every
``stats-pusher-default-freq`` seconds (3). The names are uWSGI's metrics
subsystem's: ``worker.N.requests``, ``worker.N.delta_requests``,
``worker.N.failed_requests`` (the app's exceptions), ``worker.N.respawns``,
``worker.N.avg_response_time``, ``worker.N.total_tx``, ``worker.N.rss_size``,
``worker.N.vsz_size``, ``worker.N.running_time``, ``worker.N.core.0.requests``,
``worker.N.core.0.exceptions`` (worker 0 is every worker together, as in uWSGI),
``core.busy_workers``, ``core.idle_workers``, ``core.total_tx``,
``core.total_rss``, ``core.total_vsz``, ``core.avg_response_time``,
``core.total_running_time``, ``socket.N.listen_queue``. A statsd counter is an
increment: procmaster sends each counter's increase since the previous push
(uWSGI 2.0 sent the running total with ``|c``, which statsd adds up at each
flush); ``statsd-all-gauges`` sends every metric as a gauge of its current
value instead, ``statsd-no-workers`` leaves out the ``worker.N`` ones.

carbon (uWSGI's ``carbon`` plugin): graphite's plaintext lines
``ROOT.HOST.ID.NAME VALUE TIMESTAMP``, ROOT ``uwsgi`` (``carbon-root``), HOST
this host's name (dots replaced by ``carbon-hostname-dots``), ID ``carbon-id``
or the first socket's name with dots as ``_``; names ``requests``, ``tx``,
``avg_rt``, ``rss_size``, ``vsz_size``, ``busyness`` (per cent of the interval
spent in requests), ``harakiri``, ``active_workers`` and the same per worker as
``workerN.NAME`` (not with ``carbon-no-workers``); every ``carbon-freq`` seconds
(60); ``rss_size``/``vsz_size`` with ``memory-report``, as uWSGI. Like uWSGI,
each push is one TCP connection to carbon's plaintext port (its default
listener), but never waited for: the connect is started non-blocking, the
master's selector says when the socket is writable and the lines go as it takes
them (``_TcpPush``); a push not connected within ``carbon-timeout`` seconds (3),
or still unsent when the next is due, is dropped and said once. (uWSGI connects
and writes blocking, with that timeout, in the master.)

Must not know: how the numbers are kept (it reads the ``StatsSource``), workers,
reloads.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections.abc import Callable

from ..scoreboard import STATUS_BUSY
from .document import StatsSource, listen_queue, memory

__all__ = ["CarbonPusher", "PushError", "Pushers", "StatsdPusher", "make_pushers"]


class PushError(ValueError):
    """A ``stats-push`` or ``carbon`` value that cannot be used (the message says why)."""


def _address(text: str, what: str, kind: int = socket.SOCK_DGRAM) -> tuple:
    """``HOST:PORT`` resolved once (an IPv6 host in brackets)."""
    host, colon, port = text.strip().rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise PushError(f"{what}: expected HOST:PORT, got {text!r}")
    try:
        info = socket.getaddrinfo(host.strip("[]"), int(port), type=kind)
    except OSError as exc:
        raise PushError(f"{what}: cannot resolve {host!r}: {exc}") from None
    return info[0][0], info[0][4]


class _Udp:
    """A non-blocking datagram socket; failures said once per episode."""

    def __init__(self, target: tuple, what: str, notice: Callable[[str], None]) -> None:
        family, self.addr = target
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.what = what
        self.notice = notice
        self.failing = False

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendto(data, self.addr)
        except OSError as exc:
            if not self.failing:
                self.failing = True
                self.notice(f"{self.what}: cannot send: {exc.strerror or exc}; will retry")
            return False
        if self.failing:
            self.failing = False
            self.notice(f"{self.what}: sending again")
        return True

    def close(self) -> None:
        self.sock.close()


class _TcpPush:
    """One TCP connection per push, never waited for: connected and written as
    the master's selector reports the socket writable (``on_writable``)."""

    def __init__(
        self,
        target: tuple,
        what: str,
        notice: Callable[[str], None],
        sel: selectors.BaseSelector,
        timeout: float,
    ) -> None:
        self.family, self.addr = target
        self.what = what
        self.notice = notice
        self.sel = sel
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.data = b""
        self.expires = 0.0
        self.failing = False

    def start(self, data: bytes, now: float) -> None:
        if self.sock is not None:
            self.fail("the previous push is still unsent")
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self.fail(os.strerror(err))
            return
        self.sock, self.data, self.expires = sock, data, now + self.timeout
        self.sel.register(sock, selectors.EVENT_WRITE, self.on_writable)

    def on_writable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.fail(os.strerror(err))
            return
        try:
            n = sock.send(self.data)
        except BlockingIOError:
            return
        except OSError as exc:
            self.fail(exc.strerror or str(exc))
            return
        self.data = self.data[n:]
        if not self.data:
            self.finish()
            if self.failing:
                self.failing = False
                self.notice(f"{self.what}: sending again")

    def expiry(self) -> float | None:
        return self.expires if self.sock is not None else None

    def expire(self, now: float) -> None:
        if self.sock is not None and now >= self.expires:
            self.fail(f"not sent within {self.timeout:g}s")

    def fail(self, why: str) -> None:
        self.finish()
        if not self.failing:
            self.failing = True
            self.notice(f"{self.what}: {why}: that push is dropped; will retry")

    def finish(self) -> None:
        sock, self.sock, self.data = self.sock, None, b""
        if sock is not None:
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()


def _workers(source: StatsSource) -> list[tuple[int, int, object, int, int]]:
    """(wid, pid, slot, rss, vsz) of the workers that have a slot."""
    out = []
    for wid, pid, slot in source.workers():
        rss, vsz = memory(pid)
        out.append((wid, pid, slot, rss, vsz))
    return out


class StatsdPusher:
    """``stats-push = statsd:HOST:PORT[,PREFIX]``."""

    def __init__(
        self,
        arg: str,
        freq: float,
        notice: Callable[[str], None],
        all_gauges: bool = False,
        no_workers: bool = False,
    ) -> None:
        address, comma, prefix = arg.partition(",")
        self.prefix = (prefix.strip() if comma else "uwsgi") or "uwsgi"
        self.out = _Udp(_address(address, f"stats-push statsd:{arg}"), f"statsd {address}", notice)
        self.freq = freq
        self.all_gauges = all_gauges
        self.no_workers = no_workers
        self.last: dict[str, int] = {}  # counters' values at the previous push

    def metrics(self, source: StatsSource) -> list[tuple[str, int, bool]]:
        """(name, value, is_counter) as uWSGI's metrics subsystem names them."""
        rows: list[tuple[str, int, bool]] = []
        respawns = source.respawns()
        workers = _workers(source)
        total = {"requests": 0, "exceptions": 0, "tx": 0, "rt": 0, "rss": 0, "vsz": 0, "busy": 0}
        per: list[tuple[str, int, bool]] = []
        for wid, _pid, slot, rss, vsz in workers:
            n = slot.requests
            avg = slot.rt_us // n if n else 0
            total["requests"] += n
            total["exceptions"] += slot.exceptions
            total["tx"] += slot.tx
            total["rt"] += slot.rt_us
            total["rss"] += rss
            total["vsz"] += vsz
            total["busy"] += slot.status == STATUS_BUSY
            w = f"worker.{wid}."
            per += [
                (w + "requests", n, True),
                (w + "delta_requests", n, True),
                (w + "failed_requests", slot.exceptions, True),
                (w + "respawns", respawns.get(wid, 1), True),
                (w + "avg_response_time", avg, False),
                (w + "total_tx", slot.tx, True),
                (w + "rss_size", rss, False),
                (w + "vsz_size", vsz, False),
                (w + "running_time", slot.rt_us, True),
                (w + "core.0.requests", n, True),
                (w + "core.0.exceptions", slot.exceptions, True),
            ]
        if not self.no_workers:
            n = total["requests"]
            rows += [
                ("worker.0.requests", n, True),
                ("worker.0.delta_requests", n, True),
                ("worker.0.failed_requests", total["exceptions"], True),
                ("worker.0.total_tx", total["tx"], True),
                ("worker.0.running_time", total["rt"], True),
            ]
            rows += per
        avg_all = total["rt"] // total["requests"] if total["requests"] else 0
        rows += [
            ("core.busy_workers", total["busy"], False),
            ("core.idle_workers", len(workers) - total["busy"], False),
            ("core.total_tx", total["tx"], True),
            ("core.total_rss", total["rss"], False),
            ("core.total_vsz", total["vsz"], False),
            ("core.avg_response_time", avg_all, False),
            ("core.total_running_time", total["rt"], True),
        ]
        for pos, listener in enumerate(source.listeners):
            rows.append((f"socket.{pos}.listen_queue", listen_queue(listener.sock)[0], False))
        return rows

    def push(self, source: StatsSource, now: float) -> None:
        prefix = self.prefix
        last = self.last
        for name, value, counter in self.metrics(source):
            if self.all_gauges or not counter:
                line = f"{prefix}.{name}:{value}|g"
            else:
                # a statsd counter is an increment; a respawned worker starts again at 0
                before = last.get(name, 0)
                last[name] = value
                delta = value - before if value >= before else value
                line = f"{prefix}.{name}:{delta}|c"
            if not self.out.send(line.encode()):
                return  # the rest would fail alike: next time

    def expiry(self) -> None:
        return None

    def expire(self, now: float) -> None:
        pass

    def close(self) -> None:
        self.out.close()


class CarbonPusher:
    """``carbon = HOST:PORT``: graphite plaintext lines, one TCP connection a push."""

    def __init__(
        self,
        arg: str,
        freq: float,
        notice: Callable[[str], None],
        node: str,
        sel: selectors.BaseSelector,
        no_workers: bool = False,
        memory: bool = False,
        timeout: float = 3.0,
    ) -> None:
        target = _address(arg, f"carbon {arg}", socket.SOCK_STREAM)
        self.out = _TcpPush(target, f"carbon {arg}", notice, sel, timeout)
        self.freq = freq
        self.node = node  # ROOT.HOST.ID
        self.no_workers = no_workers
        self.memory = memory  # rss_size and vsz_size, with memory-report
        self.expiry = self.out.expiry
        self.expire = self.out.expire
        self.busy_us: dict[int, int] = {}  # each worker's running time at the previous push

    def lines(self, source: StatsSource, now: float) -> list[str]:
        stamp = int(time.time())
        node = self.node
        out = []
        total = {"requests": 0, "tx": 0, "harakiri": 0, "rss": 0, "vsz": 0, "avg": 0, "busy": 0}
        workers = _workers(source)
        for wid, _pid, slot, rss, vsz in workers:
            avg = slot.rt_us // slot.requests if slot.requests else 0
            before = self.busy_us.get(wid, slot.rt_us)
            self.busy_us[wid] = slot.rt_us
            spent = slot.rt_us - before if slot.rt_us >= before else slot.rt_us
            busyness = min(100, spent * 100 // int(self.freq * 1_000_000))
            total["requests"] += slot.requests
            total["tx"] += slot.tx
            total["harakiri"] += slot.harakiri
            total["rss"] += rss
            total["vsz"] += vsz
            total["avg"] += avg
            total["busy"] += busyness
            if self.no_workers:
                continue
            mem = (("rss_size", rss), ("vsz_size", vsz)) if self.memory else ()
            for name, value in (
                ("requests", slot.requests),
                *mem,
                ("avg_rt", avg),
                ("tx", slot.tx),
                ("busyness", busyness),
                ("harakiri", slot.harakiri),
            ):
                out.append(f"{node}.worker{wid}.{name} {value} {stamp}\n")
        active = len(workers) or 1
        mem = (("rss_size", total["rss"]), ("vsz_size", total["vsz"])) if self.memory else ()
        for name, value in (
            ("requests", total["requests"]),
            *mem,
            ("avg_rt", total["avg"] // active),
            ("tx", total["tx"]),
            ("busyness", total["busy"] // active),
            ("active_workers", len(workers)),
            ("harakiri", total["harakiri"]),
        ):
            out.append(f"{node}.{name} {value} {stamp}\n")
        return out

    def push(self, source: StatsSource, now: float) -> None:
        self.out.start("".join(self.lines(source, now)).encode(), now)

    def close(self) -> None:
        self.out.finish()


def carbon_node(root: str, hostname: str, dots: str | None, ident: str | None, first: str) -> str:
    """``ROOT.HOST.ID`` as uWSGI's carbon plugin builds it."""
    host = hostname.replace(".", dots[0]) if dots else hostname
    ident = ident or first.replace(".", "_")
    root = root.rstrip(".")
    return ".".join(part for part in (root, host, ident) if part)


class Pushers:
    """Every pusher, each with its next due time; the master's loop drives them."""

    def __init__(self, pushers: list, source: StatsSource) -> None:
        self.pushers = pushers
        self.source = source
        start = time.monotonic()
        self.due = [start + p.freq for p in pushers]

    def deadline(self) -> float | None:
        """The next push, or a carbon connection's time running out."""
        due = [d for d in (*self.due, *(p.expiry() for p in self.pushers)) if d is not None]
        return min(due) if due else None

    def tick(self, now: float) -> None:
        for i, pusher in enumerate(self.pushers):
            pusher.expire(now)
            if now >= self.due[i]:
                pusher.push(self.source, now)
                # the next one a whole period later (no burst after a long wait)
                self.due[i] = max(self.due[i] + pusher.freq, now + pusher.freq / 2)

    def close(self) -> None:
        for pusher in self.pushers:
            pusher.close()
        self.pushers, self.due = [], []

    close_in_child = close  # a forked worker drops the master's sockets


def make_pushers(
    cfg, source: StatsSource, log: Callable[[str], None], sel: selectors.BaseSelector
) -> Pushers | None:
    """The pushers ``stats-push`` and ``carbon`` ask for, or None. The values'
    shape was checked with the config; a host that cannot be resolved is a
    warning with the option's file:line (the site serves on without that pusher)."""
    pushers: list = []
    for i, value in enumerate(cfg.stats_push):
        arg = value.partition(":")[2]
        try:
            pushers.append(
                StatsdPusher(
                    arg,
                    float(cfg.stats_pusher_default_freq),
                    log,
                    cfg.statsd_all_gauges,
                    cfg.statsd_no_workers,
                )
            )
        except PushError as exc:
            log(f"warning: {cfg.origin('stats-push', i)}: {exc}: not pushing there")
    first = source.listeners[0].address if source.listeners else "procmaster"
    node = carbon_node(
        cfg.carbon_root, socket.gethostname(), cfg.carbon_hostname_dots, cfg.carbon_id, first
    )
    for i, value in enumerate(cfg.carbon):
        try:
            pushers.append(
                CarbonPusher(
                    value,
                    float(cfg.carbon_freq),
                    log,
                    node,
                    sel,
                    cfg.carbon_no_workers,
                    cfg.memory_report,
                    float(cfg.carbon_timeout),
                )
            )
        except PushError as exc:
            log(f"warning: {cfg.origin('carbon', i)}: {exc}: not pushing there")
    return Pushers(pushers, source) if pushers else None
