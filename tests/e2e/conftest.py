"""End-to-end fixtures: real ``procmaster`` processes, killed by PID at the end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import APPS, ROOT, Server, accepts, accepts_unix, wait_for


@pytest.fixture
def procmaster(tmp_path, request):
    """``procmaster(*args, wait_port=PORT)`` starts a master; all are killed at the end."""
    servers: list[Server] = []

    def start(
        *args,
        cwd: Path | None = None,
        env: dict | None = None,
        wait_port: int | None = None,
        wait_unix: str | None = None,
        wait_log: str | None = None,
        timeout: float = 15.0,
        nofile: int | None = None,
    ) -> Server:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(APPS), str(ROOT), full_env.get("PYTHONPATH", "")]
        )
        full_env.pop("NOTIFY_SOCKET", None)
        if env:
            full_env.update(env)
        log_path = tmp_path / f"procmaster-{len(servers)}.log"
        server = Server([str(a) for a in args], cwd or tmp_path, full_env, log_path, nofile)
        servers.append(server)
        if wait_port is not None:
            wait_for(
                lambda: accepts(wait_port, server),
                timeout,
                what=f"port {wait_port}:\n{server.log}",
            )
        if wait_unix is not None:
            wait_for(
                lambda: accepts_unix(wait_unix, server),
                timeout,
                what=f"{wait_unix}:\n{server.log}",
            )
        if wait_log is not None:
            server.wait_log(wait_log, timeout)
        return server

    yield start
    for server in servers:
        server.kill_all()
