"""``reuse-port`` (SO_REUSEPORT): two procmasters on one port, and a blue/green
hand-over under load: green starts beside blue, blue stops gracefully (SIGTERM),
and the load's every request is answered, first by both, then by green alone.

A hand-over with no refused connection needs the kernel to move the connections
waiting in blue's accept queue to green when blue closes its socket:
``net.ipv4.tcp_migrate_req = 1`` (Linux 5.14+), what the README tells operators
to set. The test sets it for its own duration and puts the old value back
(without it, a connection queued at blue at the moment blue closes is reset:
about one run in five failed here that way)."""

from __future__ import annotations

import os
import signal

import pytest
from support import APPS, ROOT, Load, Server, free_port, wait_for

MIGRATE = "/proc/sys/net/ipv4/tcp_migrate_req"


@pytest.fixture
def migrate_req():
    with open(MIGRATE) as f:
        old = f.read().strip()
    with open(MIGRATE, "w") as f:
        f.write("1")
    try:
        yield
    finally:
        with open(MIGRATE, "w") as f:
            f.write(old)


def _site(tmp_path, name, port):
    ini = tmp_path / f"{name}.ini"
    ini.write_text(
        f"[uwsgi]\nmodule = testapp\nmaster = true\nprocesses = 2\nreuse-port = true\n"
        f"http-socket = 127.0.0.1:{port}\nlisten = 1024\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    return Server(["--ini", str(ini)], tmp_path, env, tmp_path / f"{name}.log")


def test_blue_green_hand_over_on_one_port(tmp_path, migrate_req):
    port = free_port()
    blue = _site(tmp_path, "blue", port)
    green = None
    try:
        blue.wait_log("procmaster master pid", 20)
        wait_for(lambda: len(blue.worker_pids()) == 2, 20, what="blue's workers")
        with Load(port, path="/pid", accept=lambda s, b: s == 200 and b.isdigit()) as load:
            green = _site(tmp_path, "green", port)  # binds the same port: no EADDRINUSE
            wait_for(lambda: len(green.worker_pids()) == 2, 30, what=f"green:\n{green.log}")
            green_pids = {str(p).encode() for p in green.worker_pids()}
            wait_for(lambda: load.bodies & green_pids, 30, what="green to answer some")
            blue.signal(signal.SIGTERM)
            assert blue.wait_exit(60) == 0
            load.bodies.clear()
            load.more(200)
            assert load.bodies <= green_pids  # blue is gone; green answers all
        assert load.failures == []
    finally:
        blue.kill_all()
        if green is not None:
            green.kill_all()
