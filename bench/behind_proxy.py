"""Benchmark behind a real front end: Apache 2.4 and nginx in front of procmaster and uWSGI.

    python bench/behind_proxy.py                    # 6 s per run, 3 rounds
    python bench/behind_proxy.py --duration 8 --rounds 5

Rows (the same ``bench/apps/hello.py``, 2 workers, everything on 127.0.0.1):

- Apache (mpm_event) -> procmaster over ``mod_proxy_uwsgi``
- Apache (mpm_event) -> uWSGI over ``mod_proxy_uwsgi``
- nginx -> procmaster over ``scgi_pass`` (scgi-socket)
- nginx -> uWSGI over ``scgi_pass``
- nginx -> procmaster over ``uwsgi_pass`` (for comparison with SCGI)

``wrk -t2 -c64`` with keep-alive to the front end, which opens one backend
connection per request (neither proxy keeps uwsgi or SCGI connections alive).
Rows are interleaved round by round (A B C D E A B C ...) because the machine
is expected to be noisy; the median requests/s is reported with the lowest and
highest, then the ratios procmaster/uWSGI for the same front end and protocol.
Front ends and servers are started in their own tmp dir from generated configs,
and stopped by PID (the main process, then anything left of its tree); procmaster
is this checkout's (``python -m procmaster``, the checkout on ``PYTHONPATH``).
Processes, wrk and the app are shared with bench.py (processes.py, wrk.py,
servers.py).
A run with errors (socket errors, timeouts, non-2xx answers) is void: left out of
the medians and ratios, and said so.
Needs: wrk, nginx, apache2 (Debian: with mod_proxy_uwsgi), uwsgi, procmaster.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

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
from servers import APPS, EXPECTED_BODY, PROCS
from wrk import parse_wrk, wrk_argv

MODULES = Path("/usr/lib/apache2/modules")


def backend_argv(kind: str, proto: str, port: int) -> tuple[list[str], int]:
    """(argv, stop signal) of a backend serving ``proto`` on ``port``."""
    option = {"uwsgi": "--uwsgi-socket", "scgi": "--scgi-socket"}[proto]
    common = [option, f"127.0.0.1:{port}", "--processes", PROCS, "--master"]
    common += ["--disable-logging", "--wsgi-file", os.path.join(APPS, "hello.py")]
    if kind == "procmaster":
        return procmaster_argv(*common), signal.SIGTERM
    return ["uwsgi", *common], signal.SIGINT  # uWSGI 2.0 reloads on SIGTERM


def apache_argv(d: Path, port: int, backend: int) -> list[str]:
    mods = ["mpm_event", "authz_core", "proxy", "proxy_uwsgi"]
    loads = "\n".join(f"LoadModule {m}_module {MODULES}/mod_{m}.so" for m in mods)
    user = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
    (d / "httpd.conf").write_text(
        f"ServerRoot {d}\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\n"
        f"PidFile {d}/httpd.pid\nDefaultRuntimeDir {d}\nErrorLog {d}/error.log\n"
        f"{loads}\n{user}ThreadsPerChild 64\nMaxRequestWorkers 256\nServerLimit 4\n"
        f'ProxyPass "/" "uwsgi://127.0.0.1:{backend}/"\n'
    )
    return ["apache2", "-f", str(d / "httpd.conf"), "-DFOREGROUND"]


def nginx_argv(d: Path, port: int, backend: int, proto: str) -> list[str]:
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (d / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 2;\npid {d}/nginx.pid;\n"
        f"error_log {d}/error.log;\nevents {{ worker_connections 1024; }}\n"
        f"http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n"
        f"  fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n"
        f"  server {{ listen 127.0.0.1:{port};\n"
        f"    location / {{ include /etc/nginx/{proto}_params; "
        f"{proto}_pass 127.0.0.1:{backend}; }} }} }}\n"
    )
    return ["nginx", "-c", str(d / "nginx.conf"), "-p", str(d)]


ROWS = [  # (front end, backend kind, protocol)
    ("apache", "procmaster", "uwsgi"),
    ("apache", "uWSGI", "uwsgi"),
    ("nginx", "procmaster", "scgi"),
    ("nginx", "uWSGI", "scgi"),
    ("nginx", "procmaster", "uwsgi"),
]


def run_row(row: tuple[str, str, str], duration: float, tmp: Path) -> float | None:
    """Start the backend and the front end, load the front end with wrk, stop both
    by PID; the req/s, or None when the run had errors (void)."""
    front, kind, proto = row
    d = Path(tempfile.mkdtemp(dir=tmp))
    backend, port = free_port(), free_port()
    argv, sig = backend_argv(kind, proto, backend)
    env = tree_env(ROOT)  # this checkout's procmaster; cwd d holds no procmaster package
    procs: list[subprocess.Popen] = []
    signals: list[int] = []
    with open(d / "backend.log", "ab") as log:
        try:
            procs.append(spawn(argv, log, cwd=str(d), env=env))
            signals.append(sig)
            if front == "apache":
                fargv = apache_argv(d, port, backend)
            else:
                fargv = nginx_argv(d, port, backend, proto)
            procs.append(spawn(fargv, log, cwd=str(d)))
            signals.append(signal.SIGTERM)
            try:
                wait_until(lambda: answers(port, "/", EXPECTED_BODY), procs, 20, str(row))
            except RuntimeError as exc:
                raise SystemExit(f"{exc}: see {d}") from None
            out = subprocess.run(
                wrk_argv(2, 64, duration, (), f"http://127.0.0.1:{port}/"),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        finally:
            stop_tree(procs, signals)  # the front end first, then the backend
    res = parse_wrk(out)
    if res.failed:
        raise SystemExit(f"{row}: wrk printed no result: {res.failed}")
    if res.socket_errors or res.timeout or res.non2xx:
        errors = f"socket errors {res.socket_errors}, timeouts {res.timeout}, non-2xx {res.non2xx}"
        print(f"  {row}: void ({errors})")
        return None  # a run with errors is void: its req/s counts no answer
    return res.rps


def main(argv: list[str] | None = None) -> int:
    """Run every row, interleaved round by round, and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    missing = [p for p in ("wrk", "nginx", "apache2", "uwsgi") if not shutil.which(p)]
    if missing or not (MODULES / "mod_proxy_uwsgi.so").exists():
        print(f"missing: {', '.join(missing) or 'mod_proxy_uwsgi'}", file=sys.stderr)
        return 2
    results: dict[tuple, list[float]] = {row: [] for row in ROWS}
    void: dict[tuple, int] = {row: 0 for row in ROWS}
    with tempfile.TemporaryDirectory(prefix="pm-bench-") as tmp:
        for n in range(args.rounds):
            for row in ROWS:
                rps = run_row(row, args.duration, Path(tmp))
                if rps is None:
                    void[row] += 1
                    print(f"round {n + 1}: {' -> '.join(row[:2])} ({row[2]}): void")
                    continue
                results[row].append(rps)
                print(f"round {n + 1}: {' -> '.join(row[:2])} ({row[2]}): {rps:,.0f} req/s")
    print(f"\nwrk -t2 -c64 -d{args.duration:g}s, keep-alive to the front end, {args.rounds} rounds")
    print(f"{'front end':<10} {'backend':<11} {'protocol':<9} {'median req/s':>13}  (min-max)")
    for row, values in results.items():
        voided = f", {void[row]} void runs (errors)" if void[row] else ""
        if not values:
            print(f"{row[0]:<10} {row[1]:<11} {row[2]:<9} {'void':>13}  (every run had errors)")
            continue
        med = statistics.median(values)
        print(
            f"{row[0]:<10} {row[1]:<11} {row[2]:<9} {med:>13,.0f}  "
            f"({min(values):,.0f}-{max(values):,.0f}{voided})"
        )
    print("ratios procmaster/uWSGI (medians of the runs without errors):")
    for front, proto in dict.fromkeys((front, proto) for front, _, proto in ROWS):
        pm, uw = results.get((front, "procmaster", proto)), results.get((front, "uWSGI", proto))
        if pm is None or uw is None:  # no peer row here (nginx uwsgi: bench.py --only nginx-uwsgi)
            continue
        if pm and uw:
            ratio = statistics.median(pm) / statistics.median(uw)
            print(f"  {front} {proto}: {ratio:.2f}")
        else:
            print(f"  {front} {proto}: void (no run without errors on one side)")
    scgi = results[("nginx", "procmaster", "scgi")]
    uw = results[("nginx", "procmaster", "uwsgi")]
    if scgi and uw:
        print(
            f"  nginx procmaster scgi/uwsgi: {statistics.median(scgi) / statistics.median(uw):.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
