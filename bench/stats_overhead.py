"""What the stats server costs the request path: procmaster with ``stats`` +
``stats-http`` scraped every second (``GET /metrics`` and the JSON document) against
procmaster without stats, same app, same machine, same run, alternating A B A B.

    python bench/stats_overhead.py                       # 8 s per run, 3 rounds
    python bench/stats_overhead.py --duration 5 --rounds 5

Each run: ``wrk -t2 -c64 -dS`` (keep-alive) on ``bench/apps/hello.py`` with 2
workers; the ratio is median(with stats) / median(without). The servers are the
procmaster of this checkout (``python -m procmaster`` with the repository root on
``PYTHONPATH``), stopped by PID (SIGTERM, then SIGKILL for what is left).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "bench" / "apps"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, stats_port: int | None) -> subprocess.Popen:
    argv = [
        sys.executable, "-m", "procmaster", "--http-socket", f"127.0.0.1:{port}",
        "--processes", "2", "--master", "--disable-logging",
        "--wsgi-file", str(APPS / "hello.py"),
    ]  # fmt: skip
    if stats_port:
        argv += ["--stats", f"127.0.0.1:{stats_port}", "--stats-http"]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise SystemExit("procmaster did not start")


def stop(proc: subprocess.Popen) -> None:
    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    for p in tree:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def scraper(stats_port: int, halt: threading.Event, counts: list[int]) -> None:
    """A Prometheus server and uwsgitop at once: /metrics and the JSON, every second."""
    while not halt.wait(1.0):
        for path in ("/metrics", "/"):
            with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}{path}", timeout=2) as r:
                r.read()
            counts[0] += 1


def wrk(port: int, duration: float) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{max(1, round(duration))}s", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=duration + 30,
    ).stdout  # fmt: skip
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise SystemExit(f"wrk printed no result:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("install wrk: apt-get install wrk")
    results: dict[str, list[float]] = {"without stats": [], "with stats, scraped 1/s": []}
    scrapes = [0]
    for round_no in range(1, args.rounds + 1):
        for name in results:
            port = free_port()
            stats_port = free_port() if "with" in name and "without" not in name else None
            proc = start(port, stats_port)
            halt = threading.Event()
            thread = None
            try:
                wrk(port, 1.0)  # warm-up
                if stats_port:
                    thread = threading.Thread(target=scraper, args=(stats_port, halt, scrapes))
                    thread.start()
                rps = wrk(port, args.duration)
            finally:
                halt.set()
                if thread:
                    thread.join()
                stop(proc)
            results[name].append(rps)
            print(f"round {round_no}: {name}: {rps:.0f} req/s", file=sys.stderr)
    base = statistics.median(results["without stats"])
    with_stats = statistics.median(results["with stats, scraped 1/s"])
    print("| procmaster | median req/s | lowest | highest |")
    print("|---|---|---|---|")
    for name, values in results.items():
        print(
            f"| {name} | {statistics.median(values):.0f} | {min(values):.0f} | {max(values):.0f} |"
        )
    print(f"\nratio with/without stats: {with_stats / base:.3f} ({scrapes[0]} scrapes answered)")


if __name__ == "__main__":
    main()
