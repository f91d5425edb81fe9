"""WebSockets through uWSGI's API (``uwsgi.websocket_*``), end to end.

The same app (tests/apps/ws_app.py) runs under procmaster and under uWSGI 2.0
(``--http-socket``) for the behaviour both share; what only procmaster does
(many WebSockets in one worker without threads, the clean close, the limits,
hostile clients, a graceful reload) is tested on procmaster alone.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import APPS, ROOT, free_port, http_get, kill_tree, remember_descendants, wait_for
from support.nginx import nginx_binary, start_nginx
from support.tls import make_pki
from support.wsclient import WS, frame, raw_upgrade, read_close
from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection

UWSGI = shutil.which("uwsgi")
KINDS = [
    "procmaster",
    pytest.param(
        "uwsgi",
        marks=pytest.mark.skipif(UWSGI is None, reason="uWSGI is not installed (.ci/run does)"),
    ),
]


class Server:
    """procmaster or uWSGI serving ws_app on an http-socket."""

    def __init__(self, kind: str, tmp: Path, *extra: str, module: str = "ws_app") -> None:
        self.kind = kind
        self.port = free_port()
        self.log_path = tmp / f"{kind}-{self.port}.log"
        self.events_path = tmp / f"events-{self.port}.txt"
        env = dict(os.environ)
        env["WS_EVENTS"] = str(self.events_path)
        env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
        env.pop("NOTIFY_SOCKET", None)
        common = ["--master", "--module", module, *extra]
        if kind == "uwsgi":
            argv = [UWSGI, "--http-socket", f"127.0.0.1:{self.port}", "--pythonpath", str(APPS)]
            argv += ["--die-on-term", "--http-websockets", *common]
        else:
            argv = [sys.executable, "-m", "procmaster", "--http-socket", f"127.0.0.1:{self.port}"]
            argv += common
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.known = {self.proc.pid}
        wait_for(self.answers, 30, what=f"{kind} to answer:\n{self.log()}")
        remember_descendants(self.proc.pid, self.known)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[str]:
        try:
            return self.events_path.read_text().splitlines()
        except FileNotFoundError:
            return []

    def answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.kind} exited:\n{self.log()}")
        try:
            return http_get(self.port, "/", timeout=2)[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        remember_descendants(self.proc.pid, self.known)
        kill_tree(self.proc, self.known)
        self.log_file.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """One server of each kind for the side-by-side tests (they do not interfere)."""
    started: dict[str, Server] = {}

    def get(kind: str) -> Server:
        if kind not in started:
            started[kind] = Server(kind, tmp_path_factory.mktemp(kind), "--processes", "1")
        return started[kind]

    yield get
    for server in started.values():
        server.stop()


@pytest.fixture(scope="module")
def pm(tmp_path_factory):
    """procmaster alone, one worker, no threads, small limits, fast pings, and a
    harakiri shorter than the WebSockets its tests hold (it does not apply to them)."""
    server = Server(
        "procmaster", tmp_path_factory.mktemp("pm"), "--processes", "1",
        "--websocket-max-size", "64", "--socket-timeout", "3",
        "--websocket-ping-freq", "1", "--websocket-pong-tolerance", "1", "--harakiri", "2",
    )  # fmt: skip
    yield server
    server.stop()


def worker_pid(port: int) -> int:
    ws = WS(port)
    ws.send("pid")
    pid = int(ws.recv())
    ws.close()
    return pid


# -- side by side with uWSGI ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_echo_text_and_binary(servers, kind):
    server = servers(kind)
    ws = WS(server.port, "/echo")
    assert isinstance(ws.accept, AcceptConnection)
    ws.send("héllo")
    assert ws.recv() == "héllo"
    ws.send(b"bytes in")  # a binary message comes back in a text frame (websocket_send)
    assert ws.recv() == "bytes in"
    ws.send("binary:\x00\x01")
    assert ws.recv() == b"\x00\x01"  # websocket_send_binary
    big = "x" * 200_000
    ws.send(big)
    assert ws.recv() == big
    ws.send("close")  # the app returns
    ev = ws.next_event()
    # procmaster closes cleanly (1000); uWSGI cuts the TCP connection (1006 for the client)
    expected = 1000 if kind == "procmaster" else 1006
    assert isinstance(ev, CloseConnection) and ev.code == expected, ev
    ws.shut()


@pytest.mark.parametrize("kind", KINDS)
def test_handshake_arguments(servers, kind):
    server = servers(kind)
    ws = WS(server.port, "/shake2", headers=[(b"Origin", b"http://o.test")], subprotocols=["chat"])
    assert isinstance(ws.accept, AcceptConnection), ws.accept
    assert ws.accept.subprotocol == "chat"
    assert (b"sec-websocket-origin", b"http://o.test") in ws.accept.extra_headers
    ws.send("x")
    assert ws.recv() == "x"
    ws.close()
    # without an Origin, uWSGI answers Sec-WebSocket-Origin: *
    ws = WS(server.port, "/echo")
    assert (b"sec-websocket-origin", b"*") in ws.accept.extra_headers
    ws.close()


@pytest.mark.parametrize("kind", KINDS)
def test_recv_nb(servers, kind):
    server = servers(kind)
    ws = WS(server.port, "/nb")
    assert ws.recv() == "empty"
    ws.send("later")
    assert ws.recv() == "nb:later"
    ws.shut()


@pytest.mark.parametrize("kind", KINDS)
def test_refusals_are_the_apps(servers, kind):
    server = servers(kind)
    ws = WS(server.port, "/refuse")  # the app answers without a handshake
    assert isinstance(ws.accept, RejectConnection) and ws.accept.status_code == 403
    assert ws.body == b"no websockets here"
    # no key: websocket_handshake() raises IOError, the app answers 400
    sock, head = raw_upgrade(server.port, "/echo", key=None)
    sock.close()
    assert head.startswith(b"HTTP/1.1 400"), head
    status, _, body = http_get(server.port, "/echo")  # not an upgrade request at all
    assert status == 400 and body == b"handshake failed: unable to complete websocket handshake"
    assert server.answers()


@pytest.mark.parametrize("kind", KINDS)
def test_recv_raises_ioerror_when_the_client_goes(servers, kind):
    server = servers(kind)
    ws = WS(server.port, "/errors")
    ws.close()  # a clean close: the app's websocket_recv() raises IOError
    wait_for(lambda: "recv unable to receive websocket message" in server.events(), 20,
             what=f"the app's IOError: {server.events()}")  # fmt: skip
    ws = WS(server.port, "/errors")
    ws.shut()  # the client vanishes: the same
    wait_for(lambda: server.events().count("recv unable to receive websocket message") == 2,
             20, what=f"the app's IOError: {server.events()}")  # fmt: skip


# -- procmaster --------------------------------------------------------------------


def test_one_worker_without_threads_holds_many_websockets(pm):
    """uWSGI's sync worker is held by its one WebSocket; procmaster's is not."""
    socks = [WS(pm.port, "/echo") for _ in range(40)]
    for i, ws in enumerate(socks):
        ws.send(f"m{i}")
    assert [ws.recv() for ws in socks] == [f"m{i}" for i in range(40)]
    assert http_get(pm.port, "/", timeout=5)[0] == 200  # plain requests go on meanwhile
    pids = set()
    for ws in socks[:3]:
        ws.send("pid")
        pids.add(ws.recv())
    assert len(pids) == 1  # all in the one worker
    for ws in socks:
        assert isinstance(ws.close(), CloseConnection)


def test_threads_too(tmp_path):
    server = Server("procmaster", tmp_path, "--processes", "1", "--threads", "2")
    try:
        socks = [WS(server.port, "/echo") for _ in range(5)]  # more than threads
        for ws in socks:
            ws.send("t")
        assert [ws.recv() for ws in socks] == ["t"] * 5
        assert http_get(server.port, "/", timeout=5)[0] == 200
        for ws in socks:
            ws.close()
    finally:
        server.stop()


def test_ping_pong_keepalive(pm):
    ws = WS(pm.port, "/echo", pong=False)
    ev = ws.next_event()
    assert isinstance(ev, Ping)  # websocket-ping-freq = 1, while the app waits in recv
    # no pong within websocket-pong-tolerance: the server closes
    ev = ws.next_event()
    assert isinstance(ev, CloseConnection), ev
    ws.shut()
    wait_for(lambda: "no pong within 1 s, closing" in pm.log(), 10, what="the log line")
    ok = WS(pm.port, "/echo")  # a client that answers stays
    ok.send("pid")
    pid = ok.recv()
    ok.sock.settimeout(0.2)
    t0 = time.monotonic()
    # past socket-timeout (3 s): ping periods, each ping answered; the WebSocket
    # is not a request head that came too slowly
    while time.monotonic() - t0 < 4.0:
        try:
            assert ok.next_event() is not None
        except TimeoutError:
            pass
    ok.sock.settimeout(20)
    ok.send("alive")
    assert ok.recv() == "alive"
    ok.send("pid")
    assert ok.recv() == pid  # harakiri (2 s) did not kill the worker holding it for 4 s
    ok.close()


def test_noshake_recv_raises(pm):
    # uWSGI's websocket_recv() without a handshake reads frames from the HTTP
    # socket until the client gives up; procmaster raises IOError at once
    sock, head = raw_upgrade(pm.port, "/noshake")
    sock.close()
    assert head.startswith(b"HTTP/1.1 500"), head


def test_hostile_clients_never_hang_or_kill_the_worker(pm):
    pid = worker_pid(pm.port)
    # wrong version: handshake refused (IOError in the app: its 400)
    sock, head = raw_upgrade(pm.port, "/echo", version="8")
    sock.close()
    assert head.startswith(b"HTTP/1.1 400"), head
    # a message over websocket-max-size (64 KiB): 1009
    sock, head = raw_upgrade(pm.port, "/echo")
    assert head.startswith(b"HTTP/1.1 101")
    sock.sendall(frame(2, b"x" * (65 * 1024)))
    assert read_close(sock) == 1009
    sock.close()
    # a frame that claims 2**40 bytes: 1009 once what came passes the limit
    sock, _ = raw_upgrade(pm.port, "/echo")
    sock.sendall(bytes([0x82, 0xFF]) + (2**40).to_bytes(8, "big") + b"mask" + b"y" * 70_000)
    assert read_close(sock) == 1009
    sock.close()
    # an unmasked client frame: 1002
    sock, _ = raw_upgrade(pm.port, "/echo")
    sock.sendall(frame(1, b"hi", mask=False))
    assert read_close(sock) == 1002
    sock.close()
    # a flood of fragments past the limit: 1009
    sock, _ = raw_upgrade(pm.port, "/echo")
    chunk = frame(0, b"z" * 1024, fin=False)
    sock.sendall(frame(1, b"a", fin=False))
    try:
        for _ in range(100):
            sock.sendall(chunk)
    except OSError:
        pass  # the server closed while we were still sending
    assert read_close(sock) == 1009
    sock.close()
    # a client that vanishes while the app waits in websocket_recv
    ws = WS(pm.port, "/errors")
    ws.shut()
    wait_for(lambda: "recv unable to receive websocket message" in pm.events(), 20,
             what=f"the app's IOError: {pm.events()}")  # fmt: skip
    assert worker_pid(pm.port) == pid


def test_no_thread_for_a_websocket_is_a_503_not_a_dead_worker(pm):
    pid = worker_pid(pm.port)
    assert http_get(pm.port, "/nothreads")[0] == 200
    try:
        sock, head = raw_upgrade(pm.port, "/echo")
        sock.close()
        assert head.startswith(b"HTTP/1.1 503"), head
        assert http_get(pm.port, "/")[0] == 200
    finally:
        assert http_get(pm.port, "/threads")[0] == 200
    assert worker_pid(pm.port) == pid


def test_an_app_that_raises_after_the_handshake_closes_with_1011(pm):
    pid = worker_pid(pm.port)
    ws = WS(pm.port, "/raise")
    ws.send("one")
    assert ws.recv() == "one"
    ev = ws.next_event()
    assert isinstance(ev, CloseConnection) and ev.code == 1011, ev
    ws.shut()
    wait_for(lambda: "the app failed after the handshake" in pm.log(), 10, what="the traceback")
    assert worker_pid(pm.port) == pid


def test_a_client_that_never_reads(pm):
    """The app sends without end; the client reads nothing: the app's thread
    waits (bounded buffers), the socket timeout closes the connection, the
    app's next send raises IOError; the worker serves others meanwhile."""
    pid = worker_pid(pm.port)
    sock, head = raw_upgrade(pm.port, "/flood")
    assert head.startswith(b"HTTP/1.1 101")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        assert worker_pid(pm.port) == pid  # served while the flood waits
    wait_for(lambda: any(e.startswith("flood stopped") for e in pm.events()), 30,
             what=f"the flood to stop: {pm.events()}")  # fmt: skip
    line = [e for e in pm.events() if e.startswith("flood stopped")][-1]
    assert line.endswith("unable to send websocket message"), line
    sent = int(line.split()[3].rstrip(":"))
    assert sent < 200, line  # bounded: a few MiB at most went to buffers, not 64 KiB x forever
    sock.close()
    assert worker_pid(pm.port) == pid


def test_graceful_reload_closes_with_1001(tmp_path):
    server = Server("procmaster", tmp_path, "--processes", "1", "--worker-reload-mercy", "4")
    try:
        ws = WS(server.port, "/echo")
        ws.send("pid")
        old = ws.recv()
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGHUP)
        ev = ws.next_event()
        waited = time.monotonic() - t0
        assert isinstance(ev, CloseConnection) and ev.code == 1001, ev
        assert 1.0 <= waited <= 10, waited  # near the end of the mercy, not at once
        ws.shut()
        wait_for(lambda: worker_pid(server.port) != int(old), 30, what="the new worker")
        assert "internal error" not in server.log()
    finally:
        server.stop()


# -- behind nginx ---------------------------------------------------------------


@pytest.mark.nginx
@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
def test_behind_nginx_uwsgi_pass_and_proxy_pass(tmp_path):
    """nginx in front: ``uwsgi_pass`` to a uwsgi-socket and ``proxy_pass`` to an
    http-socket, each with the Upgrade/Connection set-up nginx's docs give."""
    uport, hport, front_u, front_h = free_port(), free_port(), free_port(), free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    log = open(tmp_path / "pm.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "procmaster", "--uwsgi-socket", f"127.0.0.1:{uport}",
         "--http-socket", f"127.0.0.1:{hport}", "--master", "--processes", "1",
         "--module", "ws_app"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    known = {proc.pid}
    body = f"""
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{front_u};
        location / {{
            include {{uwsgi_params}};
            uwsgi_pass 127.0.0.1:{uport};
            uwsgi_read_timeout 60s;
        }}
    }}
    server {{
        listen 127.0.0.1:{front_h};
        location / {{
            proxy_pass http://127.0.0.1:{hport};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 60s;
        }}
    }}
    """
    try:
        wait_for(lambda: _accepts(hport) and _accepts(uport), 30, what="procmaster")
        remember_descendants(proc.pid, known)
        nginx = start_nginx(tmp_path / "nginx", body, [front_u, front_h])
        try:
            for port in (front_u, front_h):
                socks = [WS(port, "/echo") for _ in range(3)]
                for ws in socks:
                    assert isinstance(ws.accept, AcceptConnection), (port, ws.accept)
                    ws.send("through nginx")
                    assert ws.recv() == "through nginx"
                    ws.send("binary:\x07")
                    assert ws.recv() == b"\x07"
                big = "n" * 300_000
                socks[0].send(big)
                assert socks[0].recv() == big
                for ws in socks:
                    assert isinstance(ws.close(), CloseConnection)
                assert http_get(port, "/", timeout=10)[0] == 200
        finally:
            nginx.stop()
    finally:
        remember_descendants(proc.pid, known)
        kill_tree(proc, known)
        log.close()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# -- flask-uwsgi-websocket (PyPI) ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_flask_uwsgi_websocket(tmp_path, kind):
    """The real package, its documented set-up (tests/apps/flask_ws_app.py says
    why three lines are needed on Flask >= 2.3), under both servers."""
    if importlib.util.find_spec("flask_uwsgi_websocket") is None:
        pytest.skip("flask-uwsgi-websocket is not installed (the test extra has it)")
    server = Server(kind, tmp_path, "--processes", "1", module="flask_ws_app:app")
    try:
        assert http_get(server.port, "/")[2] == b"flask ok"
        ws = WS(server.port, "/echo")
        assert isinstance(ws.accept, AcceptConnection), ws.accept
        ws.send("hello flask")
        assert ws.recv() == "hello flask"
        ws.send("binary")
        assert ws.recv() == b"\x00\x01"
        ws.shut()  # (uWSGI's one sync worker is held until this WebSocket ends)
        other = WS(server.port, "/room/lobby")
        assert other.recv().startswith("welcome to lobby (")
        other.send("abc")
        assert other.recv() == "cba"
        other.shut()
        assert http_get(server.port, "/")[0] == 200
    finally:
        server.stop()


def test_a_client_that_floods_an_app_that_never_reads(pm):
    """Unread messages past websocket-max-size stop the reading: the client's
    sends block (TCP back-pressure) instead of the worker's memory growing."""
    pid = worker_pid(pm.port)
    sock, head = raw_upgrade(pm.port, "/stuck")
    assert head.startswith(b"HTTP/1.1 101")
    sock.settimeout(2.0)
    msg = frame(2, b"s" * 32 * 1024)
    sent = 0
    try:
        while sent < 64 * 1024 * 1024:
            sock.sendall(msg)
            sent += len(msg)
    except TimeoutError:
        pass
    sock.close()
    assert sent < 16 * 1024 * 1024, sent  # socket buffers and 64 KiB of messages, not 64 MiB
    assert worker_pid(pm.port) == pid


def test_wss_on_an_https_socket(tmp_path):
    """wss://: the WebSocket's bytes go through the TLS layer like a response's."""
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    log = open(tmp_path / "pm.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "procmaster", "--https-socket",
         f"127.0.0.1:{port},{pki.cert},{pki.key}", "--master", "--processes", "1",
         "--module", "ws_app"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    known = {proc.pid}
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    try:
        wait_for(lambda: _accepts(port), 30, what="procmaster")
        remember_descendants(proc.pid, known)
        raw = socket.create_connection(("127.0.0.1", port), timeout=20)
        ws = WS(port, "/echo", sock=ctx.wrap_socket(raw, server_hostname="localhost"))
        assert isinstance(ws.accept, AcceptConnection), ws.accept
        big = "s" * 300_000
        ws.send(big)
        assert ws.recv() == big
        ws.send("binary:\x01")
        assert ws.recv() == b"\x01"
        assert isinstance(ws.close(), CloseConnection)
    finally:
        remember_descendants(proc.pid, known)
        kill_tree(proc, known)
        log.close()
