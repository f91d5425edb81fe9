"""The scenarios: what wrk sends, and what happens around it while it runs.

Theory of operation
-------------------
A ``Scenario`` is the wrk arguments of a run, the suites of servers it runs
against, and an optional ``around`` hook: a context manager entered while wrk
runs, given the ``Running`` server (its URL, port, processes, how to ask it for
a reload) and the run's duration. Two hooks exist: ``hold_idle`` keeps 1,000
answered keep-alive connections open and silent during the run (and measures
what they cost), ``reloads_during`` asks for three reloads while noting every
process of the server tree.

Must not know
-------------
How servers are configured (servers.py) or started and stopped (runner.py,
processes.py), how wrk is driven, how results are reported.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psutil
from processes import progress, total_rss, tree_of

IDLE_CONNECTIONS = 1000
IDLE_SETUP_TIMEOUT = 10.0  # seconds for the idle connections to get their first answer
RELOADS = 3  # reloads asked for during one reload run
RELOAD_SPACING = 2.0  # seconds between them (less when the run is shorter)
RELOAD_SAMPLE = 0.1  # seconds between looks at the server's processes during reloads


@dataclass
class Running:
    """A started server, as a scenario hook sees it."""

    url: str
    port: int
    expected: bytes = b""  # the body every answer carries
    procs: list[subprocess.Popen] = field(default_factory=list)
    reload: Callable[[], None] | None = None  # asks the server for its reload
    reloads: int = 0  # reloads asked for since the start
    seen: set[int] = field(default_factory=set)  # pids seen while reloads were asked for
    log_path: str = ""

    @property
    def pid(self) -> int:
        """The main process of the server (the first one started)."""
        return self.procs[0].pid

    def tree(self) -> list[psutil.Process]:
        """Every live process of the server: each started process and its descendants."""
        return tree_of(self.procs)


@dataclass(frozen=True)
class Scenario:
    """One wrk run against a server."""

    name: str
    wrk_args: tuple[str, ...] = ()
    path: str = "/"
    measure_rss: bool = False  # record the server's total RSS after this run
    # the client sends "Connection: close": check the server closes, since wrk
    # reuses the connection when the response does not say close
    client_closes: bool = False
    # entered while wrk runs, with the server and wrk's duration
    around: Callable[[Running, float], contextlib.AbstractContextManager[None]] | None = None
    suites: tuple[str, ...] = ("http", "nginx")  # the servers (by suite) it runs against


@dataclass
class IdleStats:
    """What holding idle keep-alive connections cost a server (one round)."""

    opened: int = 0
    answered: int = 0  # got the answer to their one request before the run
    rss_delta: int = 0  # bytes, master + workers, after the answers minus before

    def per_connection(self) -> float | None:
        """Bytes of RSS per answered idle connection."""
        return self.rss_delta / self.answered if self.answered else None


class hold_idle:
    """Scenario hook: open ``n`` connections, send one request on each, read its
    answer, then keep them open and silent (idle keep-alive) while wrk runs.
    A server that serves one connection per worker answers few of them; the
    others wait in its listen queue (non-blocking connects, so nothing hangs)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.stats = IdleStats()
        self.socks: list[socket.socket] = []
        self.running: Running | None = None

    def __call__(self, running: Running, duration: float = 0.0) -> hold_idle:
        fresh = hold_idle(self.n)
        fresh.running = running
        return fresh

    def __enter__(self) -> None:
        running = self.running
        assert running is not None
        expected = running.expected
        before = total_rss(running.tree())
        request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        sel = selectors.DefaultSelector()
        for _ in range(self.n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", running.port))
            self.socks.append(s)
            sel.register(s, selectors.EVENT_WRITE, b"")
        self.stats.opened = len(self.socks)
        deadline = time.monotonic() + IDLE_SETUP_TIMEOUT
        waiting = len(self.socks)
        while waiting and time.monotonic() < deadline:
            for key, ev in sel.select(0.5):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                if ev & selectors.EVENT_WRITE:
                    try:
                        s.send(request)
                    except OSError:
                        sel.unregister(s)
                        waiting -= 1
                        continue
                    sel.modify(s, selectors.EVENT_READ, b"")
                    continue
                try:
                    data = key.data + s.recv(4096)
                except OSError:
                    data = b""
                if not data or data.endswith(expected):
                    sel.unregister(s)
                    waiting -= 1
                    self.stats.answered += data.endswith(expected)
                else:
                    sel.modify(s, selectors.EVENT_READ, data)
        sel.close()
        self.stats.rss_delta = total_rss(running.tree()) - before
        progress(
            f"  {self.stats.answered}/{self.n} idle connections answered before the run;"
            f" RSS +{self.stats.rss_delta / 2**20:.1f} MiB"
        )

    def __exit__(self, *exc: object) -> None:
        for s in self.socks:
            s.close()


def reload_spacing(duration: float) -> float:
    """Seconds between the reloads of a run of ``duration`` seconds."""
    return min(RELOAD_SPACING, duration / (RELOADS + 1))


@contextlib.contextmanager
def reloads_during(running: Running, duration: float) -> Iterator[None]:
    """Ask the server to reload RELOADS times, evenly spaced, while wrk runs."""
    spacing = reload_spacing(duration)
    first = max(0.5, (duration - spacing * (RELOADS - 1)) / 2 - 0.5)
    stop = threading.Event()

    def trigger() -> None:
        start = time.monotonic()
        due = [start + first + i * spacing for i in range(RELOADS)]
        while not stop.wait(RELOAD_SAMPLE):  # note every process that comes and goes
            running.seen.update(p.pid for p in running.tree())
            if due and time.monotonic() >= due[0]:
                due.pop(0)
                assert running.reload is not None
                running.reload()
                running.reloads += 1

    thread = threading.Thread(target=trigger, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(name="keep-alive", measure_rss=True),
    # the same run while 1,000 other keep-alive connections sit idle
    Scenario(
        name="keep-alive+idle",
        measure_rss=True,
        around=hold_idle(IDLE_CONNECTIONS),
        suites=("http",),
    ),
    Scenario(name="close", wrk_args=("-H", "Connection: close"), client_closes=True),
    Scenario(name="reload keep-alive", around=reloads_during, suites=("reload",)),
    Scenario(
        name="reload close",
        wrk_args=("-H", "Connection: close"),
        client_closes=True,
        around=reloads_during,
        suites=("reload",),
    ),
    # threads=1 against threads=4 (bench/apps/threads_app.py, keep-alive): no wait in
    # the app, then 50 ms of it per request; a request may queue behind the others'
    # sleeps for longer than wrk's default 2 s timeout with threads=1, hence 10 s
    Scenario(name="threads hello", suites=("threads",)),
    Scenario(
        name="threads sleep", path="/sleep", wrk_args=("--timeout", "10s"), suites=("threads",)
    ),
)
