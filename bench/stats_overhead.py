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
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import urllib.request

from processes import (
    ROOT,
    answers,
    free_port,
    procmaster_argv,
    spawn,
    stop_tree,
    tree_env,
    wait_until,
)
from servers import APPS, EXPECTED_BODY
from wrk import parse_wrk, wrk_argv


def start(port: int, stats_port: int | None) -> subprocess.Popen:
    """procmaster of this checkout on ``port``, with the stats server on ``stats_port``."""
    argv = procmaster_argv(
        "--http-socket", f"127.0.0.1:{port}", "--processes", "2", "--master",
        "--disable-logging", "--wsgi-file", f"{APPS}/hello.py",
    )  # fmt: skip
    if stats_port:
        argv += ["--stats", f"127.0.0.1:{stats_port}", "--stats-http"]
    # bench/apps as cwd: it holds no procmaster package, so the checkout's is imported
    proc = spawn(argv, subprocess.DEVNULL, cwd=APPS, env=tree_env(ROOT))
    try:
        wait_until(lambda: answers(port, "/", EXPECTED_BODY), [proc], 15, "procmaster")
    except RuntimeError as exc:
        stop(proc)
        raise SystemExit(str(exc)) from None
    return proc


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the master, then SIGKILL to what is left of its tree, by PID."""
    stop_tree([proc], signal.SIGTERM)


def scraper(stats_port: int, halt: threading.Event, counts: list[int]) -> None:
    """A Prometheus server and uwsgitop at once: /metrics and the JSON, every second."""
    while not halt.wait(1.0):
        for path in ("/metrics", "/"):
            with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}{path}", timeout=2) as r:
                r.read()
            counts[0] += 1


def wrk(port: int, duration: float) -> float:
    """Requests/s of one keep-alive wrk run."""
    out = subprocess.run(
        wrk_argv(2, 64, max(1, round(duration)), (), f"http://127.0.0.1:{port}/"),
        capture_output=True, text=True, timeout=duration + 30,
    ).stdout  # fmt: skip
    res = parse_wrk(out)
    if res.failed:
        raise SystemExit(f"wrk printed no result:\n{out}")
    return res.rps


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
