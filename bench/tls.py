"""HTTPS and the PROXY protocol, measured: procmaster's ``https-socket`` against
uWSGI's ``https-socket`` and gunicorn's ``--certfile`` in the same run, and the
cost of a PROXY protocol v2 header (HAProxy in front, with and without
``send-proxy-v2``).

Theory of operation
-------------------
Each server serves bench/apps/hello.py with 2 processes on a certificate made
here with ``openssl`` (EC P-256). wrk drives two scenarios per server:
``keep-alive`` (its connections stay open: TLS records only) and
``new-connection`` (``Connection: close``: every request is a new TCP
connection and a full TLS handshake). Then procmaster's ``http-socket`` behind
HAProxy in TCP mode, once with ``send-proxy-v2`` and ``enable-proxy-protocol``,
once without, keep-alive and new connections. A row with any socket error or
non-2xx answer is void (printed as such, never compared).

Run: ``python bench/tls.py [--duration 10] [--connections 50]``; it prints a
Markdown table for bench/RESULTS.md.

Must not know: the main benchmark's scenarios and report (bench.py); it reuses
its process and wrk helpers.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time

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
from wrk import run_wrk, wrk_argv

SCENARIOS = {"keep-alive": [], "new-connection": ["-H", "Connection: close"]}
# peers that frame connections one way only are measured in that mode alone
ONLY = {"uWSGI https-socket": ("new-connection",), "uWSGI https router": ("keep-alive",)}


def make_cert(d: str) -> tuple[str, str]:
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def https_answers(port: int) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=ctx)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read() == EXPECTED_BODY
    except OSError:
        return False
    finally:
        conn.close()


def http_answers(port: int) -> bool:
    return answers(port, "/", EXPECTED_BODY)


def servers(tmp: str, cert: str, key: str, port: int) -> dict[str, list[list[str]]]:
    addr = f"127.0.0.1:{port}"
    return {
        "procmaster": [procmaster_argv(
            "--https-socket", f"{addr},{cert},{key}", "--wsgi-file", f"{APPS}/hello.py",
            "--master", "--processes", "2", "--disable-logging")],
        # uWSGI 2.0's https-socket answers one request per connection (no keep-alive)
        # and closes without saying so, which wrk counts as read errors: it is the
        # new-connection peer, told to say "Connection: close"; its keep-alive HTTPS
        # is the router (https =, a process in front of the workers)
        "uWSGI https-socket": [["uwsgi", "--https-socket", f"{addr},{cert},{key}",
                                "--wsgi-file", f"{APPS}/hello.py", "--master", "--processes",
                                "2", "--disable-logging", "--add-header",
                                "Connection: close"]],
        "uWSGI https router": [["uwsgi", "--https", f"{addr},{cert},{key}", "--http-keepalive",
                                "--wsgi-file", f"{APPS}/hello.py", "--master", "--processes",
                                "2", "--disable-logging"]],
        "gunicorn": [[sys.executable, "-m", "gunicorn", "--certfile", cert, "--keyfile", key,
                      "-w", "2", "-b", addr, "--chdir", APPS, "hello:application"]],
    }  # fmt: skip


def measure(name, argvs, port, ready, url, args, tmp, rows):
    log = open(os.path.join(tmp, f"{name.replace(' ', '_')}.log"), "wb")
    procs = [spawn(a, log, tmp, tree_env(ROOT)) for a in argvs]
    try:
        wait_until(lambda: ready(port), procs, 30, name)
        for scenario, extra in SCENARIOS.items():
            if scenario not in ONLY.get(name, (scenario,)):
                continue
            time.sleep(1)
            res = run_wrk(wrk_argv(2, args.connections, args.duration, extra, url), args.duration)
            errors = res.connect + res.read + res.write + res.timeout + res.non2xx
            rows.append((name, scenario, res.rps, errors, res.failed))
            print(f"{name:28} {scenario:15} {res.rps:10.0f} req/s  errors {errors}",
                  file=sys.stderr)  # fmt: skip
    finally:
        stop_tree(procs, [signal.SIGINT] * len(procs))


def proxy_rows(tmp, args, rows):
    for with_proxy in (False, True):
        app, front = free_port(), free_port()
        cfg = os.path.join(tmp, f"haproxy-{with_proxy}.cfg")
        send = " send-proxy-v2" if with_proxy else ""
        with open(cfg, "w") as f:
            f.write("global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n"
                    "  timeout client 60s\n  timeout server 60s\n"
                    f"frontend f\n  bind 127.0.0.1:{front}\n  default_backend b\n"
                    f"backend b\n  server app 127.0.0.1:{app}{send}\n")  # fmt: skip
        pm = procmaster_argv("--http-socket", f"127.0.0.1:{app}", "--wsgi-file",
                             f"{APPS}/hello.py", "--master", "--processes", "2",
                             "--disable-logging")  # fmt: skip
        if with_proxy:
            pm += ["--enable-proxy-protocol", "--proxy-allow-ips", "127.0.0.1"]
        name = "procmaster + PROXY v2" if with_proxy else "procmaster, no PROXY"
        measure(f"haproxy -> {name}", [pm, ["haproxy", "-db", "-f", cfg]], front,
                http_answers, f"http://127.0.0.1:{front}/", args, tmp, rows)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--no-proxy", action="store_true", help="skip the PROXY protocol rows")
    args = parser.parse_args()
    rows: list = []
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(tmp)
        for name, argvs in servers(tmp, cert, key, port := free_port()).items():
            measure(name, argvs, port, https_answers, f"https://127.0.0.1:{port}/", args, tmp, rows)
        if not args.no_proxy:
            proxy_rows(tmp, args, rows)
    print("| server | scenario | requests/s | errors |\n|---|---|---:|---:|")
    for name, scenario, rps, errors, failed in rows:
        value = "void" if errors or failed else f"{rps:,.0f}"
        print(f"| {name} | {scenario} | {value} | {errors}{' ' + failed if failed else ''} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
