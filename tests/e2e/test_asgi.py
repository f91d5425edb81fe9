"""ASGI apps (``asgi = module:app``): the http scope over HTTP/1.1, the uwsgi
protocol and FastCGI behind a real nginx, SCGI; the WSGI loop's limits and
answers; lifespan; the guards. One server (one worker, so a stuck loop would
show) serves the tests of the first part; the others start their own."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import time
from pathlib import Path

import pytest
from support import APPS, ROOT, Server, accepts, free_port, http_get, raw_request, wait_for
from support.nginx import nginx_binary, start_nginx

from procmaster.ipc import SIG_PRINT_REQUEST
from procmaster.protocols.fastcgi_records import encode_pairs, record

BEGIN, PARAMS, STDIN, STDOUT = 1, 4, 5, 6


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("NOTIFY_SOCKET", None)
    return env


def _start(tmp: Path, *args, env: dict | None = None, wait_port: int | None = None) -> Server:
    full = _env()
    full.update(env or {})
    server = Server([str(a) for a in args], tmp, full, tmp / f"log-{time.monotonic_ns()}")
    if wait_port is not None:
        try:
            wait_for(
                lambda: accepts(wait_port, server), 20, what=f"port {wait_port}:\n{server.log}"
            )
        except BaseException:  # a server that never answered is still stopped, by its pid
            server.kill_all()
            raise
    return server


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One master, one ASGI worker, four sockets; nginx in front of uwsgi and FastCGI."""
    tmp = tmp_path_factory.mktemp("asgi")
    names = ("http", "uwsgi", "fastcgi", "scgi", "ng_uwsgi", "ng_fcgi", "stats")
    ports = {n: free_port() for n in names}
    marker = tmp / "marker"
    server = _start(
        tmp,
        "--http-socket", f"127.0.0.1:{ports['http']}",
        "--socket", f"127.0.0.1:{ports['uwsgi']}",
        "--fastcgi-socket", f"127.0.0.1:{ports['fastcgi']}",
        "--scgi-socket", f"127.0.0.1:{ports['scgi']}",
        "--asgi", "asgiapp:app",
        "--processes", "1",
        "--master",
        "--limit-post", "4000000",
        "--socket-timeout", "3",
        "--stats", f"127.0.0.1:{ports['stats']}",
        env={"ASGI_SHUTDOWN_MARKER": str(marker)},
        wait_port=ports["http"],
    )  # fmt: skip
    nginx = None
    try:
        if nginx_binary() is not None:
            body = f"""
            server {{
                listen 127.0.0.1:{ports["ng_uwsgi"]};
                location / {{ include {{uwsgi_params}}; uwsgi_pass 127.0.0.1:{ports["uwsgi"]}; }}
            }}
            server {{
                listen 127.0.0.1:{ports["ng_fcgi"]};
                location / {{ include {{fastcgi_params}};
                              fastcgi_pass 127.0.0.1:{ports["fastcgi"]}; }}
            }}
            """
            body = body.replace("{{uwsgi_params}}", "{uwsgi_params}").replace(
                "{{fastcgi_params}}", "{fastcgi_params}"
            )
            nginx = start_nginx(tmp / "nginx", body, [ports["ng_uwsgi"], ports["ng_fcgi"]])
        yield server, ports, marker, nginx
    finally:
        if nginx is not None:
            nginx.stop()
        server.kill_all()


def _json(port: int, path: str) -> dict:
    status, _, body = http_get(port, path)
    assert status == 200, body
    return json.loads(body)


# -- the http scope, directly -------------------------------------------------------


def test_hello_scope_and_lifespan_state(site):
    server, ports, _, _ = site
    status, headers, body = http_get(ports["http"], "/")
    assert (status, body) == (200, b"Hello, ASGI\n")
    info = _json(ports["http"], "/scope?a=1&b=%20")
    assert info["method"] == "GET" and info["path"] == "/scope"
    assert info["query_string"] == "a=1&b=%20" and info["http_version"] == "1.1"
    assert info["client"][0] == "127.0.0.1" and info["headers"]["host"]
    # the lifespan startup ran in this worker, and its state reaches each request
    assert info["state_pid"] == info["pid"] == server.worker_pids()[0]


def test_body_streams_to_receive_and_back(site):
    _, ports, _, _ = site
    payload = os.urandom(1_500_000)
    status, _, body = http_get(ports["http"], "/echo", method="POST", body=payload)
    assert status == 200 and body == payload
    # chunked upload
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b"abc", b"defgh")) + b"0\r\n\r\n"
    reply = raw_request(
        ports["http"],
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunks,
    )
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"abcdefgh")


def test_streaming_head_pipelining_and_errors(site):
    server, ports, _, _ = site
    reply = raw_request(
        ports["http"], b"GET /stream?4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert b"Transfer-Encoding: chunked" in reply and b"chunk 3\n" in reply
    reply = raw_request(
        ports["http"],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /scope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert reply.count(b"HTTP/1.1 200 OK") == 3
    assert reply.count(b"Hello, ASGI") == 1 and b'"path": "/scope"' in reply
    status, _, body = http_get(ports["http"], "/raise")
    assert status == 500
    server.wait_log("RuntimeError: boom from the app")


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", b"431"),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n", b"413"),
    ],
)
def test_the_wsgi_loops_answers(site, request_bytes, status):
    _, ports, _, _ = site
    reply = raw_request(ports["http"], request_bytes)
    assert reply.split(b" ", 2)[1] == status, reply[:200]


def test_a_chunked_body_over_limit_post_is_413(site):
    _, ports, _, _ = site
    big = b"x" * 65536
    chunk = b"%x\r\n%s\r\n" % (len(big), big)
    reply = raw_request(
        ports["http"],
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 70,
    )
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_slow_clients_hold_nothing(site):
    """One worker: a client trickling its head and one that never reads its
    response do not stop others; the trickler is closed by socket-timeout."""
    _, ports, _, _ = site
    slow = socket.create_connection(("127.0.0.1", ports["http"]))
    slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    reader = socket.create_connection(("127.0.0.1", ports["http"]))
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.sendall(b"GET /stream?200000 HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        for _ in range(5):
            assert http_get(ports["http"], "/", timeout=5)[0] == 200
        slow.settimeout(10)
        assert slow.recv(100) == b""  # closed by the header deadline (socket-timeout 3)
    finally:
        slow.close()
        reader.close()


def test_a_stalled_body_is_cut_by_socket_timeout_and_a_slow_app_is_not(site):
    """The read deadline runs while a request's body is awaited (restarted at its
    head), and never while its app works: a GET whose app takes longer than
    socket-timeout (3 s) is answered, a POST whose body stalls is closed."""
    _, ports, _, _ = site
    stalled = socket.create_connection(("127.0.0.1", ports["http"]))
    try:
        stalled.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        started = time.monotonic()
        assert http_get(ports["http"], "/sleep?4", timeout=20)[0] == 200
        assert time.monotonic() - started >= 4
        stalled.settimeout(20)
        try:
            assert stalled.recv(100) == b""  # closed by the read deadline, unanswered
        except ConnectionResetError:
            pass  # (aborted: a reset is the same answer)
    finally:
        stalled.close()


def test_http_disconnect_reaches_the_app(site):
    server, ports, marker, _ = site
    disc = Path(str(marker) + ".disc")
    before = disc.read_text().count("disconnect") if disc.exists() else 0
    sock = socket.create_connection(("127.0.0.1", ports["http"]))
    sock.sendall(b"POST /disconnect HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    time.sleep(0.2)
    sock.close()
    wait_for(
        lambda: disc.exists() and disc.read_text().count("disconnect") > before,
        10,
        what="the app's http.disconnect",
    )
    time.sleep(0.2)
    assert "returned without completing" not in server.log  # a client leaving is no app error


def test_pipelined_bad_bytes_are_answered_after_the_good_request(site):
    _, ports, _, _ = site
    reply = raw_request(
        ports["http"], b"GET /sleep?0.3 HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 200") and b"Hello, ASGI" in reply
    assert b"HTTP/1.1 400" in reply.partition(b"Hello, ASGI")[2]


def test_a_half_closed_client_gets_its_answer_and_the_close(site):
    _, ports, _, _ = site
    with socket.create_connection(("127.0.0.1", ports["http"]), timeout=5) as sock:
        sock.sendall(b"GET /sleep?0.2 HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        reply = raw_request_rest(sock)  # a timeout (keep-alive kept open) fails the test
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"Hello, ASGI\n")


# -- behind nginx, and SCGI ---------------------------------------------------------


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
@pytest.mark.parametrize("front", ["ng_uwsgi", "ng_fcgi"])
def test_behind_nginx(site, front):
    _, ports, _, _ = site
    info = _json(ports[front], "/scope?q=%C3%A9")
    assert info["path"] == "/scope" and info["query_string"] == "q=%C3%A9"
    assert info["client"][0] == "127.0.0.1" and info["method"] == "GET"
    payload = os.urandom(300_000)
    status, _, body = http_get(ports[front], "/echo", method="POST", body=payload)
    assert status == 200 and body == payload
    status, _, body = http_get(ports[front], "/stream?50")
    assert status == 200 and body.count(b"chunk") == 50


def _cgi(path: str, query: str = "", body: bytes = b"") -> list[tuple[bytes, bytes]]:
    return [
        (b"CONTENT_LENGTH", str(len(body)).encode()),
        (b"REQUEST_METHOD", b"POST" if body else b"GET"),
        (b"REQUEST_URI", f"{path}?{query}".encode()),
        (b"PATH_INFO", path.encode()),
        (b"QUERY_STRING", query.encode()),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"SERVER_NAME", b"x"),
        (b"SERVER_PORT", b"80"),
        (b"REMOTE_ADDR", b"10.0.0.1"),
        (b"SCRIPT_NAME", b"/mnt"),
    ]


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_scgi_uwsgi_and_fastcgi_packets(site):
    _, ports, _, _ = site
    block = b"".join(k + b"\0" + v + b"\0" for k, v in _cgi("/scope", "z=1"))
    reply = _exchange(ports["scgi"], b"%d:%b," % (len(block), block))
    info = json.loads(reply.partition(b"\r\n\r\n")[2])
    assert info["root_path"] == "/mnt" and info["path"] == "/mnt/scope"
    assert info["client"] == ["10.0.0.1", 0]
    body = b"hello over uwsgi"
    pairs = _cgi("/echo", body=body)
    block = b"".join(
        struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs
    )
    reply = _exchange(ports["uwsgi"], struct.pack("<BHB", 0, len(block), 0) + block + body)
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(body)
    packet = (
        record(BEGIN, 1, struct.pack(">HB5x", 1, 0))
        + record(PARAMS, 1, encode_pairs(_cgi("/"))) + record(PARAMS, 1) + record(STDIN, 1)
    )  # fmt: skip
    reply = _exchange(ports["fastcgi"], packet)
    assert b"Status: 200" in reply and b"Hello, ASGI" in reply


def test_stats_show_in_flight(site):
    """Two requests in flight at once in one worker."""
    server, ports, _, _ = site
    socks = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", ports["http"]))
        s.sendall(b"GET /sleep?4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        socks.append(s)
    try:
        # the loop is not blocked: another request is answered meanwhile
        assert http_get(ports["http"], "/", timeout=3.5)[0] == 200

        def in_flight() -> int:
            with socket.create_connection(("127.0.0.1", ports["stats"]), timeout=5) as s:
                stats = json.loads(raw_request_rest(s))
            return stats["workers"][0]["in_flight"]

        wait_for(lambda: in_flight() == 2, 5, what="two requests in flight in the stats")
        # SIGUSR2 (as the master forwards it): each request in flight, its age, its stack
        os.kill(server.worker_pids()[0], SIG_PRINT_REQUEST)
        log = server.wait_log("GET /sleep?4 from 127.0.0.1 running for", count=2)
        assert "asgiapp.py" in log and ", in app" in log
        for s in socks:
            s.settimeout(10)
            assert raw_request_rest(s).startswith(b"HTTP/1.1 200")
    finally:
        for s in socks:
            s.close()


def raw_request_rest(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_tls_and_the_proxy_protocol(tmp_path):
    """The transport layers (worker/transport.py) serve an ASGI app too."""
    import ssl

    from support.tls import make_pki

    pki = make_pki(tmp_path / "pki")
    port, pport = free_port(), free_port()
    server = _start(
        tmp_path, "--https-socket", f"127.0.0.1:{port},{pki.cert},{pki.key}",
        "--asgi", "asgiapp:app", "--master", "--processes", "1",
    )  # fmt: skip
    proxied = _start(
        tmp_path, "--http-socket", f"127.0.0.1:{pport}", "--enable-proxy-protocol",
        "--proxy-allow-ips", "127.0.0.1", "--asgi", "asgiapp:app", "--master",
        "--processes", "1",
    )  # fmt: skip
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca))

        def get_over_tls() -> bytes | None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                        tls.sendall(b"GET /scope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        return raw_request_rest(tls)
            except ConnectionRefusedError:
                return None

        reply = wait_for(get_over_tls, 20, what="the TLS socket")
        info = json.loads(reply.partition(b"\r\n\r\n")[2])
        assert info["scheme"] == "https" and info["path"] == "/scope"

        def get_proxied() -> bytes | None:
            try:
                return raw_request(
                    pport,
                    b"PROXY TCP4 203.0.113.7 192.0.2.1 4321 80\r\n"
                    b"GET /scope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
            except ConnectionRefusedError:
                return None

        reply = wait_for(get_proxied, 20, what="the PROXY protocol socket")
        assert json.loads(reply.partition(b"\r\n\r\n")[2])["client"] == ["203.0.113.7", 4321]
    finally:
        server.kill_all()
        proxied.kill_all()


# -- refusing what is not an ASGI app -----------------------------------------------


def test_check_and_start_refuse_a_wsgi_callable(tmp_path):
    ini = tmp_path / "site.ini"
    ini.write_text("[uwsgi]\nhttp-socket = 127.0.0.1:0\nasgi = asgiapp:wsgi_app\n")
    import subprocess
    import sys

    check = subprocess.run(
        [sys.executable, "-m", "procmaster", "--ini", str(ini), "--check"],
        env=_env(), capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    out = check.stdout + check.stderr
    assert check.returncode != 0, out
    assert f"{ini}:3" in out and "is not an ASGI 3 app" in out and "'module'" in out
    start = subprocess.run(
        [sys.executable, "-m", "procmaster", "--ini", str(ini)],
        env=_env(), capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert start.returncode != 0 and "is not an ASGI 3 app" in start.stdout + start.stderr
    ini.write_text(
        "[uwsgi]\nhttp-socket = 127.0.0.1:0\nasgi = asgiapp:app\nharakiri = 5\n"
        "static-map = /s=/tmp\nasgi-loop = asyncio\n"
    )
    check = subprocess.run(
        [sys.executable, "-m", "procmaster", "--ini", str(ini), "--check"],
        env=_env(), capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"app runner: ASGI 3 ({ini}:3: asgi = asgiapp:app): one asyncio loop" in check.stdout
    assert "harakiri 5s cancels a request's task" in check.stdout
    assert "not applied to an ASGI app (1): static-map" in check.stdout


# -- lifespan ---------------------------------------------------------------------


def test_lifespan_startup_failure_stops_the_worker_with_back_off(tmp_path):
    port = free_port()
    server = _start(
        tmp_path, "--http-socket", f"127.0.0.1:{port}", "--asgi", "asgiapp:app",
        "--master", "--processes", "1", env={"ASGI_FAIL_STARTUP": "1"},
    )  # fmt: skip
    try:
        log = server.wait_log("ASGI lifespan startup failed: database unreachable", 20, count=2)
        assert "Traceback" not in log
        assert "respawn" in log.lower() or "back" in log.lower(), log[-2000:]
    finally:
        server.kill_all()


def test_lifespan_shutdown_on_reload_and_stop(tmp_path):
    """(On the asyncio loop: the other tests run uvloop, the default when installed.)"""
    port = free_port()
    marker = tmp_path / "shutdowns"
    server = _start(
        tmp_path, "--http-socket", f"127.0.0.1:{port}", "--asgi", "asgiapp:app",
        "--master", "--processes", "2", "--asgi-loop", "asyncio",
        env={"ASGI_SHUTDOWN_MARKER": str(marker)}, wait_port=port,
    )  # fmt: skip
    try:
        wait_for(lambda: len(server.worker_pids()) == 2, 20, what="two workers")
        old = set(server.worker_pids())
        server.signal(signal.SIGHUP)
        wait_for(
            lambda: marker.exists() and old <= {int(p) for p in marker.read_text().split()},
            30,
            what=f"both old workers' lifespan shutdown:\n{server.log[-2000:]}",
        )
        wait_for(lambda: len(set(server.worker_pids()) - old) == 2, 30, what="new workers")
        assert http_get(port, "/")[0] == 200
    finally:
        server.kill_all()


_NO_LIFESPAN = {
    # what apps without lifespan support do with the scope; uvicorn serves each of them
    "raises": 'assert scope["type"] == "http", "no lifespan here"',
    "returns": 'if scope["type"] != "http":\n        return',
    "takes-then-returns": 'if scope["type"] != "http":\n        await receive()\n        return',
}


@pytest.mark.parametrize("kind", sorted(_NO_LIFESPAN))
def test_an_app_without_lifespan_support_is_served_without_it(tmp_path, kind):
    (tmp_path / "nolifespan.py").write_text(
        "async def app(scope, receive, send):\n"
        f"    {_NO_LIFESPAN[kind]}\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'served'})\n"
    )
    port = free_port()
    server = _start(
        tmp_path, "--http-socket", f"127.0.0.1:{port}", "--asgi", "nolifespan:app",
        "--chdir", tmp_path, "--master", "--processes", "2", wait_port=port,
    )  # fmt: skip
    try:
        log = server.wait_log("does not support the ASGI lifespan scope", 20, count=2)
        assert "serving without it" in log
        status, _, body = http_get(port, "/")
        assert (status, body) == (200, b"served")
        old = set(server.worker_pids())
        server.signal(signal.SIGHUP)  # (a stop sends no lifespan.shutdown to such an app)
        wait_for(lambda: not old & set(server.worker_pids()), 30, what="new workers")
        wait_for(lambda: len(server.worker_pids()) == 2, 30, what="two new workers")
        assert http_get(port, "/")[2] == b"served"
        assert "startup failed" not in server.log and "Traceback" not in server.log
    finally:
        server.kill_all()


# -- guards ------------------------------------------------------------------------


def test_harakiri_cancels_the_task_and_kills_only_a_blocked_loop(tmp_path):
    port = free_port()
    server = _start(
        tmp_path, "--http-socket", f"127.0.0.1:{port}", "--asgi", "asgiapp:app",
        "--master", "--processes", "1", "--harakiri", "2", wait_port=port,
    )  # fmt: skip
    try:
        pid = server.worker_pids()[0]
        status, _, _ = http_get(port, "/sleep?30", timeout=20)
        assert status == 500
        server.wait_log("request GET /sleep?30 ran")
        assert "cancelling its task" in server.log
        assert server.worker_pids() == [pid]  # the loop was fine: the worker lives
        try:
            http_get(port, "/block?30", timeout=20)
        except OSError:
            pass  # the worker was killed under the request
        server.wait_log("killing it", 20)
        wait_for(lambda: server.worker_pids() not in ([], [pid]), 20, what="a new worker")
    finally:
        server.kill_all()


def test_max_requests_recycles_gracefully(tmp_path):
    port = free_port()
    server = _start(
        tmp_path, "--http-socket", f"127.0.0.1:{port}", "--asgi", "asgiapp:app",
        "--master", "--processes", "1", "--max-requests", "5", wait_port=port,
    )  # fmt: skip
    try:
        pid = server.worker_pids()[0]
        for _ in range(12):
            assert http_get(port, "/", timeout=10)[0] == 200
        server.wait_log("max-requests: served 5 requests")
        wait_for(lambda: server.worker_pids() not in ([], [pid]), 20, what="a new worker")
    finally:
        server.kill_all()
