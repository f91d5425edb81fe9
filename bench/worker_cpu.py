"""CPU time of one worker per request, procmaster against uWSGI, one connection
at a time over the uwsgi protocol on a unix socket (as nginx's ``uwsgi_pass``);
with ``--asgi``, procmaster's ASGI worker against uvicorn (httptools, uvloop),
HTTP/1.1 requests one after another on one kept-alive connection over a unix
socket (as nginx's ``proxy_pass`` with upstream keep-alive).

wrk behind nginx measures the whole machine, where nginx and wrk take most of
the two CPUs and hide the server's share. This measures the server's share
alone: one worker (``--processes 1 --master``), a client in this process that
opens a connection, sends the packet nginx sends for ``GET /``, reads the answer
to EOF and closes, ``-n`` times after a warm-up; the figure is the worker's user
+ system CPU seconds over those requests (psutil), kernel work on its sockets
included. Servers alternate for ``--rounds``; medians are printed.

    python bench/worker_cpu.py                       # hello world and the Flask app
    python bench/worker_cpu.py -n 5000 --rounds 3 hello:application
    python bench/worker_cpu.py --asgi -n 20000       # ASGI hello world and JSON

Must not know: wrk, nginx, the other bench scripts' servers or reports.
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import statistics
import sys
import tempfile

from processes import (
    ROOT,
    answers_unix,
    asgi_worker_argv,
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


def cpu_per_request(server: str, argv: list[str], tmp: str, ready, run, warm: int, n: int) -> float:
    """Start ``argv`` (its log in ``tmp``), wait until ``ready()``, ``run(warm)``
    requests, then the workers' CPU microseconds per request over ``run(n)``."""
    with open(os.path.join(tmp, "server.log"), "wb") as out:
        proc = spawn(argv, out, tmp, tree_env(ROOT))
    try:
        wait_until(ready, [proc], 30, f"{server} (log: {tmp}/server.log)")
        run(warm)
        tree = tree_of([proc])
        workers = [p for p in tree if p.pid != proc.pid] or tree  # (uvicorn: one process)
        before = total_cpu(workers)
        run(n)
        return (total_cpu(workers) - before) / n * 1e6
    finally:
        stop_tree([proc], 9)


def measure(server: str, module: str, n: int) -> float:
    """Microseconds of worker CPU per request for ``server`` serving ``module``."""
    tmp = tempfile.mkdtemp(prefix="worker-cpu-")
    path = os.path.join(tmp, "app.sock")
    args = ("--socket", path, "--processes", "1", "--master", "--disable-logging",
            "--chdir", APPS, "--pythonpath", APPS, "--module", module)  # fmt: skip
    argv = procmaster_argv(*args) if server == "procmaster" else ["uwsgi", *args]

    def run(count: int) -> None:
        for _ in range(count):
            request(path)

    return cpu_per_request(server, argv, tmp, lambda: answers(path), run, 300, n)


HTTP_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Real-IP: 127.0.0.1\r\n"
    b"X-Forwarded-For: 127.0.0.1\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
)  # what nginx's proxy_pass sends for wrk's GET / (Connection "" set: kept alive)


def kept_alive(sock: socket.socket, n: int) -> None:
    """``n`` requests, one after another, on one kept-alive connection."""
    for _ in range(n):
        sock.sendall(HTTP_REQUEST)
        got = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("the server closed the kept-alive connection")
            got += chunk
            head, sep, body = got.partition(b"\r\n\r\n")
            if sep and len(body) >= int(head.lower().split(b"content-length: ")[1].split()[0]):
                break


def measure_asgi(server: str, app: str, n: int, per_connection: int = 0) -> float:
    """Microseconds of worker CPU per request for ``server`` serving the ASGI ``app``:
    on one kept-alive connection, or (``per_connection`` K) on a new connection
    every K requests, which the client closes (nginx's upstream keep-alive cache
    when more requests are in flight than it keeps idle connections)."""
    tmp = tempfile.mkdtemp(prefix="worker-cpu-")
    path = os.path.join(tmp, "app.sock")
    argv = asgi_worker_argv(server, path, APPS, app)

    def up() -> bool:
        return answers_unix(path)

    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        connected = False

        def run(count: int) -> None:  # on one connection, made with the first requests
            nonlocal connected
            if per_connection:
                for start in range(0, count, per_connection):
                    with socket.socket(socket.AF_UNIX) as s:
                        s.settimeout(10)
                        s.connect(path)
                        kept_alive(s, min(per_connection, count - start))
                return
            if not connected:
                sock.connect(path)
                connected = True
            kept_alive(sock, count)

        return cpu_per_request(server, argv, tmp, up, run, 500, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "modules", nargs="*", default=["hello:application", "flask_app:application"]
    )
    parser.add_argument("-n", type=int, default=5000, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--asgi", action="store_true", help="ASGI apps, procmaster against uvicorn, HTTP kept alive"
    )
    parser.add_argument(
        "--per-connection",
        type=int,
        default=0,
        metavar="K",
        help="with --asgi: a new connection every K requests (default: one for all)",
    )
    opts = parser.parse_args()
    peer = "uvicorn" if opts.asgi else "uWSGI"
    modules = opts.modules
    if opts.asgi and modules == parser.get_default("modules"):
        modules = ["hello_asgi:app", "json_asgi:app"]
    if opts.asgi:
        run = functools.partial(measure_asgi, per_connection=opts.per_connection)
    else:
        run = measure
    print(f"| app | procmaster µs/request | {peer} µs/request | procmaster / {peer} |")
    print("|---|---:|---:|---:|")
    for module in modules:
        got: dict[str, list[float]] = {"procmaster": [], peer: []}
        for _ in range(opts.rounds):
            for server in got:
                got[server].append(run(server, module, opts.n))
                print(f"  {module} {server} {got[server][-1]:.1f} µs", file=sys.stderr)
        pm, other = (statistics.median(got[s]) for s in ("procmaster", peer))
        print(f"| `{module}` | {pm:.1f} | {other:.1f} | {pm / other:.2f} |")


if __name__ == "__main__":
    main()
