"""A Django app with ``@postfork`` closing the master's database connections and
``@atexit``, behind nginx (``uwsgi_pass``), under load through a graceful reload:
the hook runs once per worker start, atexit once per graceful worker exit, and not
one request fails."""

from __future__ import annotations

import json
import signal

import pytest
from support import Load, free_port, wait_for
from support.nginx import nginx_binary, start_nginx

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")

NGINX = """
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include {{uwsgi_params}};
            uwsgi_pass 127.0.0.1:{upstream};
        }}
    }}
"""


def _events(path, kind: str) -> list[int]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [e["pid"] for e in map(json.loads, lines) if e["kind"] == kind]


def test_postfork_and_atexit_through_a_graceful_reload_under_load(procmaster, tmp_path):
    upstream, front = free_port(), free_port()
    events = tmp_path / "events.jsonl"
    env = {"API_EVENTS": str(events), "DJ_DB": str(tmp_path / "db.sqlite3")}
    server = procmaster(
        "--master",
        "--processes",
        "2",
        "--module",
        "djpostfork_app",
        "--socket",
        f"127.0.0.1:{upstream}",
        env=env,
    )  # a uwsgi socket: the workers' postfork events say they are up
    wait_for(lambda: len(_events(events, "postfork")) == 2, 30, what=f"two workers:\n{server.log}")
    old = set(_events(events, "postfork"))
    nginx = start_nginx(tmp_path / "nginx", NGINX.format(port=front, upstream=upstream), [front])
    try:
        with Load(front, threads=4) as load:
            server.signal(signal.SIGHUP)  # a graceful reload while nginx keeps sending
            wait_for(
                lambda: len(_events(events, "postfork")) == 4,
                60,
                what=f"the new workers:\n{server.log}",
            )
            wait_for(
                lambda: set(_events(events, "atexit")) == old, 60, what=f"atexit:\n{server.log}"
            )
            load.more(200)  # the new workers serve
        print(f"{load.count} requests through nginx, {len(load.failures)} failed")
        assert load.failures == [], load.failures[:5]
        assert load.count > 250
    finally:
        nginx.stop()
    postforks = _events(events, "postfork")
    assert len(postforks) == len(set(postforks)) == 4  # once per worker start
    atexits = _events(events, "atexit")
    assert sorted(atexits) == sorted(old)  # once per graceful exit, only the old workers
    assert len({json.loads(b)["pid"] for b in load.bodies}) >= 3  # old and new answered
