"""The ASGI websocket scope on the shared WebSocket session: echo (text and
binary), broadcast, a denied upgrade, the app's own HTTP answer to an upgrade
(the ``websocket.http.response`` extension, hostile ones too), 1001 when a
reload's mercy ends."""

from __future__ import annotations

import json
import signal

import pytest
from support import free_port, http_get, wait_for
from support.nginx import nginx_binary, start_nginx
from support.wsclient import WS, raw_upgrade
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


def upgrade_answer(port: int, path: str) -> bytes:
    """Everything the server sends to an upgrade request, up to its close."""
    sock, got = raw_upgrade(port, path)
    with sock:
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"{path}: the server kept the connection: {got!r}") from None
            if not data:
                return got
            got += data


def test_app_answers_the_upgrade_with_its_own_http_response(site):
    server, port, _ = site
    pid = server.worker_pids()
    ws = WS(port, "/refuse/teapot")
    assert isinstance(ws.accept, RejectConnection), ws.accept
    assert ws.accept.status_code == 418
    assert (b"x-why", b"no tea") in ws.accept.headers
    assert ws.body == b"short and stout\n"
    raw = upgrade_answer(port, "/refuse/teapot")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 418 I'm a Teapot", raw
    assert b"x-why: no tea" in lines and b"Connection: close" in lines, raw
    assert b"Transfer-Encoding: chunked" in lines, raw  # (more_body: the length was unknown)
    assert body == b"a\r\nshort and \r\n6\r\nstout\n\r\n0\r\n\r\n", raw
    assert server.worker_pids() == pid


BAD = ["status-101", "status-text", "status-big", "crlf", "lf-name", "nul", "not-bytes",
       "not-pairs", "after-accept", "close-after-start", "body-first", "body-text"]  # fmt: skip


def test_bad_http_response_messages_are_a_500_and_one_log_line(site):
    server, port, _ = site
    pid = server.worker_pids()
    before = len(server.log)
    for name in BAD:
        raw = upgrade_answer(port, f"/refuse/{name}")
        if name == "after-accept":  # accepted, then the bad message: closed with 1011
            assert raw.startswith(b"HTTP/1.1 101 "), raw
            assert raw.endswith(b"\x88\x02\x03\xf3"), raw
        else:
            assert raw.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), (name, raw)
        assert b"evil" not in raw and b"\x00" not in raw and b"x-b" not in raw, (name, raw)
    for name in BAD:
        wait_for(lambda n=name: f"GET /refuse/{n} " in server.log[before:], 10, what=name)
    logged = server.log[before:]
    for name in BAD:
        lines = [ln for ln in logged.splitlines() if f"ASGI app for GET /refuse/{name}:" in ln]
        assert len(lines) == 1, (name, logged)
    # (the log is escaped: the injected header never starts a line of its own)
    assert not any(ln.startswith(("Set-Cookie", "x-b")) for ln in logged.splitlines()), logged
    assert "Traceback" not in logged, logged
    assert server.worker_pids() == pid
    ws = WS(port, "/echo")
    ws.send("still here")
    assert ws.recv() == "still here"
    ws.close()


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
            refused = WS(front, "/refuse/teapot")
            assert isinstance(refused.accept, RejectConnection), (front, refused.accept)
            assert refused.accept.status_code == 418, (front, refused.accept)
            assert (b"x-why", b"no tea") in refused.accept.headers
            assert refused.body == b"short and stout\n"
            bad = WS(front, "/refuse/crlf")
            assert isinstance(bad.accept, RejectConnection) and bad.accept.status_code == 500
            assert not any(b"evil" in k + v for k, v in bad.accept.headers)
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
