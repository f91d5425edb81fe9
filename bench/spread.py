"""How a burst of new keep-alive connections spreads over the workers.

    python bench/spread.py [--connections 32] [--rounds 5] [--uwsgi]

Starts procmaster (``--uwsgi``: uWSGI ``--http11-socket`` too) with 2 workers on
``tests/apps/testapp.py``, opens N connections at once (a burst, as wrk opens
its connections: each sends its request at once), asks ``/pid`` on each and counts the connections each
worker holds: a worker that takes the whole backlog in one wake-up holds all of
them for their lifetime (keep-alive), while its sibling idles. A second burst
is made while one worker is busy in the app (``/sleep?s=1``): the idle worker
should take the new connections.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import socket
import sys
import tempfile
import threading
import time

from processes import ROOT, free_port, spawn, stop_tree, tree_env, wait_until

APP = os.path.join(ROOT, "tests", "apps", "testapp.py")
REQUEST = b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n"
COMMON = ("--processes", "2", "--master", "--disable-logging", "--wsgi-file", APP)


def ask_pid(sock: socket.socket, send: bool = True) -> str:
    if send:
        sock.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(4096)
    return body.decode()


def ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            return ask_pid(s).isdigit()
    except (OSError, IndexError):
        return False


def burst(port: int, n: int, busy: bool) -> list[int]:
    """Connections held per worker after a burst of ``n`` (sorted, largest first)."""
    sleeper = None
    if busy:  # one worker busy in the app for a second while the burst arrives
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /sleep?s=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        sleeper = threading.Thread(target=lambda: s.recv(4096))
        sleeper.start()
        time.sleep(0.2)
    socks = []
    for _ in range(n):  # as wrk does: connect, send the first request at once
        socks.append(socket.create_connection(("127.0.0.1", port)))
        socks[-1].sendall(REQUEST)
    counts = collections.Counter(ask_pid(s, send=False) for s in socks)
    for s in socks:
        s.close()
    if sleeper is not None:
        sleeper.join()
        s.close()
    return sorted(counts.values(), reverse=True)


def run(name: str, argv: list[str], port: int, args, stop: int) -> None:
    with tempfile.TemporaryFile() as log:
        proc = spawn(argv, log, cwd=ROOT, env=tree_env(ROOT))
        try:
            wait_until(lambda: ready(port), [proc], 30, name)
            for busy in (False, True):
                rows = [burst(port, args.connections, busy) for _ in range(args.rounds)]
                what = "one worker busy in the app" if busy else "all workers idle"
                print(f"{name:<11} {what:<27} connections per worker: {rows}")
        finally:
            stop_tree([proc], stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--uwsgi", action="store_true", help="uWSGI --http11-socket too")
    args = parser.parse_args()
    port = free_port()
    argv = [sys.executable, "-m", "procmaster", "--http-socket", f"127.0.0.1:{port}", *COMMON]
    run("procmaster", argv, port, args, signal.SIGTERM)
    if args.uwsgi:
        port = free_port()
        argv = ["uwsgi", "--http11-socket", f"127.0.0.1:{port}", *COMMON]
        run("uWSGI", argv, port, args, signal.SIGINT)


if __name__ == "__main__":
    main()
