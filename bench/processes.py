"""Processes for the benchmarks: ports, starting, readiness, stopping by PID, CPU and memory.

Theory of operation
-------------------
A server under test is one or more processes started with ``subprocess`` in
their own session (so Ctrl-C reaches only the benchmark script), each with its
own output file. Readiness is observable, never a guessed sleep: a GET that
answers 200 with the expected body, polled until a deadline. Stopping is by
PID only: the whole process tree is collected first, each started process gets
its stop signal (last started first), and after a deadline whatever is left of
the tree gets SIGKILL through psutil (which refuses a pid that was reused).

procmaster itself is run from a source tree, not from whatever ``procmaster``
is on PATH: ``python -m procmaster`` with the tree first on ``PYTHONPATH``
(``procmaster_argv``, ``tree_env``). ``python -m`` puts the working directory
first on ``sys.path``, so the caller runs it from a directory that holds no
``procmaster`` package (``bench/apps`` or a temporary directory).

Must not know
-------------
Which servers, protocols or scenarios exist, wrk, or how results are reported.
Every bench script may import this module; nothing here imports the others,
and nothing here imports ``tests/``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)  # the checkout this bench/ belongs to
STOP_TIMEOUT = 10.0  # seconds a server may take to exit after its stop signal


def progress(msg: str) -> None:
    """A line on stderr, so stdout holds only the result."""
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procmaster_argv(*args: str) -> list[str]:
    """The command that runs procmaster from the tree on PYTHONPATH (see ``tree_env``)."""
    return [sys.executable, "-m", "procmaster", *args]


def tree_env(tree: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose ``python -m procmaster`` imports procmaster from ``tree``."""
    env = dict(os.environ if base is None else base)
    rest = env.get("PYTHONPATH", "")
    path = os.path.abspath(tree)
    env["PYTHONPATH"] = os.pathsep.join([path, rest]) if rest else path
    return env


def tree_source(tree: str, cwd: str) -> str:
    """The directory procmaster is imported from when run from ``tree`` in ``cwd``
    (to check that a tree really is the one run: an installed copy does not win)."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, procmaster; print(os.path.dirname(procmaster.__file__))",
        ],
        env=tree_env(tree),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return out.stdout.strip() or f"(not importable: {out.stderr.strip()[-200:]})"


def tree_revision(tree: str) -> str:
    """The tree's commit (short hash and subject, and whether procmaster/ differs from
    it), or 'not a git checkout'."""
    try:
        top = subprocess.run(
            ["git", "-C", tree, "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if os.path.realpath(top.stdout.strip() or "/nonexistent") != os.path.realpath(tree):
            return "not a git checkout"  # (a copy inside another checkout is not that one)
        out = subprocess.run(
            ["git", "-C", tree, "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "git missing"
    text = out.stdout.strip()
    if out.returncode or not text:
        return "not a git checkout"
    text = text if len(text) <= 72 else text[:69] + "..."
    dirty = subprocess.run(
        ["git", "-C", tree, "status", "--porcelain", "--untracked-files=no", "--", "procmaster"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return text + (" + uncommitted changes to procmaster/" if dirty.stdout.strip() else "")


def spawn(
    argv: Sequence[str], out: IO[bytes] | int, cwd: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start one process in its own session, output to ``out``, no stdin."""
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the benchmark script only
    )


def tree_of(procs: Sequence[subprocess.Popen]) -> list[psutil.Process]:
    """Every live process of a server: each started process and its descendants."""
    found: list[psutil.Process] = []
    for proc in procs:
        try:
            top = psutil.Process(proc.pid)
            found.append(top)
            found.extend(top.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    return found


def stop_tree(
    procs: Sequence[subprocess.Popen], signals: int | Sequence[int], timeout: float = STOP_TIMEOUT
) -> None:
    """Stop started processes by PID: each its stop signal (last started first), then
    SIGKILL to whatever is left of the tree collected beforehand."""
    tree = tree_of(procs)
    sigs = [signals] * len(procs) if isinstance(signals, int) else list(signals)
    for proc, sig in reversed(list(zip(procs, sigs, strict=True))):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
    deadline = time.monotonic() + timeout
    for proc in reversed(procs):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    _, alive = psutil.wait_procs(tree, timeout=max(0.1, deadline - time.monotonic()))
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()  # psutil refuses if the pid was reused by another process
    psutil.wait_procs(alive, timeout=5)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)


def asgi_worker_argv(server: str, path: str, apps: str, app: str, backlog: int = 0) -> list[str]:
    """One ASGI worker serving ``app`` (``module:attr`` under ``apps``) on the unix
    socket ``path``: procmaster's (``--master``, one process), or uvicorn's
    (httptools, uvloop; with one worker it runs the app in its own process, no
    supervisor). ``backlog``: the listen queue's length, when not the server's default."""
    if server == "procmaster":
        queue = ["--listen", str(backlog)] if backlog else []
        return procmaster_argv("--http-socket", path, "--processes", "1", "--master",
                               "--disable-logging", "--pythonpath", apps, "--asgi", app,
                               *queue)  # fmt: skip
    queue = ["--backlog", str(backlog)] if backlog else []
    return [sys.executable, "-m", "uvicorn", "--workers", "1", "--loop", "uvloop", "--http",
            "httptools", "--no-access-log", "--log-level", "warning", "--app-dir", apps,
            "--uds", path, *queue, app]  # fmt: skip


def answers_unix(path: str) -> bool:
    """True when GET / on the unix socket ``path`` answers 200 (a server's worker
    serves, not only its socket exists)."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def answers(port: int, path: str, expected: bytes, host: str = "127.0.0.1") -> bool:
    """True when GET ``path`` answers 200 with exactly ``expected``."""
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status == 200 and resp.read() == expected
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_until(
    ready: Callable[[], bool],
    procs: Sequence[subprocess.Popen],
    timeout: float,
    what: str,
) -> None:
    """Poll ``ready`` until it is true; RuntimeError if a process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode} before answering")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")
        time.sleep(0.05)


def log_tail(path: str, lines: int = 15) -> str:
    """The last lines of a server's log file."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def total_rss(tree: list[psutil.Process]) -> int:
    """Sum of the RSS of the given processes, in bytes."""
    total = 0
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_info().rss
    return total


def total_cpu(tree: list[psutil.Process]) -> float:
    """User + system CPU seconds used so far by the given processes."""
    total = 0.0
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            t = p.cpu_times()
            total += t.user + t.system
    return total
