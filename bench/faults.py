"""Faults and a soak: procmaster under load while its workers are killed, stopped,
crash, run out of memory or of disk, and a long mixed run through nginx.

Usage (from the checkout; needs wrk, and nginx + Flask for the soak; ``fulldisk``
mounts a small tmpfs, so it needs root)::

    python bench/faults.py kill [--duration 60]      # SIGKILL a random worker every second
    python bench/faults.py stop                       # SIGSTOP one worker for 10 s
    python bench/faults.py segfault                   # an app URL that dies of SIGSEGV
    python bench/faults.py oom                        # an app URL that allocates without end
    python bench/faults.py fulldisk                   # request bodies spooled to a full disk
    python bench/faults.py all                        # the five above
    python bench/faults.py soak [--requests 2000000] [--minutes 60] [--trace DIR]

Theory of operation
-------------------
Each scenario starts ``procmaster`` from this checkout (``processes.tree_env``) with
``bench/apps/faults_app.py`` (or ``soak_flask.py``), runs wrk against it and, at the
same time, does the harm. Failed requests are what wrk counts (socket errors,
timeouts, non-2xx); a probe thread opens one new connection every 0.25 s and
counts those not answered in 2 s (the other workers must keep serving). The
master's log is searched for the line that says what happened. A scenario prints
its figures and returns 1 when a check fails.

Which requests may fail: a worker killed by SIGKILL or SIGSEGV takes the
connections it holds with it, and wrk (which always has one request in flight
per connection) counts each of them as an error; so the bound per kill is the
number of connections per worker, never more (and requests on other workers
never fail).

The soak samples every worker's RSS and open descriptors every 10 s; after the
warm-up (the first fifth) it fits a line through them and reports the slope.

Must not know: how procmaster does any of it (it only watches from outside).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from processes import (
    HERE,
    ROOT,
    free_port,
    procmaster_argv,
    spawn,
    stop_tree,
    tree_env,
    wait_until,
)
from soak import soak
from wrk import WrkResult, parse_wrk

APPS = os.path.join(HERE, "apps")
BASE = ["--master", "--processes", "4", "--http-keepalive", "1", "--disable-logging"]


class Server:
    """procmaster from this checkout, its log in ``tmp``, stopped at the end."""

    def __init__(self, tmp: Path, args: list[str], env: dict | None = None) -> None:
        self.port = free_port()
        self.log_path = tmp / "procmaster.log"
        self.log_file = open(self.log_path, "ab")
        env = tree_env(ROOT, {**os.environ, **(env or {})})
        env["PYTHONPATH"] = os.pathsep.join([APPS, env["PYTHONPATH"]])
        argv = procmaster_argv("--http-socket", f"127.0.0.1:{self.port}", *args)
        self.proc = spawn(argv, self.log_file, str(tmp), env)
        wait_until(self.answers, [self.proc], 60, "procmaster")
        wait_until(lambda: len(self.workers()) >= 4, [self.proc], 60, "the workers")

    def answers(self) -> bool:
        return probe(self.port)

    def workers(self) -> list[int]:
        try:
            kids = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []
        return [k.pid for k in kids if k.status() != psutil.STATUS_ZOMBIE]

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_tree([self.proc], signal.SIGINT)
        self.log_file.close()


def probe(port: int, path: str = "/", timeout: float = 2.0) -> bool:
    """One GET on a new connection, answered 200 within ``timeout``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class Probes:
    """A new connection every 0.25 s while the scenario runs: (time, answered)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.results: list[tuple[float, bool]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.done.wait(0.25):
            t = time.monotonic()
            self.results.append((t, probe(self.port)))

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    def failed(self, start: float = 0.0, end: float = float("inf")) -> tuple[int, int]:
        inside = [ok for t, ok in self.results if start <= t <= end]
        return inside.count(False), len(inside)


def wrk(port: int, seconds: float, connections: int, close: bool, path: str = "/",
        script: str | None = None, threads: int = 2) -> WrkResult:  # fmt: skip
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    if script:
        argv += ["-s", script]
    out = subprocess.run(argv + [f"http://127.0.0.1:{port}{path}"], capture_output=True,
                         text=True, check=False)  # fmt: skip
    return parse_wrk(out.stdout + out.stderr)


def _connections(pid: int) -> int:
    """Established TCP connections a worker holds right now."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return 0
    return sum(c.status == psutil.CONN_ESTABLISHED for c in conns)


def failures(res: WrkResult) -> int:
    return res.socket_errors + res.timeout + res.non2xx


def in_background(fn, *args, **kwargs) -> tuple[threading.Thread, list]:
    box: list = []
    thread = threading.Thread(target=lambda: box.append(fn(*args, **kwargs)), daemon=True)
    thread.start()
    return thread, box


def say(line: str) -> None:
    print(line, flush=True)


# -- the scenarios ---------------------------------------------------------------------


def kill(tmp: Path, duration: float) -> bool:
    """SIGKILL a random worker every second under keep-alive and close load."""
    ok = True
    for close in (False, True):
        conns = 32
        server = Server(tmp, ["--module", "faults_app", *BASE])
        try:
            probes = Probes(server.port)
            thread, box = in_background(wrk, server.port, duration + 4, conns, close)
            time.sleep(2)
            kills = bound = 0  # bound: connections the killed workers held
            t_end = time.monotonic() + duration
            while time.monotonic() < t_end:
                pids = server.workers()
                if pids:
                    victim = random.choice(pids)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(victim, signal.SIGSTOP)  # frozen: it accepts no more
                        held = _connections(victim)
                        os.kill(victim, signal.SIGKILL)
                        kills += 1
                        bound += held
                time.sleep(1)
            thread.join()
            probes.stop()
            res = box[0]
            bad, total = probes.failed()
            mode = "close" if close else "keep-alive"
            say(f"kill ({mode}): {kills} SIGKILLs in {duration:g} s; {res.requests} requests, "
                f"{failures(res)} failed (connect {res.connect}, read {res.read}, write "
                f"{res.write}, timeout {res.timeout}, non-2xx {res.non2xx}); "
                f"{failures(res) / max(kills, 1):.2f} per kill; the killed workers held "
                f"{bound} connections ({bound / max(kills, 1):.2f} per kill) with {conns} "
                f"over 4 workers; "
                f"new-connection probes failed: {bad}/{total}; master alive: "
                f"{server.proc.poll() is None}")  # fmt: skip
            ok &= failures(res) <= bound and server.proc.poll() is None and not res.failed
        finally:
            server.stop()
    return ok


def stop(tmp: Path) -> bool:
    """SIGSTOP one worker for 10 s under keep-alive load (harakiri 5)."""
    server = Server(tmp, ["--module", "faults_app", *BASE, "--harakiri", "5"])
    try:
        probes = Probes(server.port)
        thread, box = in_background(wrk, server.port, 20, 32, False)
        time.sleep(3)
        # the worker holding most of wrk's connections: they stall with it
        victim = max(server.workers(), key=_connections)
        t0 = time.monotonic()
        os.kill(victim, signal.SIGSTOP)
        held = _connections(victim)
        time.sleep(10)
        os.kill(victim, signal.SIGCONT)
        t1 = time.monotonic()
        thread.join()
        probes.stop()
        res = box[0]
        bad, total = probes.failed(t0, t1)
        say(f"stop: worker {victim} stopped 10 s during a 20 s keep-alive run: "
            f"{res.requests} requests ({res.rps:.0f}/s), {failures(res)} failed (timeout "
            f"{res.timeout}; it held {held} of wrk's 32 connections); new-connection probes "
            f"during the stop failed: {bad}/{total}; victim alive: {psutil.pid_exists(victim)}")  # fmt: skip
        return bad == 0 and server.proc.poll() is None
    finally:
        server.stop()


def _crash(tmp: Path, name: str, url: str, args: list[str], expect: str) -> bool:
    """wrk on / while ``url`` is asked three times; the log must say ``expect``."""
    server = Server(tmp, ["--module", "faults_app", *BASE, *args])
    try:
        probes = Probes(server.port)
        thread, box = in_background(wrk, server.port, 20, 16, False)
        answers = []
        held = 0  # connections the workers that died held just before
        for _ in range(3):
            time.sleep(4)
            before = {pid: _connections(pid) for pid in server.workers()}
            answers.append(_status(server.port, url))
            time.sleep(0.5)  # the master reaps the dead one
            alive = set(server.workers())
            held += sum(n for pid, n in before.items() if pid not in alive)
        thread.join()
        probes.stop()
        res = box[0]
        bad, total = probes.failed()
        lines = [line for line in server.log.splitlines() if re.search(expect, line)]
        say(f"{name}: GET {url} x3 answered {answers}; log: {len(lines)} line(s), e.g. "
            f"{lines[0].strip() if lines else '(none)'!r}; keep-alive load on / (16 "
            f"connections): {res.requests} requests, {failures(res)} failed (the dead workers "
            f"held {held} connections); probes failed "
            f"{bad}/{total}; workers now {len(server.workers())}")  # fmt: skip
        # a probe that lands on the dying worker is one of its in-flight requests
        return (len(lines) == 3 and bad <= 3 and server.proc.poll() is None
                and failures(res) <= held)  # fmt: skip
    finally:
        server.stop()


def _status(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        return str(conn.getresponse().status)
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


def segfault(tmp: Path) -> bool:
    return _crash(tmp, "segfault", "/segv", [], r"SIGSEGV")


def oom(tmp: Path) -> bool:
    return _crash(tmp, "oom", "/hog", ["--evil-reload-on-rss", "256"], r"(?i)rss")


def fulldisk(tmp: Path) -> bool:
    """Request bodies over the spool threshold (1 MiB) go to TMPDIR, a 4 MiB tmpfs."""
    spool = tmp / "spool"
    spool.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(spool)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode:
        say(f"fulldisk: cannot mount a tmpfs ({mounted.stderr.strip()}); run as root")
        return False
    try:
        (spool / "filler").write_bytes(b"\0" * (3 << 20))  # 1 MiB left
        server = Server(tmp, ["--module", "faults_app", *BASE], env={"TMPDIR": str(spool)})
        try:
            probes = Probes(server.port)
            thread, box = in_background(wrk, server.port, 15, 16, True)
            answers = [_upload(server.port, 3 << 20) for _ in range(5)]
            small = _upload(server.port, 100_000)
            thread.join()
            probes.stop()
            res = box[0]
            bad, total = probes.failed()
            lines = [ln for ln in server.log.splitlines() if "No space left" in ln]
            crashed = server.log.count("internal error")
            if crashed:
                say(server.log[server.log.index("internal error") - 200 :][:3000])
            say(f"fulldisk: 5 uploads of 3 MiB answered {answers}, a 100 kB one {small}; "
                f"log: {len(lines)} line(s) saying so, e.g. "
                f"{lines[0].strip() if lines else '(none)'!r}; load on /: {res.requests} "
                f"requests, {failures(res)} failed; probes failed {bad}/{total}; worker internal "
                f"errors: {crashed}; spool "
                f"files left: {sorted(p.name for p in spool.iterdir())}")  # fmt: skip
            return (bad == 0 and failures(res) == 0 and small == "200 100000"
                    and server.proc.poll() is None and len(lines) == len(answers)
                    and not crashed and all(a.startswith("500") for a in answers))  # fmt: skip
        finally:
            server.stop()
    finally:
        subprocess.run(["umount", str(spool)], check=False)


def _upload(port: int, size: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/upload", body=b"u" * size)
        resp = conn.getresponse()
        return f"{resp.status} {resp.read()[:40].decode(errors='replace')}"
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


if __name__ == "__main__":
    SCENARIOS = {"kill": kill, "stop": stop, "segfault": segfault, "oom": oom,
                 "fulldisk": fulldisk}  # fmt: skip
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=[*SCENARIOS, "all", "soak"])
    parser.add_argument("--duration", type=float, default=60, help="kill: seconds of kills")
    parser.add_argument("--requests", type=int, default=2_000_000, help="soak: requests")
    parser.add_argument("--minutes", type=float, default=60, help="soak: at most this long")
    parser.add_argument("--trace", help="soak: dump tracemalloc snapshots per worker here")
    parser.add_argument("--keep", help="work (and leave the logs) in this directory")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("faults: wrk is not installed")
    with (
        contextlib.nullcontext(args.keep)
        if args.keep
        else tempfile.TemporaryDirectory(prefix="procmaster-faults-") as d
    ):
        os.makedirs(d, exist_ok=True)
        names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
        good = True
        for name in names:
            sub = Path(d) / name
            sub.mkdir()
            if name == "soak":
                good &= soak(sub, args.requests, args.minutes, args.trace)
            elif name == "kill":
                good &= kill(sub, args.duration)
            else:
                good &= SCENARIOS[name](sub)
        say("all checks passed" if good else "SOME CHECKS FAILED")
        sys.exit(0 if good else 1)
