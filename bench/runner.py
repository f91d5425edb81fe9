"""The benchmark loop: rounds of servers interleaved, each started, loaded by wrk, stopped.

Theory of operation
-------------------
Every (server, scenario) pair of the same suite is a ``Row``. Each round starts
every server in turn (A B C A B C ...: small shared machines are noisy, so
servers alternate instead of running back to back; a baseline twin and its row
swap places in even rounds), waits until it answers 200
with the expected body, warms it up with a short wrk run, then runs each
scenario: asks once how the server frames the connection (wrk reconnects only
when the *response* says ``Connection: close``), enters the scenario's hook,
runs wrk with probes, and records requests/s, errors, CPU time, RSS, processes
lost or started. The server is stopped by PID whatever happens (``started``).

A server's processes run with ``bench/apps`` as working directory (it holds no
``procmaster`` package, so ``python -m procmaster`` imports the server's
``tree``, put first on ``PYTHONPATH``).

Must not know
-------------
Which servers and scenarios exist (servers.py, scenarios.py: they are passed
in), wrk's output format (wrk.py), how results are laid out (report.py).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from processes import (
    answers,
    free_port,
    log_tail,
    progress,
    spawn,
    stop_tree,
    total_cpu,
    total_rss,
    tree_env,
)
from scenarios import IdleStats, Running, Scenario, hold_idle
from servers import APPS, Server, fill, round_order
from wrk import PROBE_TIMEOUT, WrkResult, run_wrk, wrk_argv

READY_TIMEOUT = 30.0  # seconds a server may take to answer its first request


class ServerFailed(Exception):
    """A server did not start, or died."""


@dataclass
class Row:
    """Everything measured for one server and one scenario, over all rounds."""

    server: Server
    scenario: Scenario
    runs: list[WrkResult] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # bytes, one per round
    lost_workers: int = 0  # server processes gone during a run (crashed or respawned)
    reloads: list[int] = field(default_factory=list)  # reloads asked for, per round
    started: int = 0  # server processes started during the runs (reload runs)
    idle: list[IdleStats] = field(default_factory=list)  # one per round (idle scenarios)
    notes: dict[str, list[int]] = field(default_factory=dict)  # message: rounds

    def note(self, round_no: int, message: str) -> None:
        """Remember something odd seen in a round."""
        self.notes.setdefault(message, []).append(round_no)

    def rps(self) -> list[float]:
        """Requests/s of the runs that produced a figure."""
        return [r.rps for r in self.runs if not r.failed]

    def void(self) -> bool:
        """A run had errors (socket errors, timeouts, non-2xx): its req/s counts
        requests that got no answer, so the row gives no throughput figure."""
        return any(r.socket_errors or r.timeout or r.non2xx for r in self.runs)

    def median(self) -> float | None:
        """Median requests/s, or None without any figure."""
        rps = self.rps()
        return statistics.median(rps) if rps else None

    def cpu_per_request(self) -> float | None:
        """Median over the rounds of the server's CPU microseconds per answered request:
        unlike req/s, hardly moved by other work on a busy machine."""
        per = [r.cpu / r.requests * 1e6 for r in self.runs if r.requests and not r.failed]
        return statistics.median(per) if per else None


def scenario_argv(
    args: argparse.Namespace, duration: float, scenario: Scenario, url: str
) -> list[str]:
    """The wrk command line of one run of ``scenario``."""
    return wrk_argv(
        args.threads, args.connections, duration, scenario.wrk_args, url + scenario.path
    )


def will_close(port: int, path: str, ask_close: bool) -> bool | None:
    """Whether the server's answer ends the connection, as wrk decides it.

    wrk reconnects only when the response says so (``Connection: close``, or
    HTTP/1.0), whatever it sent itself. None if the request failed.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path, headers={"Connection": "close"} if ask_close else {})
        resp = conn.getresponse()
        resp.read()
        return bool(resp.will_close)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_ready(server: Server, running: Running) -> None:
    """Poll until the server answers 200 with the expected body; ServerFailed if it dies."""
    log_path = running.log_path
    deadline = time.monotonic() + READY_TIMEOUT
    while not answers(running.port, server.ready_path, server.expected):
        for proc in running.procs:
            if proc.poll() is not None:
                raise ServerFailed(
                    f"{server.name} exited with {proc.returncode} before answering;"
                    f" log {log_path}:\n{log_tail(log_path)}"
                )
        if time.monotonic() > deadline:
            raise ServerFailed(
                f"{server.name} did not answer within {READY_TIMEOUT:.0f} s;"
                f" log {log_path}:\n{log_tail(log_path)}"
            )
        time.sleep(0.05)


@contextlib.contextmanager
def started(server: Server, logdir: str) -> Iterator[Running]:
    """Start the server, wait until it answers, yield it, stop it whatever happens."""
    port = free_port()
    running = Running(url=f"http://127.0.0.1:{port}", port=port, expected=server.expected)
    log_path = os.path.join(logdir, f"{server.slug}.log")
    # this start's files (nginx.conf, unix socket, touch file, nginx's pid file and logs);
    # inside logdir, so it is kept with the logs when a run failed
    tmp = tempfile.mkdtemp(prefix=f"{server.slug}-", dir=logdir)
    for name, text in server.files:
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(fill(text, port, tmp))
        # an hour old, so that the first touch changes even a whole-second mtime
        os.utime(path, (time.time() - 3600,) * 2)
    if server.reload_signal is not None:
        sig = server.reload_signal
        running.reload = lambda: os.kill(running.pid, sig)
    elif server.reload_touch:
        touched = os.path.join(tmp, server.reload_touch)
        running.reload = lambda: os.utime(touched)
    env = tree_env(server.tree) if server.tree else None
    try:
        with open(log_path, "ab") as log:
            for argv in server.argvs(port, tmp):
                running.procs.append(spawn(argv, log, cwd=APPS, env=env))
        running.log_path = log_path
        wait_ready(server, running)
        yield running
    finally:
        stop_tree(running.procs, server.stop_signal)


def framing_note(scenario: Scenario, closes: bool | None) -> str:
    """What to say when the server frames the connection otherwise than the scenario means."""
    if scenario.client_closes and closes is False:
        return (
            "answers Connection: close without closing the connection,"
            " so wrk kept reusing its connections (not a close run)"
        )
    if not scenario.client_closes and closes:
        return (
            "closes the connection after every response (no keep-alive),"
            " so wrk reconnected for every request"
        )
    return ""


def run_scenario(
    server: Server,
    scenario: Scenario,
    running: Running,
    row: Row,
    args: argparse.Namespace,
    round_no: int,
) -> None:
    """One wrk run of ``scenario`` against the running server, recorded in ``row``."""
    note = framing_note(scenario, will_close(running.port, scenario.path, scenario.client_closes))
    if note:
        row.note(round_no, note)
        progress(f"  {server.name} {scenario.name}: {note}")
    before = {p.pid for p in running.tree()}
    reloads = running.reloads
    running.seen = set(before)
    hook = scenario.around(running, args.duration) if scenario.around else contextlib.nullcontext()
    with hook:
        cpu0 = total_cpu(running.tree())
        res = run_wrk(
            scenario_argv(args, args.duration, scenario, running.url),
            args.duration,
            running.port,
            scenario.path,
            running.expected,
        )
        res.cpu = total_cpu(running.tree()) - cpu0
    if isinstance(hook, hold_idle):
        row.idle.append(hook.stats)
    tree = running.tree()
    if running.reloads > reloads:
        row.reloads.append(running.reloads - reloads)
        # processes started during the run: the new workers
        row.started += len(running.seen | {p.pid for p in tree} - before)
        wait_ready(server, running)  # the last reload may still be under way
        tree = running.tree()
    gone = before - {p.pid for p in tree}
    row.runs.append(res)
    row.lost_workers += len(gone)
    if gone and not scenario.around:
        row.note(round_no, f"{len(gone)} server processes gone during the run")
    if any(p is None for p in res.probes):
        row.note(
            round_no,
            f"new connections opened during the run were not answered within {PROBE_TIMEOUT:g} s",
        )
    if scenario.measure_rss:
        row.rss.append(total_rss(tree))
    progress(
        f"  round {round_no} {server.name:<16} {scenario.name:<11} "
        + (
            f"FAILED: {res.failed}"
            if res.failed
            else f"{res.rps:10.0f} req/s  sock err {res.socket_errors}"
            f" timeout {res.timeout} non-2xx {res.non2xx}"
            f" max {res.max_latency * 1000:.0f} ms"
        )
        + (f"  ({len(gone)} processes gone)" if gone else "")
    )


def bench_server(
    server: Server,
    scenarios: list[Scenario],
    rows: dict[tuple[str, str], Row],
    args: argparse.Namespace,
    logdir: str,
    round_no: int,
) -> None:
    """One round for one server: start it, warm it up, run every scenario, stop it."""
    scenarios = [c for c in scenarios if server.serves(c)]
    if not scenarios:
        return
    args.load_seen.append(os.getloadavg()[0])
    try:
        with started(server, logdir) as running:
            if args.warmup > 0:
                run_wrk(scenario_argv(args, args.warmup, scenarios[0], running.url), args.warmup)
            for scenario in scenarios:
                run_scenario(
                    server, scenario, running, rows[server.name, scenario.name], args, round_no
                )
                for proc in running.procs:
                    if proc.poll() is not None:
                        raise ServerFailed(f"{server.name} exited with {proc.returncode}")
    except ServerFailed as exc:
        progress(f"  round {round_no} {server.name}: {exc}")
        for scenario in scenarios:
            row = rows[server.name, scenario.name]
            if len(row.runs) < round_no:
                row.runs.append(WrkResult(failed=str(exc).splitlines()[0]))
            row.note(round_no, str(exc).splitlines()[0])


def run(args: argparse.Namespace, servers: list[Server], scenarios: list[Scenario]) -> list[Row]:
    """All rounds, servers interleaved within each round; returns the rows (in the
    order of ``servers``, whatever the order of a round)."""
    rows = {(s.name, c.name): Row(s, c) for s in servers for c in scenarios if s.serves(c)}
    args.load_seen = []
    logdir = tempfile.mkdtemp(prefix="bench-logs-")  # the servers' output
    try:
        for round_no in range(1, args.rounds + 1):
            progress(f"round {round_no}/{args.rounds}")
            for server in round_order(servers, round_no):
                bench_server(server, scenarios, rows, args, logdir, round_no)
    finally:
        if any(r.failed for row in rows.values() for r in row.runs):
            progress(f"server logs kept in {logdir}")
        else:
            shutil.rmtree(logdir, ignore_errors=True)
    return [rows[s.name, c.name] for c in scenarios for s in servers if (s.name, c.name) in rows]
