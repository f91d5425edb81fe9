"""Cache get/set throughput: procmaster's cache against uWSGI's, in the same run.

    python bench/cache.py [--workers 2] [--ops 20000] [--rounds 3] [--markdown]

Each server runs bench/apps/cache_bench.py with ``cache2 = name=bench,items=2000,
blocksize=128`` and ``--workers`` workers. One request makes a worker run ``--ops``
operations on 1,000 keys of 64-byte values (set: ``cache_update``; get:
``cache_get``; mixed: nine gets to one set); every worker gets such a request at
once, ``--requests`` times. The figure is operations per second over the wall
time of those requests (all workers together, so it includes the lock contention
between them); the servers take turns round by round, and the median of the
rounds is reported. Any error (a non-200 answer, a get that did not find its
value, a set refused) voids the row.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APPS = HERE / "apps"
OPS = ("set", "get", "mixed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, timeout: float = 120.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Server:
    def __init__(self, kind: str, workers: int, log: Path) -> None:
        self.kind = kind
        self.port = free_port()
        common = [
            "--master",
            "--processes",
            str(workers),
            "--http-socket",
            f"127.0.0.1:{self.port}",
            "--module",
            "cache_bench",
            "--cache2",
            "name=bench,items=2000,blocksize=128",
            "--disable-logging",
        ]
        if kind == "uWSGI":
            argv = ["uwsgi", "--pythonpath", str(APPS), "--die-on-term", *common]
        else:
            argv = [sys.executable, "-m", "procmaster", *common]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} exited: see {log}")
            try:
                if get(self.port, "/", 2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not answer: see {log}")
            time.sleep(0.05)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: it and its workers
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


def measure(server: Server, op: str, workers: int, ops: int, requests: int) -> tuple[float, int]:
    """(operations per second, errors) with ``workers`` clients at once."""
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        for _ in range(requests):
            status, body = get(server.port, f"/?op={op}&n={ops}")
            with lock:
                errors[0] += json.loads(body)["errors"] if status == 200 else ops

    threads = [threading.Thread(target=client) for _ in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return workers * requests * ops / wall, errors[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ops", type=int, default=20000, help="operations per request")
    parser.add_argument("--requests", type=int, default=5, help="requests per worker per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    kinds = ["procmaster"] + (["uWSGI"] if shutil.which("uwsgi") else [])
    if len(kinds) == 1:
        print("uWSGI is not installed (pip install uwsgi): procmaster alone", file=sys.stderr)
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-cache-{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, str], list[float]] = {}
    errors: dict[tuple[str, str], int] = {}
    servers = {k: Server(k, args.workers, logs / f"{k}.log") for k in kinds}
    try:
        for server in servers.values():
            measure(server, "set", args.workers, 1000, 1)  # fill every key first
        for round_no in range(args.rounds):
            order = kinds if round_no % 2 == 0 else kinds[::-1]
            for op in OPS:
                for kind in order:
                    rate, errs = measure(servers[kind], op, args.workers, args.ops, args.requests)
                    results.setdefault((kind, op), []).append(rate)
                    errors[(kind, op)] = errors.get((kind, op), 0) + errs
    finally:
        for server in servers.values():
            server.stop()
    rows = []
    for op in OPS:
        cells = []
        for kind in kinds:
            if errors[(kind, op)]:
                cells.append(f"void ({errors[(kind, op)]} errors)")
            else:
                cells.append(f"{statistics.median(results[(kind, op)]):,.0f}")
        rows.append((op, cells))
    if args.markdown:
        print("| operation | " + " | ".join(f"{k} (ops/s)" for k in kinds) + " |")
        print("|---|" + "---:|" * len(kinds))
        for op, cells in rows:
            print(f"| {op} | " + " | ".join(cells) + " |")
    else:
        for op, cells in rows:
            print(f"{op:6} " + "  ".join(f"{k}: {c}" for k, c in zip(kinds, cells, strict=True)))
    return 1 if any(errors.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
