"""CPU time of one worker per request, procmaster against uWSGI, one connection
at a time over the uwsgi protocol on a unix socket (as nginx's ``uwsgi_pass``).

wrk behind nginx measures the whole machine, where nginx and wrk take most of
the two CPUs and hide the server's share. This measures the server's share
alone: one worker (``--processes 1 --master``), a client in this process that
opens a connection, sends the packet nginx sends for ``GET /``, reads the answer
to EOF and closes, ``-n`` times after a warm-up; the figure is the worker's user
+ system CPU seconds over those requests (psutil), kernel work on its sockets
included. Servers alternate for ``--rounds``; medians are printed.

    python bench/worker_cpu.py                       # hello world and the Flask app
    python bench/worker_cpu.py -n 5000 --rounds 3 hello:application

Must not know: wrk, nginx, the other bench scripts' servers or reports.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile

from processes import (
    ROOT,
    procmaster_argv,
    spawn,
    stop_tree,
    total_cpu,
    tree_env,
    tree_of,
    wait_until,
)
from wire import uwsgi_packet

APPS = os.path.join(ROOT, "bench", "apps")
PAIRS = [
    (b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/"), (b"PATH_INFO", b"/"),
    (b"QUERY_STRING", b""), (b"SERVER_PROTOCOL", b"HTTP/1.1"), (b"REMOTE_ADDR", b"127.0.0.1"),
    (b"REMOTE_PORT", b"40000"), (b"SERVER_PORT", b"80"), (b"SERVER_NAME", b"localhost"),
    (b"HTTP_HOST", b"localhost"), (b"HTTP_USER_AGENT", b"wrk"), (b"HTTP_ACCEPT", b"*/*"),
]  # fmt: skip
PACKET = uwsgi_packet(PAIRS)


def request(path: str) -> bytes:
    """One request on a new connection; the whole answer."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(PACKET)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        return got


def answers(path: str) -> bool:
    """The server answers 200 on ``path``."""
    try:
        return request(path).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def measure(server: str, module: str, n: int) -> float:
    """Microseconds of worker CPU per request for ``server`` serving ``module``."""
    tmp = tempfile.mkdtemp(prefix="worker-cpu-")
    path = os.path.join(tmp, "app.sock")
    args = ("--socket", path, "--processes", "1", "--master", "--disable-logging",
            "--chdir", APPS, "--pythonpath", APPS, "--module", module)  # fmt: skip
    argv = procmaster_argv(*args) if server == "procmaster" else ["uwsgi", *args]
    with open(os.path.join(tmp, "server.log"), "wb") as out:
        proc = spawn(argv, out, tmp, tree_env(ROOT))
    try:
        wait_until(lambda: answers(path), [proc], 30, f"{server} (log: {tmp}/server.log)")
        for _ in range(300):
            request(path)
        workers = [p for p in tree_of([proc]) if p.pid != proc.pid]
        before = total_cpu(workers)
        for _ in range(n):
            request(path)
        return (total_cpu(workers) - before) / n * 1e6
    finally:
        stop_tree([proc], 9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "modules", nargs="*", default=["hello:application", "flask_app:application"]
    )
    parser.add_argument("-n", type=int, default=5000, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    print("| app | procmaster µs/request | uWSGI µs/request | procmaster / uWSGI |")
    print("|---|---:|---:|---:|")
    for module in opts.modules:
        got: dict[str, list[float]] = {"procmaster": [], "uWSGI": []}
        for _ in range(opts.rounds):
            for server in got:
                got[server].append(measure(server, module, opts.n))
                print(f"  {module} {server} {got[server][-1]:.1f} µs", file=sys.stderr)
        pm, uw = (statistics.median(got[s]) for s in ("procmaster", "uWSGI"))
        print(f"| `{module}` | {pm:.1f} | {uw:.1f} | {pm / uw:.2f} |")


if __name__ == "__main__":
    main()
