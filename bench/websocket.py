"""WebSocket benchmark: echo round trips per second and memory per open
WebSocket, procmaster against uWSGI (``--http-websockets``) in the same run.

    python bench/websocket.py                       # 8 clients x 10 s, 1,000 open
    python bench/websocket.py --clients 8 --duration 10 --open 1000 --rounds 3
    python bench/websocket.py --single 3000 --rounds 2   # one client: µs per round trip
    python bench/websocket.py --kinds procmaster-asgi,uvicorn --open 10000 --open-only --rounds 2

Theory of operation
-------------------
Both servers run ``bench/apps/ws_echo.py`` (``websocket_recv`` then
``websocket_send_binary`` in a loop) on an http-socket, 2 workers. uWSGI's sync
worker holds one WebSocket per core, so it gets ``--threads`` enough cores for
every client (``clients/2`` per worker for the round trips, ``open/2 + 8`` for
the open-WebSockets count); procmaster runs its default (no ``threads``: each
WebSocket has a thread of its own inside the worker).

Round trips: ``--clients`` connections, each sending a 32-byte masked binary
frame and waiting for the echo, back to back, for ``--duration`` seconds, all
driven by one ``selectors`` loop in this process (the same client for both
servers; on a 2-CPU machine the client takes a share of the CPU). Memory:
``--open`` WebSockets opened and each checked with one echo; the servers'
unique memory (USS, master and workers) is read before and after; the
difference divided by ``--open`` is the cost of one open WebSocket
(``--open-only``: this measure alone). The script raises its own
RLIMIT_NOFILE soft limit to the hard limit (at most 65,536; printed), which
the servers it starts inherit: 10,000 open WebSockets need 10,000 descriptors
on each side. Servers are interleaved round by round; medians are printed.
Any failed handshake, wrong echo or closed connection voids the row (printed
as void with its errors).

Must not know: how either server works inside.
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import selectors
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from processes import (  # noqa: E402
    free_port,
    procmaster_argv,
    progress,
    spawn,
    stop_tree,
    tree_env,
    tree_of,
    wait_until,
)

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
ROOT = HERE.parent
PAYLOAD = b"0123456789abcdef0123456789abcdef"
MASK = b"\x11\x22\x33\x44"
FRAME = (
    bytes([0x82, 0x80 | len(PAYLOAD)])
    + MASK
    + bytes(b ^ MASK[i % 4] for i, b in enumerate(PAYLOAD))
)
ECHO = bytes([0x82, len(PAYLOAD)]) + PAYLOAD  # what the server sends back


def server_argv(kind: str, port: int, threads: int) -> list[str]:
    common = ["--master", "--processes", "2", "--module", "ws_echo", "--listen", "1024"]
    if kind == "procmaster-asgi":
        return procmaster_argv(
            "--http-socket", f"127.0.0.1:{port}", "--pythonpath", str(APPS),
            "--disable-logging", "--master", "--processes", "2", "--listen", "1024",
            "--asgi", "ws_echo_asgi:app",
        )  # fmt: skip
    if kind == "uvicorn":  # httptools + uvloop, websockets (its default WebSocket library)
        return [
            sys.executable, "-m", "uvicorn", "--workers", "2", "--loop", "uvloop", "--http",
            "httptools", "--no-access-log", "--log-level", "warning", "--app-dir", str(APPS),
            "--port", str(port), "--backlog", "1024", "ws_echo_asgi:app",
        ]  # fmt: skip
    if kind == "uwsgi":
        return [
            "uwsgi", "--http-socket", f"127.0.0.1:{port}", "--http-websockets",
            "--pythonpath", str(APPS), "--threads", str(threads), "--die-on-term",
            "--disable-logging", *common,
        ]  # fmt: skip
    return procmaster_argv(
        "--http-socket", f"127.0.0.1:{port}", "--pythonpath", str(APPS),
        "--disable-logging", *common,
    )  # fmt: skip


def upgrade(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            raise OSError("closed during the handshake")
        head += data
    if not head.startswith(b"HTTP/1.1 101"):
        raise OSError(f"handshake refused: {head[:40]!r}")
    return sock


def echo_once(sock: socket.socket) -> None:
    sock.sendall(FRAME)
    got = b""
    while len(got) < len(ECHO):
        data = sock.recv(4096)
        if not data:
            raise OSError("closed")
        got += data
    if got != ECHO:
        raise OSError(f"bad echo {got[:20]!r}")


def round_trips(port: int, clients: int, duration: float) -> tuple[float, int]:
    """Echo round trips per second over ``clients`` connections; errors."""
    socks = [upgrade(port) for _ in range(clients)]
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    errors = 0
    count = 0
    for s in socks:
        s.send(FRAME)
    end = time.monotonic() + duration
    while time.monotonic() < end:
        for key, _ in sel.select(1.0):
            s = key.fileobj
            data = s.recv(4096)
            if not data:
                errors += 1
                sel.unregister(s)
                continue
            buf = bufs[s] + data
            while len(buf) >= len(ECHO):
                if buf[: len(ECHO)] != ECHO:
                    errors += 1
                buf = buf[len(ECHO) :]
                count += 1
                s.send(FRAME)
            bufs[s] = buf
    for s in socks:
        s.close()
    return count / duration, errors


def uss(procs) -> int:
    total = 0
    for p in tree_of(procs):
        try:
            total += p.memory_full_info().uss
        except psutil.Error:
            pass
    return total


def open_many(port: int, procs, n: int) -> tuple[float, int]:
    """Bytes of server memory (USS) per open WebSocket; errors."""
    warm = [upgrade(port) for _ in range(8)]  # threads, buffers and imports warmed up
    for s in warm:
        echo_once(s)
    time.sleep(1.0)
    before = uss(procs)
    socks = []
    errors = 0
    for _ in range(n):
        try:
            s = upgrade(port)
            echo_once(s)
            socks.append(s)
        except OSError:
            errors += 1
    time.sleep(1.0)
    after = uss(procs)
    for s in socks + warm:
        s.close()
    return (after - before) / max(1, len(socks)), errors


def latency(port: int, n: int) -> float:
    """Microseconds per round trip, one client, ``n`` back to back (after 200)."""
    sock = upgrade(port)
    for _ in range(200):
        echo_once(sock)
    start = time.perf_counter()
    for _ in range(n):
        echo_once(sock)
    elapsed = time.perf_counter() - start
    sock.close()
    return elapsed / n * 1e6


def run_one(kind: str, args, workdir: str) -> dict:
    port = free_port()
    threads = max(args.clients // 2, 1) if args.phase != "open" else args.open // 2 + 8
    log = open(os.path.join(workdir, f"{kind}.log"), "ab")
    env = tree_env(str(ROOT))
    proc = spawn(server_argv(kind, port, threads), log, workdir, env)
    try:
        wait_until(lambda: _http_ok(port), [proc], 60, kind)
        if args.phase == "single":
            return {"us": latency(port, args.single)}
        if args.phase == "rt":
            rate, errors = round_trips(port, args.clients, args.duration)
            return {"rate": rate, "errors": errors}
        per, errors = open_many(port, [proc], args.open)
        return {"per": per, "errors": errors}
    finally:
        stop_tree([proc], 2 if kind == "uwsgi" else 15)
        log.close()


def _http_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return s.recv(64)[8:13] == b" 200 "
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--open", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--single", type=int, default=0, help="only: one client, N round trips")
    ap.add_argument("--open-only", action="store_true", help="only: memory per open WebSocket")
    ap.add_argument(
        "--kinds",
        default="procmaster,uwsgi",
        help="servers, comma-separated: procmaster, uwsgi (uWSGI's API), procmaster-asgi, "
        "uvicorn (ASGI, bench/apps/ws_echo_asgi.py)",
    )
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(f"RLIMIT_NOFILE soft limit: {soft} -> {nofile} (this script and the servers it starts)")
    if args.open + 64 > nofile:
        raise SystemExit(f"--open {args.open}: over the RLIMIT_NOFILE soft limit {nofile}")
    kinds = [k for k in args.kinds.split(",") if k]
    results: dict[tuple[str, str], list[dict]] = {}
    phases = ("single",) if args.single else ("open",) if args.open_only else ("rt", "open")
    with tempfile.TemporaryDirectory(prefix="wsbench-") as workdir:
        for rnd in range(args.rounds):
            for phase in phases:
                for kind in kinds:
                    args.phase = phase
                    progress(f"round {rnd + 1}: {kind} {phase}")
                    results.setdefault((kind, phase), []).append(run_one(kind, args, workdir))
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print()
    if args.single:
        print(f"| server | µs per round trip (one client, {args.single} back to back) |")
        print("|---|---:|")
        for kind in kinds:
            us = [r["us"] for r in results[(kind, "single")]]
            print(f"| {kind} | {statistics.median(us):,.0f} ({min(us):,.0f} – {max(us):,.0f}) |")
        return
    print(f"| server | echo round trips/s ({args.clients} clients) | errors "
          f"| memory per open WebSocket ({args.open} open, USS) | errors |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for kind in kinds:
        cells = []
        for phase, figure in (("rt", _rate), ("open", _per)):
            runs = results.get((kind, phase))
            if not runs:
                cells += ["-", "-"]
                continue
            errors = sum(r["errors"] for r in runs)
            cells += ["void" if errors else figure(runs), str(errors)]
        print(f"| {kind} | {' | '.join(cells)} |")


def _rate(runs: list[dict]) -> str:
    rates = [r["rate"] for r in runs]
    return f"{statistics.median(rates):,.0f} ({min(rates):,.0f} – {max(rates):,.0f})"


def _per(runs: list[dict]) -> str:
    pers = [r["per"] / 1024 for r in runs]
    return f"{statistics.median(pers):,.1f} KiB ({min(pers):,.1f} – {max(pers):,.1f})"


if __name__ == "__main__":
    main()
