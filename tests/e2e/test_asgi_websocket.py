"""The ASGI websocket scope on the shared WebSocket session: echo (text and
binary), broadcast, a denied upgrade, 1001 when a reload's mercy ends."""

from __future__ import annotations

import json
import signal

import pytest
from support import free_port, http_get, wait_for
from support.nginx import nginx_binary, start_nginx
from support.wsclient import WS
from wsproto.events import AcceptConnection, CloseConnection, RejectConnection


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from test_asgi import _start

    tmp = tmp_path_factory.mktemp("asgiws")
    port, uport = free_port(), free_port()
    server = _start(
        tmp, "--http-socket", f"127.0.0.1:{port}", "--socket", f"127.0.0.1:{uport}",
        "--asgi", "asgiapp:ws_app",
        "--master", "--processes", "1", "--worker-reload-mercy", "3", wait_port=port,
    )  # fmt: skip
    try:
        yield server, port, uport
    finally:
        server.kill_all()


def test_echo_text_binary_and_scope(site):
    _, port, _ = site
    ws = WS(port, "/echo", subprotocols=["chat"])
    assert isinstance(ws.accept, AcceptConnection) and ws.accept.subprotocol == "chat"
    ws.send("hello")
    assert ws.recv() == "hello"
    ws.send(b"\x00\x01" * 40000)
    assert ws.recv() == b"\x00\x01" * 40000
    ws.send("scope")
    assert json.loads(ws.recv()) == {"scheme": "ws", "path": "/echo", "sub": ["chat"]}
    assert isinstance(ws.close(), CloseConnection)


def test_broadcast_and_denial(site):
    _, port, _ = site
    a, b = WS(port, "/room"), WS(port, "/room")
    a.send("to everyone")
    assert a.recv() == "to everyone" and b.recv() == "to everyone"
    a.close()
    b.close()
    denied = WS(port, "/deny")
    assert isinstance(denied.accept, RejectConnection) and denied.accept.status_code == 403


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
def test_behind_nginx_proxy_pass_and_uwsgi_pass(site, tmp_path):
    _, port, uport = site
    front_h, front_u = free_port(), free_port()
    body = f"""
    map $http_upgrade $connection_upgrade {{{{ default upgrade; '' close; }}}}
    server {{{{
        listen 127.0.0.1:{front_u};
        location / {{{{ include {{uwsgi_params}}; uwsgi_pass 127.0.0.1:{uport}; }}}}
    }}}}
    server {{{{
        listen 127.0.0.1:{front_h};
        location / {{{{
            proxy_pass http://127.0.0.1:{port};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
        }}}}
    }}}}
    """.replace("{{", "{").replace("}}", "}")
    nginx = start_nginx(tmp_path / "nginx", body, [front_h, front_u])
    try:
        for front in (front_h, front_u):
            a, b = WS(front, "/room"), WS(front, "/room")
            assert isinstance(a.accept, AcceptConnection), (front, a.accept)
            a.send("via nginx")
            assert a.recv() == "via nginx" and b.recv() == "via nginx"
            big = "n" * 300_000
            echo = WS(front, "/echo")
            echo.send(big)
            assert echo.recv() == big
            for ws in (a, b, echo):
                assert isinstance(ws.close(), CloseConnection)
            assert http_get(front, "/", timeout=10)[0] == 200
    finally:
        nginx.stop()


def test_reload_closes_websockets_with_1001_after_mercy(site):
    server, port, _ = site
    ws = WS(port, "/echo")
    ws.send("before")
    assert ws.recv() == "before"
    old = server.worker_pids()
    server.signal(signal.SIGHUP)
    ev = ws.recv()  # kept until the mercy (3 s), then going away
    assert isinstance(ev, CloseConnection) and ev.code == 1001, ev
    wait_for(lambda: not set(old) & set(server.worker_pids()), 20, what="the old worker gone")
    fresh = WS(port, "/echo")
    fresh.send("after")
    assert fresh.recv() == "after"
    fresh.close()
