"""The soak of ``python bench/faults.py soak``: millions of mixed requests to a Flask
app, through nginx and directly, while every worker's RSS and open descriptors are
sampled.

Theory of operation
-------------------
procmaster (this checkout) serves ``bench/apps/soak_flask.py`` on a uwsgi socket,
behind nginx (``uwsgi_pass``, keep-alive to the clients), and on an http socket
with keep-alive. Two wrk runs, one per front, each with a Lua script that mixes
``GET /`` (some with ``Connection: close``), ``/json``, a streamed ``/stream``
(64 KiB, chunked), 32 KiB multipart uploads and, one request in 64, a 1.5 MiB
upload (over the 1 MiB spool threshold: a temporary file). wrk runs in rounds of
``ROUND`` seconds until the requests or the minutes are reached; every request
wrk counts as failed (socket error, timeout, non-2xx) is reported. Every
``SAMPLE`` seconds a thread records each worker's RSS, USS and descriptor count
(also to ``samples.csv`` as they come, so ``python bench/soak.py samples.csv``
gives the figures of a run still going); the slopes are least-squares lines
through the samples after the warm-up (the first 10 minutes; the first fifth of
a run shorter than 50 minutes), per hour, for the workers' total and for each.

Must not know: how procmaster does any of it (it only watches from outside).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from processes import ROOT, free_port, procmaster_argv, spawn, stop_tree, tree_env, wait_until
from wrk import parse_wrk

ROUND = 60.0  # seconds per wrk round
SAMPLE = 10.0  # seconds between samples of the workers
HERE = os.path.dirname(os.path.abspath(__file__))

LUA = r"""
local counter = 0
local boundary = "soakboundary1234"
local function multipart(size)
  local body = "--" .. boundary .. "\r\n"
    .. 'Content-Disposition: form-data; name="file"; filename="f.bin"\r\n'
    .. "Content-Type: application/octet-stream\r\n\r\n"
    .. string.rep("u", size) .. "\r\n--" .. boundary .. "--\r\n"
  return body
end
local small, big
local ctype = "multipart/form-data; boundary=" .. boundary
request = function()
  small = small or multipart(32768)
  big = big or multipart(1572864)
  counter = counter + 1
  if counter % 64 == 0 then
    return wrk.format("POST", "/upload", {["Content-Type"] = ctype}, big)
  end
  local k = counter % 8
  if k == 1 or k == 5 then
    return wrk.format("POST", "/upload", {["Content-Type"] = ctype}, small)
  elseif k == 2 then
    return wrk.format("GET", "/stream")
  elseif k == 3 or k == 6 then
    return wrk.format("GET", "/json?k=" .. k)
  elseif k == 7 then
    return wrk.format("GET", "/", {["Connection"] = "close"})
  end
  return wrk.format("GET", "/")
end
"""


def nginx_conf(d: Path, port: int, backend: int) -> list[str]:
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (d / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\n"
        f"error_log {d}/nginx-error.log;\nevents {{ worker_connections 1024; }}\n"
        f"http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n"
        f"  fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n"
        f"  client_max_body_size 8m; keepalive_requests 100000;\n"
        f"  server {{ listen 127.0.0.1:{port};\n"
        f"    location / {{ include /etc/nginx/uwsgi_params; "
        f"uwsgi_pass 127.0.0.1:{backend}; }} }} }}\n"
    )
    return ["nginx", "-c", str(d / "nginx.conf"), "-p", str(d)]


class Sampler:
    """Each worker's RSS (bytes) and open descriptors every ``SAMPLE`` seconds."""

    def __init__(self, master: int, csv: Path) -> None:
        self.master = master
        self.samples: list[tuple[float, dict[int, tuple[int, int]]]] = []
        self.start = time.monotonic()
        self.csv = open(csv, "w")  # every sample as it is taken: seconds,pid,rss,uss,fds
        self.csv.write("seconds,pid,rss,uss,fds\n")
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.done.wait(SAMPLE):
            seen = {}
            with contextlib.suppress(psutil.Error):
                for kid in psutil.Process(self.master).children():
                    with contextlib.suppress(psutil.Error):
                        mem = kid.memory_full_info()
                        seen[kid.pid] = (mem.rss, kid.num_fds())
                        self.csv.write(
                            f"{time.monotonic() - self.start:.1f},{kid.pid},{mem.rss},"
                            f"{mem.uss},{seen[kid.pid][1]}\n"
                        )
            self.csv.flush()
            self.samples.append((time.monotonic(), seen))

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
        self.csv.close()


def per_worker(csv: Path, warmup: float) -> list[str]:
    """Each worker's RSS, USS and fd slope (least squares, per hour) over the
    samples taken ``warmup`` seconds or more after the start, from the CSV."""
    rows: dict[int, list[tuple[float, int, int, int]]] = {}
    with open(csv) as f:
        next(f)
        for line in f:
            t, pid, rss, uss, fds = line.strip().split(",")
            if float(t) >= warmup:
                rows.setdefault(int(pid), []).append(
                    (float(t) / 3600, int(rss), int(uss), int(fds))
                )
    out = []
    for pid, pts in sorted(rows.items()):
        mib = 2**20
        rss = slope([(t, r / mib) for t, r, _, _ in pts])
        uss = slope([(t, u / mib) for t, _, u, _ in pts])
        fds = slope([(t, n) for t, _, _, n in pts])
        out.append(
            f"worker {pid}: {len(pts)} samples over {(pts[-1][0] - pts[0][0]) * 60:.1f} min; RSS "
            f"{pts[0][1] / mib:.1f} -> {pts[-1][1] / mib:.1f} MiB ({rss:+.2f} MiB/h); USS "
            f"{pts[0][2] / mib:.1f} -> {pts[-1][2] / mib:.1f} MiB ({uss:+.2f} MiB/h); fds "
            f"{pts[0][3]} -> {pts[-1][3]} ({fds:+.2f}/h, min {min(p[3] for p in pts)}, "
            f"max {max(p[3] for p in pts)})"
        )
    return out


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def soak(tmp: Path, target: int, minutes: float, trace: str | None = None) -> bool:
    if not shutil.which("nginx"):
        print("soak: nginx is not installed", flush=True)
        return False
    script = tmp / "mixed.lua"
    script.write_text(LUA)
    backend, direct, front = free_port(), free_port(), free_port()
    env = tree_env(ROOT)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(HERE, "apps"), env["PYTHONPATH"]])
    if trace:  # the bench app's debug switch: tracemalloc snapshots per worker
        os.makedirs(trace, exist_ok=True)
        env["SOAK_TRACE"] = os.path.abspath(trace)
    log = open(tmp / "procmaster.log", "ab")
    pm = spawn(
        procmaster_argv(
            "--uwsgi-socket", f"127.0.0.1:{backend}", "--http-socket", f"127.0.0.1:{direct}",
            "--module", "soak_flask", "--master", "--processes", "4", "--http-keepalive", "1",
            "--disable-logging", "--listen", "1024",
        ),
        log, str(tmp), env,
    )  # fmt: skip
    nginx = spawn(nginx_conf(tmp, front, backend), log, str(tmp))
    procs = [pm, nginx]
    ok = False
    try:

        def answers() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", front, timeout=2)
            try:
                conn.request("GET", "/")
                return conn.getresponse().status == 200
            except (OSError, http.client.HTTPException):
                return False
            finally:
                conn.close()

        wait_until(answers, procs, 60, "procmaster behind nginx")
        sampler = Sampler(pm.pid, tmp / "samples.csv")
        total = failed = rounds = 0
        start = time.monotonic()
        step = min(ROUND, minutes * 60)
        while total < target and time.monotonic() - start < minutes * 60 - step / 2:
            runs = []
            for port, conns in ((front, 32), (direct, 8)):
                argv = ["wrk", "-t1", f"-c{conns}", f"-d{step:g}s", "--timeout", "10s",
                        "-s", str(script), f"http://127.0.0.1:{port}/"]  # fmt: skip
                runs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
            kinds = []
            for run, front_name in zip(runs, ("nginx", "direct"), strict=True):
                res = parse_wrk(run.communicate()[0])
                total += res.requests
                failed += res.socket_errors + res.timeout + res.non2xx + bool(res.failed)
                kinds.append(f"{front_name} max latency {res.max_latency:.2f}s")
                if res.socket_errors + res.timeout + res.non2xx or res.failed:
                    kinds.append(
                        f"{front_name}: connect {res.connect} read {res.read} write "
                        f"{res.write} timeout {res.timeout} non-2xx {res.non2xx} {res.failed}"
                    )
            rounds += 1
            elapsed = time.monotonic() - start
            print(f"soak: {elapsed / 60:5.1f} min, {total:,} requests "
                  f"({total / elapsed:,.0f}/s), {failed} failed {'; '.join(kinds)}",
                  flush=True)  # fmt: skip
            if pm.poll() is not None or nginx.poll() is not None:
                break
        sampler.stop()
        elapsed = time.monotonic() - start
        samples = sampler.samples
        # warm-up: the first 10 minutes (the first fifth of a run under 50 minutes)
        warmup = min(600.0, elapsed / 5)
        warm = [(t, seen) for t, seen in samples if t - start >= warmup] or samples
        warm = warm or [(start, {})]
        pids = sorted({pid for _, seen in samples for pid in seen})
        rss = [(t / 3600, sum(r for r, _ in seen.values()) / 2**20) for t, seen in warm]
        fds = [(t / 3600, sum(f for _, f in seen.values())) for t, seen in warm]
        print(
            f"soak result: {total:,} requests in {elapsed / 60:.1f} min ({rounds} rounds of "
            f"{step:g} s, nginx 32 + direct 8 connections), {failed} failed; worker pids "
            f"seen: {len(pids)} (4 = none restarted); after warm-up ({len(warm)} samples "
            f"from {(warm[0][0] - start) / 60 if warm else 0:.1f} min): total worker RSS "
            f"{rss[0][1]:.1f} -> {rss[-1][1]:.1f} MiB, slope {slope(rss):+.2f} MiB/h; "
            f"open fds {fds[0][1]:.0f} -> {fds[-1][1]:.0f}, slope {slope(fds):+.2f}/h",
            flush=True,
        )
        for line in per_worker(tmp / "samples.csv", warmup):
            print(f"soak result: {line}", flush=True)
        ok = failed == 0 and len(pids) == 4 and pm.poll() is None
    finally:
        stop_tree(procs, [signal.SIGINT, signal.SIGQUIT])
        log.close()
    return ok


if __name__ == "__main__":
    # the figures so far of a soak still running (or cut short):
    #   python bench/soak.py KEEPDIR/soak/samples.csv [WARMUP_SECONDS]
    for line in per_worker(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 600):
        print(line)
