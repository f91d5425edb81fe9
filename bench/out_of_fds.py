"""One ASGI worker out of file descriptors: are the connections waiting in its
listen queue answered, or reset? procmaster against uvicorn (httptools, uvloop).

    python bench/out_of_fds.py                        # both, 120 clients, 64 descriptors
    python bench/out_of_fds.py --clients 200 --nofile 48
    python bench/out_of_fds.py --tree ../other        # procmaster from another checkout

Theory of operation
-------------------
Each server runs one worker on a unix socket with ``RLIMIT_NOFILE`` set to
``--nofile`` (soft and hard, by util-linux ``prlimit`` from exec on), serving
``tests/apps/asgiapp.py``. This process then connects ``--clients`` clients at
once, each asking ``/sleep?2`` with ``Connection: close``, more than the worker
has descriptors for, and reads every answer to EOF: a status line counts as
answered, an EOF or a reset before one as reset, a connect the full queue
refused as refused. A server that takes its connections through libuv's own
listener closes every connection waiting in the queue when its accept fails
with EMFILE (so that its loop does not spin); one that stops accepting for a
moment leaves them waiting and answers them once descriptors are free.

Must not know: how either server accepts (it only counts what clients got).
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import signal
import socket
import sys
import tempfile

from processes import ROOT, answers_unix, asgi_worker_argv, spawn, stop_tree, tree_env, wait_until

APPS = os.path.join(ROOT, "tests", "apps")
REQUEST = b"GET /sleep?2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def clients(path: str, n: int) -> collections.Counter:
    """``n`` clients at once; what each one got."""
    got: collections.Counter = collections.Counter()
    socks: list[socket.socket] = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(60)
        try:
            s.connect(path)
            s.sendall(REQUEST)
        except OSError:  # (a unix socket's full queue refuses at once)
            got["refused"] += 1
            s.close()
            continue
        socks.append(s)
    for s in socks:
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except OSError:
            pass
        got["answered" if data.startswith(b"HTTP/1.1 ") else "reset"] += 1
        s.close()
    return got


def run(kind: str, tree: str, n: int, nofile: int) -> collections.Counter:
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "app.sock")
    limit = ["prlimit", f"--nofile={nofile}:{nofile}", "--"]  # (util-linux: from exec on)
    with open(os.path.join(tmp, "server.log"), "wb") as out:
        argv = asgi_worker_argv(kind, path, APPS, "asgiapp:app", backlog=1024)
        proc = spawn([*limit, *argv], out, tmp, tree_env(tree))
    try:
        wait_until(lambda: answers_unix(path), [proc], 30, kind)
        return clients(path, n)
    finally:
        stop_tree([proc], signal.SIGINT)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=120)
    p.add_argument("--nofile", type=int, default=64)
    p.add_argument("--tree", default=ROOT, help="the procmaster checkout to run")
    p.add_argument("--only", choices=("procmaster", "uvicorn"))
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.clients + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.clients + 64), hard))
    print(
        f"| server | answered | reset | refused |  ({args.clients} clients, nofile {args.nofile})"
    )
    print("|---|---:|---:|---:|")
    for kind in ("procmaster", "uvicorn"):
        if args.only and kind != args.only:
            continue
        got = run(kind, args.tree, args.clients, args.nofile)
        print(f"| {kind} | {got['answered']} | {got['reset']} | {got['refused']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
