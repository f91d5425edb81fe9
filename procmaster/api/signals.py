"""uWSGI's signal framework: numbered signals, their handlers, timers, cron, file monitors.

Theory of operation
-------------------
A uWSGI signal is a number 0..255 with a handler and a *target* (which processes
run it): ``worker``/``""`` (the first idle worker), ``workerN`` (worker N),
``workers`` (every worker), ``active-workers`` (every worker, accepting or not),
``mule``/``mule0`` (whichever mule reads it first), ``muleN`` (mule N), ``mules``
(every mule), ``farm_NAME``/``farmN`` (one mule of that farm) and ``spooler`` (one
spooler process), as uWSGI 2.0 routes them.
Handlers are registered in each process (``register_signal``): with a preloaded
app that happens in the master before the fork, so every worker has the same
table. The master raises signals: for ``uwsgi.signal(n)`` from any process, for
its timers (``add_timer``/``add_rb_timer``: every N seconds), its cron entries
(``add_cron``: minute, hour, day, month, weekday; -1 any, -N every N) and its file
monitors (``add_file_monitor``: a path whose status changed, looked at every
second).

Each worker id has a channel to the master: a ``SOCK_SEQPACKET`` pair made by the
master before the first fork of that id (``Hub.channel``) and kept for the id's
successors. Master to worker: one byte, the signal number. Worker to master:
a request, ``b"S" + n`` (raise), ``b"T" + json`` (a timer, cron or monitor asked
for from a worker, as a lazy app does). The worker's loop reads its end between
requests and runs the handler (``Local.deliver``); a handler's exception is
logged, never fatal.

Mules and spoolers get datagram pairs made once, before any fork
(``Hub.side_channels``): one per mule, one shared by every mule, one per farm,
one shared by every spooler process. The master writes a signal number into its
end; whichever process of that group reads first runs it (``Local.take``), from
a programmed mule's wait, ``mule_get_msg()`` or the spooler's wait between tasks.
The same pairs carry a mule's or a spooler's requests the other way (a mule on its
own pair, a spooler on the spoolers' pair), so ``uwsgi.signal()`` works there too.

Must not know: the worker's loop, the master's loop (each gives a selector or
calls ``tick``), sockets of clients, the reload plan.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from ..daemons import cron_due
from ..logs import log

__all__ = ["Hub", "Local", "cron_due"]

MAX_SIGNAL = 255


def _check(num: object) -> int:
    if not isinstance(num, int) or not 0 <= num <= MAX_SIGNAL:
        raise ValueError(f"uWSGI signal numbers are 0..{MAX_SIGNAL}, not {num!r}")
    return num


class Local:
    """This process's handlers and its end of the channel to the master."""

    def __init__(self) -> None:
        self.handlers: dict[int, tuple[str, Callable[[int], Any]]] = {}
        self.sock: socket.socket | None = None  # a worker's end (None in the master)
        self.hub: Hub | None = None  # the master's hub (None in a worker)
        self.inbox: list[socket.socket] = []  # a mule's or spooler's signal readers
        self.received = -1

    def register(self, num: int, target: str, func: Callable[[int], Any]) -> None:
        _check(num)
        if not callable(func):
            raise TypeError("a uWSGI signal handler must be callable")
        self.handlers[num] = (str(target or ""), func)

    def registered(self, num: int) -> bool:
        return _check(num) in self.handlers

    def free_number(self) -> int:
        for num in range(MAX_SIGNAL + 1):
            if num not in self.handlers:
                return num
        raise ValueError("every uWSGI signal number has a handler")

    def ask(self, kind: bytes, payload: bytes) -> bool:
        """From a worker: ask the master (raise a signal, add a timer ...)."""
        if self.hub is not None:
            self.hub.request(kind + payload, self)
            return True
        if self.sock is None:
            return False
        try:
            self.sock.send(kind + payload)
        except OSError:
            return False
        return True

    def raise_signal(self, num: int) -> None:
        self.ask(b"S", bytes([_check(num)]))

    def add(self, what: str, num: int, *args: object) -> None:
        self.ask(b"T", json.dumps([what, _check(num), *args]).encode())

    def deliver(self, num: int) -> None:
        """Run the handler of ``num`` here (a worker, between requests)."""
        self.received = num
        entry = self.handlers.get(num)
        if entry is None:
            log(f"pid {os.getpid()}: uWSGI signal {num} has no handler here")
            return
        try:
            entry[1](num)
        except Exception:
            log(
                f"pid {os.getpid()}: the handler of uWSGI signal {num} failed:\n"
                f"{traceback.format_exc().rstrip()}"
            )

    def take(self, sock: socket.socket) -> None:
        """A mule's or spooler's signal reader is readable: run what it holds (if
        another process of the group took it first, nothing)."""
        try:
            data = sock.recv(64)
        except OSError:  # BlockingIOError included: another reader was faster
            return
        for num in data:
            self.deliver(num)

    def on_readable(self) -> None:
        """A worker's channel is readable: run what the master sent."""
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(64)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # the master is gone (or re-executed): no more signals
                self.sock.close()
                self.sock = None
                return
            for num in data:
                self.deliver(num)


class Hub:
    """The master's side: channels per worker id, routing, timers, cron, monitors."""

    def __init__(self, local: Local, workers: Callable[[], Iterable[tuple[int, bool]]]) -> None:
        self.local = local
        self.workers = workers  # (worker id, idle?) of the current workers
        self.channels: dict[int, tuple[socket.socket, socket.socket]] = {}
        self.register_fd: Callable[[socket.socket, Callable[[], None]], None] | None = None
        # mules', farms' and spoolers' pairs: (master's end, children's end)
        self.mule_pairs: dict[int, tuple[socket.socket, socket.socket]] = {}
        self.farm_pairs: dict[str, tuple[socket.socket, socket.socket]] = {}
        self.any_mule: tuple[socket.socket, socket.socket] | None = None
        self.spoolers: tuple[socket.socket, socket.socket] | None = None
        # (signal, period) -> [next due, raises left (0: no end)]
        self.timers: dict[tuple[int, float], list] = {}
        self.crons: dict[tuple[int, tuple[int, ...]], int] = {}  # -> last minute fired
        self.monitors: dict[tuple[int, str], tuple | None] = {}  # -> last status seen
        self.next_check = time.monotonic() + 1.0

    # -- channels -------------------------------------------------------------------

    def channel(self, wid: int) -> None:
        """Before forking worker ``wid``: its channel exists."""
        if wid in self.channels:
            return
        master_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        master_end.setblocking(False)
        worker_end.setblocking(False)
        self.channels[wid] = (master_end, worker_end)
        if self.register_fd is not None:
            self.register_fd(master_end, lambda: self._from_worker(master_end))

    def side_channels(self, mules: int, farms: Iterable[str], spoolers: bool) -> None:
        """Once, in the master, before any fork: the mules' and spoolers' pairs."""
        self.mule_pairs = {mid: _pair() for mid in range(1, mules + 1)}
        self.farm_pairs = {name: _pair() for name in farms}
        self.any_mule = _pair() if mules else None
        self.spoolers = _pair() if spoolers else None

    def _side(self) -> list[tuple[socket.socket, socket.socket]]:
        pairs = [*self.mule_pairs.values(), *self.farm_pairs.values()]
        return pairs + [p for p in (self.any_mule, self.spoolers) if p is not None]

    def attach(self, register_fd: Callable[[socket.socket, Callable[[], None]], None]) -> None:
        """The master's selector: each channel's end is read there."""
        self.register_fd = register_fd
        for master_end, _ in [*self.channels.values(), *self._side()]:
            register_fd(master_end, lambda m=master_end: self._from_worker(m))

    def enter_worker(self, wid: int) -> None:
        """In worker ``wid`` just after the fork: keep its own end, close the rest."""
        self._leave(keep={self.channels[wid][1]} if wid in self.channels else set())
        if wid in self.channels:
            self.local.sock = self.channels[wid][1]
        self.channels = {}

    def enter_mule(self, mule_id: int, farms: Iterable[str]) -> None:
        """In mule ``mule_id``: its own pair (its requests go there), the shared one,
        its farms'; every other end closed."""
        own = self.mule_pairs[mule_id][1]
        inbox = [own] + [self.farm_pairs[n][1] for n in farms if n in self.farm_pairs]
        inbox += [self.any_mule[1]] if self.any_mule is not None else []
        self._leave(keep=set(inbox))
        self.local.sock = own
        self.local.inbox = inbox

    def enter_spooler(self) -> None:
        """In a spooler process: the spoolers' shared pair, every other end closed."""
        keep = self.spoolers[1] if self.spoolers is not None else None
        self._leave(keep={keep} if keep is not None else set())
        self.local.sock = keep
        self.local.inbox = [keep] if keep is not None else []

    def _leave(self, keep: set[socket.socket]) -> None:
        """In a child: close every end of the master's but those in ``keep``."""
        for master_end, child_end in [*self.channels.values(), *self._side()]:
            master_end.close()
            if child_end not in keep:
                child_end.close()
        self.local.hub = None

    def _from_worker(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(4096)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            self.request(data, None)

    def request(self, data: bytes, origin: Local | None) -> None:
        kind, payload = data[:1], data[1:]
        if kind == b"S" and payload:
            self.route(payload[0])
        elif kind == b"T":
            try:
                what, num, *args = json.loads(payload)
                self.add(what, int(num), *args)
            except (ValueError, TypeError) as exc:
                log(f"uWSGI signal framework: a request the master cannot read ({exc})")

    # -- routing --------------------------------------------------------------------

    def route(self, num: int) -> None:
        entry = self.local.handlers.get(num)
        target = entry[0] if entry is not None else ""
        if target.startswith(("mule", "farm", "spooler")):
            self._route_side(num, target)
            return
        workers = list(self.workers())
        if target in ("workers", "active-workers"):
            wids = [wid for wid, _ in workers]
        elif target.startswith("worker") and target[6:].isdigit() and int(target[6:]) > 0:
            wids = [int(target[6:])]
        elif target in ("", "worker", "worker0"):
            idle = [wid for wid, is_idle in workers if is_idle]
            wids = (idle or [wid for wid, _ in workers])[:1]
        else:
            log(
                f"uWSGI signal {num}: target {target!r} is not run by procmaster "
                "(targets: worker, workerN, workers, active-workers, mule, muleN, mules, "
                "farm_NAME, farmN, spooler)"
            )
            return
        for wid in wids:
            chan = self.channels.get(wid)
            if chan is None:
                continue
            try:
                chan[0].send(bytes([num]))
            except OSError as exc:
                log(f"uWSGI signal {num}: cannot reach worker {wid}: {exc}")

    def _route_side(self, num: int, target: str) -> None:
        """To mules, a farm or the spoolers (uWSGI 2.0's targets of those names)."""
        farms = list(self.farm_pairs)
        if target == "mules":
            pairs = list(self.mule_pairs.values())
        elif target in ("mule", "mule0"):
            pairs = [self.any_mule]
        elif target.startswith("mule") and target[4:].isdigit():
            pairs = [self.mule_pairs.get(int(target[4:]))]
        elif target.startswith("farm_"):
            pairs = [self.farm_pairs.get(target[5:])]
        elif (
            target.startswith("farm") and target[4:].isdigit() and 0 < int(target[4:]) <= len(farms)
        ):
            pairs = [self.farm_pairs[farms[int(target[4:]) - 1]]]
        elif target == "spooler":
            pairs = [self.spoolers]
        else:
            pairs = [None]
        if not pairs or None in pairs:
            log(f"uWSGI signal {num}: invalid signal target {target!r} (no such process here)")
            return
        for master_end, _ in pairs:  # type: ignore[misc]
            try:
                master_end.send(bytes([num]))
            except OSError as exc:
                log(f"uWSGI signal {num}: cannot reach {target}: {exc}")

    # -- timers, cron, monitors -----------------------------------------------------

    def add(self, what: str, num: int, *args: Any) -> None:
        now = time.monotonic()
        if what == "timer":
            period = float(args[0])
            if period <= 0:
                raise ValueError("a uWSGI timer needs a period above 0 seconds")
            iterations = int(args[1]) if len(args) > 1 else 0
            self.timers.setdefault((num, period), [now + period, iterations])
        elif what == "cron":
            spec = tuple(int(a) for a in args[:5])
            self.crons.setdefault((num, spec), -1)
        elif what == "monitor":
            path = str(args[0])
            self.monitors.setdefault((num, path), _status(path))
        else:
            raise ValueError(f"unknown signal source {what!r}")

    def tick(self) -> None:
        now = time.monotonic()
        for key, entry in list(self.timers.items()):
            due, left = entry
            if now >= due:
                num, period = key
                entry[0] = max(due + period, now + period / 2)
                if left:
                    entry[1] = left - 1
                    if left == 1:
                        del self.timers[key]
                self.route(num)
        if now >= self.next_check:
            self.next_check = now + 1.0
            tm = time.localtime()
            minute = int(time.time() // 60)
            for key, last in list(self.crons.items()):
                if last != minute and cron_due(key[1], tm):
                    self.crons[key] = minute
                    self.route(key[0])
            for key, seen in list(self.monitors.items()):
                status = _status(key[1])
                if status != seen:
                    self.monitors[key] = status
                    self.route(key[0])

    def next_deadline(self) -> float | None:
        due = [entry[0] for entry in self.timers.values()]
        if self.crons or self.monitors:
            due.append(self.next_check)
        return min(due) if due else None


def _pair() -> tuple[socket.socket, socket.socket]:
    master_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    master_end.setblocking(False)
    child_end.setblocking(False)
    return master_end, child_end


def _status(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)
