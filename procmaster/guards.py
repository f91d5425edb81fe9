"""Worker guards: the limits that end or replace a worker, and adaptive workers.

Theory of operation
-------------------
Two halves, one per side of the fork:

* ``MasterGuards`` runs in the master's loop (``check`` after every wake-up,
  ``next_deadline`` for its selector timeout). It is handed ``GuardHooks``
  (the live workers, each able to say what it runs from its scoreboard slot and
  to count a harakiri kill there; how many workers are wanted; how to change
  that; whether cheaper must wait), never the master itself:

  - **harakiri**: a request (of any thread: a scoreboard *core*) running longer
    than ``harakiri`` seconds gets its worker killed: ``HARAKIRI`` is logged with
    the pid, the request and how long it ran; with ``harakiri-verbose`` the worker
    first gets ``SIG_DUMP_STACKS`` (a ``faulthandler`` dump of every thread's stack to
    the log) and ``HARAKIRI_GRACE`` seconds to write it, then SIGKILL. Each kill
    is counted in the worker's slot (``harakiri_count`` in the stats). Old
    workers draining after a reload are watched too. The master
    wakes for this only at real deadlines: after a check, the next one is at the
    earliest ``start + harakiri`` of the busy cores, or ``harakiri`` seconds later
    when none is busy (a request starting after a check cannot be late before
    then). So detection is exact to the millisecond and an idle master sleeps.
  - **evil-reload-on-rss / -as**: the master measures each worker (psutil) once
    a second and SIGKILLs one over the limit.
  - **cheaper** (uWSGI's ``spare`` algorithm), once a second: when every worker
    has been busy for ``cheaper-overload`` seconds, ``cheaper-step`` more (up to
    ``workers``); when more than one has been idle that long, one fewer (down to
    ``cheaper``). Workers are added and stopped as SIGTTIN/SIGTTOU do.

* ``WorkerGuard`` runs in a worker after each request and on its 1 s sweep:
  ``max-requests`` (+ ``max-requests-delta`` × worker id), ``reload-on-rss``,
  ``reload-on-as`` (psutil) and ``max-worker-lifetime`` (+ its delta × worker id)
  return a reason; the
  worker then stops gracefully (finishing what it has) and exits with
  ``EXIT_RECYCLE``, which the master answers with an immediate respawn (no
  crash back-off).

Must not know: HTTP, WSGI, protocols, how a worker serves.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from .ipc import SIG_DUMP_STACKS
from .logs import log
from .process import send_signal

__all__ = [
    "GuardHooks",
    "GuardedWorker",
    "MasterGuards",
    "WorkerGuard",
    "initial_workers",
    "worker_guard",
]

HARAKIRI_GRACE = 0.3  # seconds between the stack dump and SIGKILL
TICK = 1.0  # seconds between the once-a-second checks (evil-reload-*, cheaper)
MB = 1024 * 1024


def initial_workers(cfg) -> int:
    """How many workers to start: ``processes``, or in cheaper mode
    ``cheaper-initial`` (else ``cheaper``), at most ``processes``."""
    maximum = cfg.processes
    cheaper = cfg.cheaper
    if cheaper <= 0:
        return maximum
    start = cfg.cheaper_initial or cheaper
    return max(1, min(start, maximum))


class GuardedWorker(Protocol):
    """What the guards read of a worker."""

    wid: int
    pid: int
    stop_sent: float

    def busy(self) -> list[tuple[int, float, str]]:
        """The requests it runs: (core, start time, description)."""

    def count_harakiri(self) -> None:
        """Count a harakiri kill in its scoreboard slot."""


class GuardHooks(NamedTuple):
    """What the master hands its guards."""

    workers: Callable[[], Iterable[GuardedWorker]]  # every live worker, old ones too
    current: Callable[[], list[GuardedWorker]]  # the workers of the current generation
    processes: Callable[[], int]  # how many workers are wanted now
    change_workers: Callable[[int], None]  # one more (+1) or one fewer (-1)
    resting: Callable[[], bool]  # stopping or reloading: cheaper waits
    threads: int = 1  # cores per worker (harakiri names the thread)


class MasterGuards:
    """The master's half (see the module docstring)."""

    def __init__(self, cfg, hooks: GuardHooks) -> None:
        self.hooks = hooks
        self.harakiri = cfg.harakiri
        self.verbose = cfg.harakiri_verbose
        self.evil_rss = cfg.evil_reload_on_rss
        self.evil_as = cfg.evil_reload_on_as
        self.cheaper = cfg.cheaper
        self.maximum = cfg.processes
        self.step = max(cfg.cheaper_step, 1)
        # 0 is meaningless (uWSGI divides by it): the default then
        self.overload = max(cfg.cheaper_overload or 3, TICK)
        algo = cfg.get("cheaper-algo")
        if self.cheaper and algo and algo != "spare":
            log(f"warning: cheaper-algo {algo!r} is not supported: using 'spare'")
        now = time.monotonic()
        self.next_harakiri = now + self.harakiri if self.harakiri else 0.0
        self.next_tick = now + TICK if (self.evil_rss or self.evil_as or self.cheaper) else 0.0
        self.killing: dict[int, float] = {}  # pid -> when to SIGKILL (after the stack dump)
        self.all_busy_since = 0.0
        self.idle_since = 0.0

    def next_deadline(self) -> float | None:
        """The earliest monotonic time ``check`` has something to do, or None."""
        times = [t for t in (self.next_harakiri, self.next_tick) if t]
        times.extend(self.killing.values())
        return min(times) if times else None

    def check(self) -> None:
        now = time.monotonic()
        if self.killing:
            self.finish_kills(now)
        if self.next_harakiri and now >= self.next_harakiri:
            self.check_harakiri(now)
        if self.next_tick and now >= self.next_tick:
            self.next_tick = now + TICK
            if self.evil_rss or self.evil_as:
                self.check_memory()
            if self.cheaper and not self.hooks.resting():
                self.check_cheaper(now)

    # -- harakiri ------------------------------------------------------------------

    def check_harakiri(self, now: float) -> None:
        limit = self.harakiri
        wall = time.time()
        next_check = now + limit
        for proc in list(self.hooks.workers()):
            if proc.pid in self.killing:
                continue
            for core, start, desc in proc.busy():
                ran = wall - start
                if ran >= limit:
                    self.harakiri_kill(proc, core, desc, ran, now)
                    break
                next_check = min(next_check, now + (limit - ran))
        self.next_harakiri = max(next_check, now + 0.001)

    def harakiri_kill(
        self, proc: GuardedWorker, core: int, desc: str, ran: float, now: float
    ) -> None:
        thread = f" thread {core}" if self.hooks.threads > 1 else ""
        log(
            f"HARAKIRI: worker {proc.wid} (pid {proc.pid}){thread} request "
            f"{desc or '(unknown)'} ran {ran:.3f}s (harakiri {self.harakiri:g}s): killing it"
        )
        proc.count_harakiri()
        if self.verbose:
            if not send_signal(proc.pid, SIG_DUMP_STACKS):
                return
            self.killing[proc.pid] = now + HARAKIRI_GRACE
        else:
            send_signal(proc.pid, signal.SIGKILL)

    def finish_kills(self, now: float) -> None:
        alive = {proc.pid for proc in self.hooks.workers()}
        for pid, when in list(self.killing.items()):
            if pid not in alive:
                del self.killing[pid]
            elif now >= when:
                del self.killing[pid]
                send_signal(pid, signal.SIGKILL)

    # -- evil-reload-on-rss / -as -------------------------------------------------------

    def check_memory(self) -> None:
        import psutil  # lazy: only evil-reload-on-rss/-as measure memory

        for proc in list(self.hooks.workers()):
            if proc.stop_sent:
                continue
            try:
                mem = psutil.Process(proc.pid).memory_info()
            except psutil.Error:
                continue
            for what, used, limit in (
                ("rss", mem.rss, self.evil_rss),
                ("as", mem.vms, self.evil_as),
            ):
                if limit and used > limit:
                    log(
                        f"worker {proc.wid} (pid {proc.pid}) {what} {used / MB:.0f} MB is over "
                        f"evil-reload-on-{what} ({limit / MB:.0f} MB): killing it"
                    )
                    send_signal(proc.pid, signal.SIGKILL)
                    break

    # -- cheaper (spare) ---------------------------------------------------------------

    def check_cheaper(self, now: float) -> None:
        hooks = self.hooks
        workers = [w for w in hooks.current() if not w.stop_sent]
        busy = sum(1 for w in workers if w.busy())
        idle = len(workers) - busy
        processes = hooks.processes()
        if workers and idle == 0 and processes < self.maximum:
            self.idle_since = 0.0
            self.all_busy_since = self.all_busy_since or now
            if now - self.all_busy_since >= self.overload - 0.01:
                self.all_busy_since = 0.0
                add = min(self.step, self.maximum - processes)
                log(
                    f"cheaper: all {len(workers)} worker(s) busy for {self.overload:g}s: "
                    f"spawning {add} more"
                )
                for _ in range(add):
                    hooks.change_workers(+1)
        elif idle > 1 and processes > self.cheaper:
            self.all_busy_since = 0.0
            self.idle_since = self.idle_since or now
            if now - self.idle_since >= self.overload - 0.01:
                self.idle_since = 0.0
                log(f"cheaper: {idle} worker(s) idle for {self.overload:g}s: stopping one")
                hooks.change_workers(-1)
        else:
            self.all_busy_since = self.idle_since = 0.0


class WorkerGuard:
    """A worker's half: ``after_request`` / ``expired`` return why the worker
    should be replaced, or None."""

    def __init__(self, cfg, wid: int) -> None:
        max_requests = cfg.max_requests
        if max_requests:
            max_requests += cfg.max_requests_delta * wid
        self.max_requests = max_requests
        self.rss = cfg.reload_on_rss
        self.vms = cfg.reload_on_as
        lifetime = cfg.max_worker_lifetime
        if lifetime:
            lifetime += cfg.max_worker_lifetime_delta * wid
        self.end_of_life = time.monotonic() + lifetime if lifetime else 0.0
        self.lifetime = lifetime
        self.process = None
        if self.rss or self.vms:
            import psutil  # lazy: only reload-on-rss/-as measure memory

            self.process = psutil.Process()

    def after_request(self, requests: int) -> str | None:
        if self.max_requests and requests >= self.max_requests:
            return f"max-requests: served {requests} requests"
        if self.process is not None:
            mem = self.process.memory_info()
            if self.rss and mem.rss > self.rss:
                return f"reload-on-rss: rss {mem.rss / MB:.0f} MB over {self.rss / MB:.0f} MB"
            if self.vms and mem.vms > self.vms:
                return (
                    f"reload-on-as: address space {mem.vms / MB:.0f} MB over {self.vms / MB:.0f} MB"
                )
        return None

    def expired(self, now: float) -> str | None:
        if self.end_of_life and now >= self.end_of_life:
            return f"max-worker-lifetime: {self.lifetime:g}s reached"
        return None


def worker_guard(cfg, wid: int) -> WorkerGuard | None:
    """The worker's guard, or None when no limit is set (nothing on the request path)."""
    names = ("max-requests", "reload-on-rss", "reload-on-as", "max-worker-lifetime")
    if not any(cfg.get(name) for name in names):
        return None
    return WorkerGuard(cfg, wid)
