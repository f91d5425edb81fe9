"""Start-up and idle memory, procmaster vs uWSGI in the same run.

    python bench/startup.py [--rounds 5] [--bytecode]

For each round, servers interleaved: the time from ``exec`` to the first 200 on
``GET /`` (the hello app, 2 workers, ``--http-socket``, logging off; polled every
2 ms), then the idle PSS of master + workers (``/proc/PID/smaps_rollup``, the
server's whole process tree) once both workers answered, then the server is
stopped by PID. Also the time of ``procmaster --check FILE`` against
``uwsgi --ini FILE --get KEY`` (reading a config without serving).

``PYTHONDONTWRITEBYTECODE`` decides whether procmaster's modules are compiled in
every process: by default the environment's value is kept and printed;
``--bytecode`` unsets it and warms the ``__pycache__`` first (what an installed
package has).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from processes import ROOT, free_port, stop_tree, tree_env, tree_of

HELLO = os.path.join(ROOT, "bench", "apps", "hello.py")
COMMON = ("--processes", "2", "--master", "--disable-logging", "--wsgi-file", HELLO)


def first_200(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                if s.recv(64).startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                    return True
        except OSError:
            pass
        time.sleep(0.002)
    return False


def pss(proc: subprocess.Popen) -> int:
    """Bytes of PSS of the process and its descendants."""
    total = 0
    for p in tree_of([proc]):
        try:
            with open(f"/proc/{p.pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def start(name: str, env: dict) -> tuple[float, int]:
    """Seconds to the first 200, and the idle PSS (bytes) after it."""
    port = free_port()
    if name == "procmaster":
        argv = [sys.executable, "-m", "procmaster", "--http-socket", f"127.0.0.1:{port}"]
        stop = signal.SIGTERM
    else:
        argv = ["uwsgi", "--http-socket", f"127.0.0.1:{port}"]
        stop = signal.SIGINT
    with tempfile.TemporaryFile() as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [*argv, *COMMON], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            if not first_200(port, proc):
                log.seek(0)
                raise SystemExit(f"{name} gave no 200: {log.read()[-2000:]!r}")
            took = time.monotonic() - t0
            for _ in range(20):  # both workers up (a worker answers as soon as it is)
                first_200(port, proc)
            time.sleep(0.5)
            return took, pss(proc)
        finally:
            stop_tree([proc], stop)


def check_time(name: str, env: dict, ini: str) -> float:
    if name == "procmaster":
        argv = [sys.executable, "-m", "procmaster", "--check", ini]
    else:
        argv = ["uwsgi", "--ini", ini, "--get", "processes"]
    t0 = time.monotonic()
    subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=True)
    return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bytecode", action="store_true", help="unset PYTHONDONTWRITEBYTECODE")
    args = parser.parse_args()
    env = tree_env(ROOT)
    if args.bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "procmaster")])
    print(f"PYTHONDONTWRITEBYTECODE={env.get('PYTHONDONTWRITEBYTECODE', '(unset)')}")
    with tempfile.NamedTemporaryFile("w", suffix=".ini") as ini:
        ini.write(
            f"[uwsgi]\nhttp-socket = 127.0.0.1:{free_port()}\nprocesses = 2\n"
            f"master = true\nwsgi-file = {HELLO}\n"
        )
        ini.flush()
        got: dict[str, dict[str, list[float]]] = {}
        for _ in range(args.rounds):
            for name in ("procmaster", "uWSGI"):
                took, mem = start(name, env)
                row = got.setdefault(name, {"start": [], "pss": [], "check": []})
                row["start"].append(took)
                row["pss"].append(mem)
                row["check"].append(check_time(name, env, ini.name))
    print(f"{args.rounds} rounds, servers interleaved; medians (min-max)")
    for name, row in got.items():
        s, p, c = row["start"], row["pss"], row["check"]
        print(
            f"{name:<11} first 200 {statistics.median(s) * 1000:6.0f} ms "
            f"({min(s) * 1000:.0f}-{max(s) * 1000:.0f})  idle PSS "
            f"{statistics.median(p) / 2**20:5.1f} MiB ({min(p) / 2**20:.1f}-{max(p) / 2**20:.1f})  "
            f"config read {statistics.median(c) * 1000:5.0f} ms"
        )
    pm, uw = got["procmaster"], got["uWSGI"]
    print(
        "procmaster / uWSGI: first 200 "
        f"{statistics.median(pm['start']) / statistics.median(uw['start']):.2f}, idle PSS "
        f"{statistics.median(pm['pss']) / statistics.median(uw['pss']):.2f}, config read "
        f"{statistics.median(pm['check']) / statistics.median(uw['check']):.2f}"
    )


if __name__ == "__main__":
    main()
