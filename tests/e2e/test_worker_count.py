"""The master's worker count at run time, end to end: SIGTTIN adds a worker,
SIGTTOU removes one (never the last), and an old worker that dies while a reload
starts its replacements is said once and not respawned. Real processes, killed by
PID at the end; every wait is for a log line or a pid."""

from __future__ import annotations

import os
import signal

from support import free_port, http_get, wait_for

GATED_APP = """
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# new workers (lazy-apps: each imports this) wait here while the gate file exists
while os.path.exists(os.path.join(HERE, "gate")):
    time.sleep(0.02)
# past the gate: this process has the app (with lazy-apps, the test waits for these)
open(os.path.join(HERE, f"loaded-{os.getpid()}"), "w").close()


def application(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def start(procmaster, tmp_path, processes: int, *extra: str):
    port = free_port()
    (tmp_path / "gated.py").write_text(GATED_APP)
    fifo = tmp_path / "master.fifo"
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", "--chdir", tmp_path, "--module", "gated",
        "--processes", str(processes), "--master-fifo", fifo, "--disable-logging", *extra,
        wait_port=port,
    )  # fmt: skip
    wait_for(lambda: len(server.worker_pids()) == processes, 30, what="the workers")
    if "--lazy-apps" in extra:
        # every worker has its app (a gate closed before a slow worker got past it
        # would hold that worker too, and it would never serve)
        wait_for(
            lambda: all((tmp_path / f"loaded-{pid}").exists() for pid in server.worker_pids()),
            30,
            what="every worker's app loaded",
        )
    return server, port, fifo


def test_sigttin_adds_a_worker_and_sigttou_removes_one_never_the_last(procmaster, tmp_path):
    server, port, _ = start(procmaster, tmp_path, 2)
    before = server.worker_pids()
    server.signal(signal.SIGTTIN)
    server.wait_log("workers: 2 -> 3", timeout=30)
    wait_for(lambda: len(server.worker_pids()) == 3, 30, what="a third worker")
    added = set(server.worker_pids()) - set(before)
    assert len(added) == 1 and set(before) < set(server.worker_pids())
    assert http_get(port)[0] == 200
    server.signal(signal.SIGTTOU)
    server.wait_log("workers: 3 -> 2", timeout=30)
    # the worker with the highest id goes: the one SIGTTIN added
    wait_for(lambda: server.worker_pids() == before, 30, what="back to the first two")
    server.signal(signal.SIGTTOU)
    server.wait_log("workers: 2 -> 1", timeout=30)
    wait_for(lambda: len(server.worker_pids()) == 1, 30, what="one worker")
    last = server.worker_pids()
    # the last worker stays: a SIGTTOU now changes nothing (taken: no SIGTTOU pending,
    # and a SIGTTIN sent after it is acted on)
    server.signal(signal.SIGTTOU)
    server.signal(signal.SIGTTIN)
    server.wait_log("workers: 1 -> 2", timeout=30)
    assert "workers: 1 -> 0" not in server.log
    assert set(last) <= set(server.worker_pids())
    assert http_get(port)[0] == 200
    assert server.proc.poll() is None


def test_an_old_worker_that_dies_during_a_reload_is_not_respawned(procmaster, tmp_path):
    """While new workers start (held here: their app import waits on a gate file),
    an old worker is killed: the master says so once, does not start a worker for
    it, and the reload goes on to its end once the new workers are ready."""
    server, port, fifo = start(procmaster, tmp_path, 2, "--lazy-apps")
    old = server.worker_pids()
    (tmp_path / "gate").write_text("closed")
    with open(fifo, "w") as f:
        f.write("w")  # graceful reload of the workers
    server.wait_log("starting 2 new worker(s)", timeout=30)
    wait_for(lambda: len(server.worker_pids()) == 4, 30, what="2 new workers starting")
    victim = old[0]
    os.kill(victim, signal.SIGKILL)
    server.wait_log(f"old worker 1 (pid {victim}) killed by signal 9", timeout=30)
    # the other old worker goes on serving meanwhile
    assert int(http_get(port)[2]) == old[1]
    assert len(server.worker_pids()) == 3  # nobody replaced the dead old worker
    (tmp_path / "gate").unlink()
    server.wait_log("reload (master-fifo w) done", timeout=60)
    wait_for(lambda: not set(old) & set(server.worker_pids()), 30, what="old workers gone")
    wait_for(lambda: len(server.worker_pids()) == 2, 30, what="the 2 new workers")
    assert int(http_get(port)[2]) in server.worker_pids()
    assert server.log.count(f"(pid {victim})") == 1
    assert "respawning" not in server.log
