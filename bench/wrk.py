"""Driving wrk: its command line, running it with new-connection probes, parsing its output.

Theory of operation
-------------------
One run is ``wrk -tT -cC -dS [scenario arguments] URL``. While it runs, a
thread opens one extra connection every ``PROBE_INTERVAL`` seconds and times its
answer: a server that serves only the connections it already holds leaves the
probe in its listen queue, which wrk's own figures do not show (wrk counts no
timeout for connections it never got). wrk's output is parsed into a
``WrkResult``: requests/s and count, socket errors, timeouts, non-2xx/3xx, the
longest latency; a run without a ``Requests/sec`` line is marked failed.

Must not know
-------------
Which servers or scenarios exist, how they are started, how results are reported.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

PROBE_START = 1.0  # seconds into a wrk run before the first new-connection probe
PROBE_TIMEOUT = 2.0  # seconds a probe waits for its answer (wrk's default timeout)
PROBE_INTERVAL = 0.5  # seconds between probes


@dataclass
class WrkResult:
    """What one wrk run reported."""

    rps: float = 0.0
    requests: int = 0
    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0
    non2xx: int = 0
    max_latency: float = 0.0  # seconds, wrk's longest answered request
    probes: list[float | None] = field(default_factory=list)  # seconds; None: no answer
    failed: str = ""  # wrk did not run or printed no result
    cpu: float = 0.0  # seconds of CPU (user + system) the server's processes used

    @property
    def socket_errors(self) -> int:
        """connect + read + write errors."""
        return self.connect + self.read + self.write


def parse_wrk(text: str) -> WrkResult:
    """Read requests/s, request count, socket errors and non-2xx/3xx from wrk's output."""
    res = WrkResult()
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not m:
        res.failed = text.strip()[-300:] or "no output"
        return res
    res.rps = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in", text, re.M)
    res.requests = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        res.connect, res.read, res.write, res.timeout = map(int, m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    res.non2xx = int(m.group(1)) if m else 0
    m = re.search(r"^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m|h)\b", text, re.M)
    if m:
        scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]
        res.max_latency = float(m.group(1)) * scale
    return res


def wrk_argv(
    threads: int, connections: int, duration: float, extra: Sequence[str], url: str
) -> list[str]:
    """The wrk command line for one run (``url`` with the scenario's path)."""
    return ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", *extra, url]


def probe_once(port: int, path: str, timeout: float, expected: bytes) -> float | None:
    """Seconds a GET on a new connection takes to be answered, None if it is not in time."""
    t0 = time.monotonic()
    ok = False
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    with contextlib.suppress(OSError, http.client.HTTPException):
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        ok = resp.status == 200 and resp.read() == expected
    conn.close()
    elapsed = time.monotonic() - t0
    return elapsed if ok and elapsed <= timeout else None


def probe_loop(
    port: int, path: str, duration: float, stop: threading.Event, expected: bytes
) -> list[float | None]:
    """Probe with one new connection at a time while wrk runs.

    A server that keeps serving its kept-alive connections and leaves new ones
    waiting in the listen queue shows here as probes that time out, which wrk's
    own figures do not show. Probes start after a warm-up and only while one can
    still finish before wrk stops.
    """
    results: list[float | None] = []
    start = time.monotonic()
    if stop.wait(PROBE_START):
        return results
    while time.monotonic() - start + PROBE_TIMEOUT < duration - 0.2 and not stop.is_set():
        results.append(probe_once(port, path, PROBE_TIMEOUT, expected))
        if stop.wait(PROBE_INTERVAL):
            break
    return results


def run_wrk(
    argv: list[str],
    duration: float,
    port: int | None = None,
    path: str = "/",
    expected: bytes = b"",
) -> WrkResult:
    """Run wrk, probing the server with new connections meanwhile (when ``port`` is
    given, expecting ``expected`` as the body), and parse wrk's output."""
    probes: list[float | None] = []
    stop = threading.Event()
    prober = None
    if port is not None:
        prober = threading.Thread(
            target=lambda: probes.extend(probe_loop(port, path, duration, stop, expected)),
            daemon=True,
        )
    try:
        if prober:
            prober.start()
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    except subprocess.TimeoutExpired:
        return WrkResult(failed="wrk did not finish")
    finally:
        stop.set()
        if prober:
            prober.join()
    res = parse_wrk(out.stdout)
    if res.failed and out.stderr:
        res.failed += " " + out.stderr.strip()[-300:]
    res.probes = probes
    return res
