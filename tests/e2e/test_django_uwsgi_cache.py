"""django-uwsgi-cache (from PyPI), as its README sets it up, on procmaster's cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from support import APPS, ROOT, free_port, http_get, wait_for


def _get(port: int, path: str) -> dict:
    status, _, body = http_get(port, path, timeout=30)
    assert status == 200, body
    return json.loads(body)


def test_the_django_cache_is_shared_by_every_worker(procmaster, tmp_path):
    port = free_port()
    ini = tmp_path / "site.ini"
    ini.write_text(
        "[uwsgi]\n"
        f"http-socket = 127.0.0.1:{port}\n"
        "master = true\nprocesses = 3\n"
        "module = djcache_app\n"
        "cache2 = name=mycache,items=100,blocksize=4096\n"
    )
    server = procmaster("--ini", ini, wait_port=port)
    assert _get(port, "/put?key=greeting&value=hello")["ok"]
    writer = _get(port, "/get?key=greeting")["value"]["by"]
    # every worker after a graceful reload is a new process: it reads what the old
    # one wrote (the cache is the instance's shared memory, kept across the reload)
    server.signal(signal.SIGHUP)
    wait_for(
        lambda: (
            writer not in {_get(port, "/get?key=greeting")["pid"] for _ in range(3)}
            and writer not in server.worker_pids()
        ),
        30,
        what=f"new workers:\n{server.log}",
    )
    answer = _get(port, "/get?key=greeting")
    assert answer["pid"] != writer and answer["value"] == {"value": "hello", "by": writer}
    assert _get(port, "/add?key=once")["added"] is True
    assert _get(port, "/add?key=once")["added"] is False
    _get(port, "/delete?key=greeting")
    assert _get(port, "/get?key=greeting")["value"] is None


def test_outside_a_server_the_package_falls_back_because_import_uwsgi_fails():
    code = "import djcache_app, uwsgicache\nprint(uwsgicache.UWSGICache.__module__)"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.stdout.strip() == "django.core.cache.backends.locmem", out.stderr
