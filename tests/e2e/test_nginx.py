"""uwsgi and FastCGI end to end: a real nginx in front of a real procmaster.

One procmaster (module scope) serves the same app on four sockets at once:
``socket`` over TCP and over a unix path (uwsgi protocol), ``fastcgi-socket``
and ``http-socket``. One nginx (module scope) has one server block per way of
reaching it: ``uwsgi_pass`` over TCP and unix with ``uwsgi_buffering`` on and
off, ``fastcgi_pass`` with ``fastcgi_keep_conn`` (an ``upstream`` with
``keepalive``) and without. Each request case is sent through every one of
them and must give what the same procmaster answers directly on
``http-socket``: same status, same body, same headers set by the app.

Then: a FastCGI conversation driven by ``cgi-fcgi``; malformed uwsgi packets
and FastCGI records on raw sockets (the connection is closed, a line is
logged, the worker lives on); the client's and the proxy's addresses as the
app sees them.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import psutil
import pytest
from support import APPS, ROOT, Server, free_port, http_get, wait_for
from support.nginx import nginx_binary, start_nginx

pytestmark = [
    pytest.mark.nginx,
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed"),
]

SERVER_NAME = "proxy.test"
CLIENT_ADDR = "127.0.0.2"  # the test's side of the connection to nginx (not nginx's)

# how nginx reaches procmaster: name -> (kind, pass target, directives in the location)
UPSTREAMS = {
    "uwsgi-tcp-buffered": ("uwsgi", "127.0.0.1:{uwsgi_port}", "uwsgi_buffering on;"),
    "uwsgi-tcp-unbuffered": ("uwsgi", "127.0.0.1:{uwsgi_port}", "uwsgi_buffering off;"),
    "uwsgi-unix-buffered": ("uwsgi", "unix:{uwsgi_unix}", "uwsgi_buffering on;"),
    "uwsgi-unix-unbuffered": ("uwsgi", "unix:{uwsgi_unix}", "uwsgi_buffering off;"),
    "fastcgi-keepconn": ("fastcgi", "fastcgi_keepalive", "fastcgi_keep_conn on;"),
    "fastcgi-close": ("fastcgi", "127.0.0.1:{fastcgi_port}", "fastcgi_keep_conn off;"),
}
# the same, with HTTPS set by the proxy (as behind a TLS-terminating nginx)
SECURE = {
    "uwsgi-https": ("uwsgi", "127.0.0.1:{uwsgi_port}", "uwsgi_param HTTPS on;"),
    "fastcgi-https": ("fastcgi", "127.0.0.1:{fastcgi_port}", "fastcgi_param HTTPS on;"),
}

SERVER_BLOCK = """
    server {{
        listen 127.0.0.1:{port};
        server_name {server_name};
        client_max_body_size 64m;
        client_header_buffer_size 16k;
        large_client_header_buffers 8 32k;
        location / {{
            include {params};
            {kind}_pass {target};
            {directives}
        }}
    }}
"""

INI = """[uwsgi]
master = true
processes = 2
module = nginx_app
buffer-size = 32768
socket = 127.0.0.1:{uwsgi_port}
socket = {uwsgi_unix}
fastcgi-socket = 127.0.0.1:{fastcgi_port}
http-socket = 127.0.0.1:{http_port}
"""

MIB = 1 << 20
STARTUP = 30.0  # seconds a start may take on a loaded machine (it takes well under 1)
POST_10K = os.urandom(10 * 1024)
POST_50M = os.urandom(MIB) * 50
MANY_HEADERS = {f"X-Many-{i:02d}": f"value-{i:02d}-" + "v" * 90 for i in range(64)}
ENCODED_PATH = "/path/caf%C3%A9/a%20b/%2541/%7Euser"
ENCODED_QUERY = "q=a%20b%26c%3Dd&e=%E2%82%AC&plus=a+b&pct=100%25&empty=&k%5B%5D=v"

# headers the servers (not the app) add or change: not compared
NOT_THE_APPS = {"date", "server", "connection", "keep-alive", "transfer-encoding"}


def _up_unix(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def _up_tcp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _env_for_app() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("NOTIFY_SOCKET", None)
    return env


def _start_procmaster(tmp: Path, ini_text: str, ports: list[int], unix: list[str]) -> Server:
    ini = tmp / "site.ini"
    ini.write_text(ini_text)
    server = Server(["--ini", str(ini)], tmp, _env_for_app(), tmp / "server.log")
    try:
        for port in ports:
            wait_for(
                lambda port=port: server.proc.poll() is None and _up_tcp(port),
                STARTUP,
                what=f"procmaster on {port}:\n{server.log}",
            )
        for path in unix:
            wait_for(lambda path=path: _up_unix(path), STARTUP, what=f"{path}:\n{server.log}")
        # the workers are up, not just the listening sockets
        wait_for(lambda: len(server.worker_pids()) >= 1, STARTUP, what="the workers")
        http_get(ports[-1], "/", timeout=STARTUP)
    except BaseException:
        server.kill_all()
        raise
    return server


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.uwsgi_port = free_port()
        self.fastcgi_port = free_port()
        self.http_port = free_port()
        self.uwsgi_unix = str(tmp / "uwsgi.sock")
        self.ports: dict[str, int] = {}
        self.direct_cache: dict[str, tuple] = {}
        self.server: Server | None = None
        self.servers: list[Server] = []
        self.nginx = None
        self.stuck: list[str] = []  # requests that never got an answer
        self.failed_starts: list[str] = []

    def start_procmaster(self) -> None:
        if self.server is not None:
            self.server.kill_all()
            # its sockets are closed once the last of its processes is gone
            wait_for(
                lambda: (
                    not any(_up_tcp(p) for p in (self.uwsgi_port, self.fastcgi_port))
                    and not _up_unix(self.uwsgi_unix)
                ),
                10,
                what="the old procmaster's sockets to close",
            )
        tmp = self.tmp / f"procmaster-{len(self.servers) + len(self.failed_starts)}"
        tmp.mkdir()
        self.server = _start_procmaster(
            tmp,
            self.fill(INI),
            [self.uwsgi_port, self.fastcgi_port, self.http_port],
            [self.uwsgi_unix],
        )
        self.servers.append(self.server)

    def request(self, port: int, name: str):
        """Run one case; a request left unanswered is reported with what the
        workers were doing, and the next test gets a fresh procmaster."""

        def busy() -> str:
            return f"workers on CPU meanwhile: {_busy_workers(self.server) or 'none'}"

        try:
            return run_case(port, name, on_timeout=busy)
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            self.stuck.append(f"{name} on port {port}: {exc}")
            raise AssertionError(
                f"no answer to {name!r} on port {port} ({exc}); the procmaster log ends "
                f"with:\n{self.server.log[-2000:]}"
            ) from None

    def fill(self, text: str) -> str:
        return text.format(
            uwsgi_port=self.uwsgi_port,
            fastcgi_port=self.fastcgi_port,
            http_port=self.http_port,
            uwsgi_unix=self.uwsgi_unix,
        )

    def nginx_body(self) -> str:
        blocks = [
            "    upstream fastcgi_keepalive {\n"
            f"        server 127.0.0.1:{self.fastcgi_port};\n"
            "        keepalive 8;\n"
            "    }\n"
        ]
        for name, (kind, target, directives) in {**UPSTREAMS, **SECURE}.items():
            port = self.ports[name] = free_port()
            blocks.append(
                SERVER_BLOCK.format(
                    port=port,
                    server_name=SERVER_NAME,
                    params="{" + kind + "_params}",
                    kind=kind,
                    target=self.fill(target),
                    directives=directives,
                )
            )
        return "\n".join(blocks)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nginx")
    st = Stack(tmp)
    st.start_procmaster()
    try:
        st.nginx = start_nginx(
            tmp / "nginx", st.nginx_body(), list(st.ports.values()), timeout=STARTUP
        )
        try:
            yield st
        finally:
            st.nginx.stop()
    finally:
        for server in st.servers:
            server.kill_all()


@pytest.fixture(autouse=True)
def _fresh_procmaster_after_a_hang(request):
    """After a request that never got an answer the workers may be stuck; start
    a new procmaster so the tests that follow test something."""
    if "stack" in request.fixturenames:
        st = request.getfixturevalue("stack")
        if st.stuck and len(st.servers) <= len(st.stuck) and not st.failed_starts:
            try:
                st.start_procmaster()
            except Exception as exc:
                st.failed_starts.append(str(exc))
        if st.failed_starts:
            pytest.fail(f"procmaster could not be restarted after a hang: {st.failed_starts[0]}")
    yield


def _busy_workers(server) -> list[str]:
    """Workers burning CPU while no request is in flight (a stuck loop)."""
    busy = []
    for pid in server.worker_pids():
        try:
            proc = psutil.Process(pid)
            percent = proc.cpu_percent(interval=0.3)
        except psutil.Error:
            continue
        if percent > 10:
            busy.append(f"pid {pid} at {percent:.0f}% CPU")
    return busy


# -- the request cases ------------------------------------------------------------


def fetch(port, method, path, body=None, headers=None, source=None, timeout=15.0, on_timeout=None):
    """(status, [(name, value)...] in order, body, local address). On a timeout,
    ``on_timeout()`` runs while the connection is still open (what it returns
    goes into the error)."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        local = conn.sock.getsockname()
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.getheaders(), data, local
    except TimeoutError as exc:
        if on_timeout is None:
            raise
        raise TimeoutError(f"{exc}; {on_timeout()}") from None
    finally:
        conn.close()


def app_headers(headers) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in headers if k.lower() not in NOT_THE_APPS]


def whole(status, headers, body):
    return {
        "status": status,
        "headers": app_headers(headers),
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "start": body[:80],
    }


def env_keys(*keys):
    def project(status, headers, body):
        env = json.loads(body)
        return {"status": status, "env": {k: env.get(k) for k in keys}}

    return project


def many_headers(status, headers, body):
    env = json.loads(body)
    return {"status": status, "many": {k: v for k, v in env.items() if k.startswith("HTTP_X_MANY")}}


# name -> (method, path, body, request headers, what is compared)
CASES = {
    "get": ("GET", "/", None, None, whole),
    "head": ("HEAD", "/head", None, None, whole),
    "post-0": ("POST", "/echo", b"", {"Content-Type": "application/octet-stream"}, whole),
    "post-10k": ("POST", "/echo", POST_10K, {"Content-Type": "application/octet-stream"}, whole),
    "post-50m": ("POST", "/echo", POST_50M, {"Content-Type": "application/octet-stream"}, whole),
    "response-20m": ("GET", "/big?mb=20", None, None, whole),
    "streamed": ("GET", "/stream?n=300", None, None, whole),
    "encoded-query": (
        "GET",
        "/%65nv?" + ENCODED_QUERY,
        None,
        None,
        env_keys("PATH_INFO", "QUERY_STRING", "REQUEST_METHOD"),
    ),
    "encoded-path": ("GET", f"{ENCODED_PATH}?{ENCODED_QUERY}", None, None, whole),
    "64-headers": ("GET", "/env", None, MANY_HEADERS, many_headers),
    "30-cookies": ("GET", "/cookies?n=30", None, None, whole),
    "not-found": ("GET", "/no/such/route", None, None, whole),
}


def run_case(port: int, name: str, on_timeout=None):
    method, path, body, headers, project = CASES[name]
    status, got_headers, data, _ = fetch(port, method, path, body, headers, on_timeout=on_timeout)
    return project(status, got_headers, data)


def direct(stack: Stack, name: str):
    if name not in stack.direct_cache:
        stack.direct_cache[name] = stack.request(stack.http_port, name)
    return stack.direct_cache[name]


def test_direct_answers_are_what_the_cases_expect(stack):
    """The reference itself is right (else every comparison below proves little)."""
    assert direct(stack, "get")["status"] == 200
    head = direct(stack, "head")
    assert head["length"] == 0 and ("content-length", "28") in head["headers"]
    assert direct(stack, "post-0")["length"] == 0
    post = direct(stack, "post-10k")
    assert post["sha256"] == hashlib.sha256(POST_10K).hexdigest()
    post = direct(stack, "post-50m")
    assert post["length"] == len(POST_50M)
    assert post["sha256"] == hashlib.sha256(POST_50M).hexdigest()
    big = direct(stack, "response-20m")
    assert big["length"] == 20 * MIB and ("content-length", str(20 * MIB)) in big["headers"]
    assert direct(stack, "streamed")["start"].startswith(b"chunk 0\nchunk 1\n")
    assert direct(stack, "encoded-query")["env"] == {
        "PATH_INFO": "/env",
        "QUERY_STRING": ENCODED_QUERY,
        "REQUEST_METHOD": "GET",
    }
    many = direct(stack, "64-headers")["many"]
    assert len(many) == 64 and many["HTTP_X_MANY_07"] == MANY_HEADERS["X-Many-07"]
    cookies = [v for k, v in direct(stack, "30-cookies")["headers"] if k == "set-cookie"]
    assert cookies == [f"c{i}=v{i}; Path=/" for i in range(30)]
    assert direct(stack, "not-found")["status"] == 404


def test_encoded_path_reaches_the_app_decoded_as_latin1(stack):
    status, _, body, _ = fetch(stack.http_port, "GET", f"{ENCODED_PATH}?{ENCODED_QUERY}")
    assert status == 200
    assert json.loads(body) == {
        "PATH_INFO": "/path/caf\u00c3\u00a9/a b/%41/~user",
        "SCRIPT_NAME": "",
        "QUERY_STRING": ENCODED_QUERY,
    }


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("upstream", list(UPSTREAMS))
def test_same_answer_through_nginx_as_direct(stack, upstream, case):
    expected = direct(stack, case)
    got = stack.request(stack.ports[upstream], case)
    assert got == expected


def test_fastcgi_keep_conn_reuses_the_connection(stack):
    """With fastcgi_keep_conn and an upstream keepalive pool, nginx keeps its
    connection to procmaster open between requests and sends the next request
    over it: one connection for a run of requests. (Seen with nginx 1.22: once
    it has read all Content-Length bytes of the body it finalizes the request,
    and it keeps the connection only if END_REQUEST was in that same read.)"""
    port = stack.ports["fastcgi-keepconn"]
    before: set[int] = set()
    for _ in range(5):  # a request after which nginx kept its connection
        assert fetch(port, "GET", "/")[0] == 200
        before = _established_to(stack.fastcgi_port)
        if before:
            break
    assert len(before) == 1, f"nginx kept no FastCGI connection after 5 requests: {before}"
    paths = ["/", "/head", "/big?mb=1", "/cookies?n=3", "/stream?n=3", "/echo"] * 5
    for path in paths:
        method = "POST" if path == "/echo" else "GET"
        status, _, _, _ = fetch(port, method, path, body=b"x" * 100 if method == "POST" else None)
        assert status == 200
    after = _established_to(stack.fastcgi_port)
    assert after == before, (
        f"nginx's kept FastCGI connection was not reused over {len(paths)} requests: its "
        f"local port was {sorted(before)} before them, {sorted(after)} after"
    )


def _established_to(port: int) -> set[int]:
    """Local ports of the established TCP connections to 127.0.0.1:``port``
    (``ss`` filters in the kernel: fast even with many TIME_WAIT sockets)."""
    if shutil.which("ss"):
        out = subprocess.run(
            ["ss", "-tnH", "state", "established", f"( dport = :{port} )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return {int(line.split()[2].rpartition(":")[2]) for line in out.splitlines() if line}
    return {
        c.laddr.port
        for c in psutil.net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == "ESTABLISHED"
    }


# -- addresses from the proxy ------------------------------------------------------


@pytest.mark.parametrize("upstream", list(UPSTREAMS) + list(SECURE))
def test_addresses_and_scheme_from_the_proxy(stack, upstream):
    port = stack.ports[upstream]
    status, _, body, local = fetch(port, "GET", "/env", source=CLIENT_ADDR)
    assert status == 200
    env = json.loads(body)
    assert env["REMOTE_ADDR"] == CLIENT_ADDR  # the client's, not nginx's 127.0.0.1
    assert env["REMOTE_PORT"] == str(local[1])
    assert env["SERVER_NAME"] == SERVER_NAME
    assert env["SERVER_PORT"] == str(port)  # nginx's port, not procmaster's
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    if upstream in SECURE:
        assert env.get("HTTPS") == "on"
        assert env["wsgi.url_scheme"] == "https"
    else:
        assert "HTTPS" not in env
        assert env["wsgi.url_scheme"] == "http"
    assert env["PATH_INFO"] == "/env" and env["SCRIPT_NAME"] == ""
    assert "HTTP_CONTENT_LENGTH" not in env and "HTTP_CONTENT_TYPE" not in env


def test_addresses_direct_on_http_socket(stack):
    status, _, body, local = fetch(stack.http_port, "GET", "/env", source=CLIENT_ADDR)
    env = json.loads(body)
    assert status == 200
    assert env["REMOTE_ADDR"] == CLIENT_ADDR and env["REMOTE_PORT"] == str(local[1])
    assert env["SERVER_PORT"] == str(stack.http_port)
    assert env["wsgi.url_scheme"] == "http"


# -- cgi-fcgi ----------------------------------------------------------------------


def cgi_fcgi(port: int, env: dict, stdin: bytes = b"") -> bytes:
    binary = shutil.which("cgi-fcgi")
    if binary is None:
        pytest.skip("cgi-fcgi (libfcgi-bin) is not installed")
    # cgi-fcgi sends its whole environment as FastCGI params: only what the test sets
    proc = subprocess.run(
        [binary, "-bind", "-connect", f"127.0.0.1:{port}"],
        input=stdin,
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def parse_cgi(out: bytes):
    head, sep, body = out.partition(b"\r\n\r\n")
    assert sep, f"no end of the CGI head in {out[:300]!r}"
    lines = head.decode("latin-1").split("\r\n")
    return lines, body


CGI_ENV = {
    "SCRIPT_NAME": "",
    "SERVER_NAME": "fcgi.test",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
}


def test_cgi_fcgi_get(stack):
    env = {
        **CGI_ENV,
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/env",
        "QUERY_STRING": "a=1&b=%20x",
        "HTTP_X_ASKED_BY": "cgi-fcgi",
    }
    lines, body = parse_cgi(cgi_fcgi(stack.fastcgi_port, env))
    assert lines[0] == "Status: 200 OK"
    assert "Content-Type: text/plain" in lines
    assert f"Content-Length: {len(body)}" in lines
    seen = json.loads(body)
    for key, value in env.items():
        assert seen[key] == value
    assert seen["wsgi.url_scheme"] == "http"


def test_cgi_fcgi_post_body_and_404(stack):
    data = os.urandom(70000)  # more than one FastCGI record each way
    env = {
        **CGI_ENV,
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/echo",
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(data)),
        "CONTENT_TYPE": "application/octet-stream",
    }
    lines, body = parse_cgi(cgi_fcgi(stack.fastcgi_port, env, data))
    assert lines[0] == "Status: 200 OK" and body == data
    env = {**CGI_ENV, "REQUEST_METHOD": "GET", "PATH_INFO": "/nope", "QUERY_STRING": ""}
    lines, body = parse_cgi(cgi_fcgi(stack.fastcgi_port, env))
    assert lines[0] == "Status: 404 Not Found" and body == b"not found"


def test_cgi_fcgi_head_and_stream(stack):
    env = {**CGI_ENV, "REQUEST_METHOD": "HEAD", "PATH_INFO": "/head", "QUERY_STRING": ""}
    lines, body = parse_cgi(cgi_fcgi(stack.fastcgi_port, env))
    assert lines[0] == "Status: 200 OK" and "Content-Length: 28" in lines and body == b""
    env = {**CGI_ENV, "REQUEST_METHOD": "GET", "PATH_INFO": "/stream", "QUERY_STRING": "n=3"}
    lines, body = parse_cgi(cgi_fcgi(stack.fastcgi_port, env))
    assert lines[0] == "Status: 200 OK"
    assert body == b"chunk 0\nchunk 1\nchunk 2\n"


# -- malformed packets and records on raw sockets ------------------------------------


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """One worker, default buffer-size (4096): a worker that survives bad input
    is the same process before and after."""
    tmp = tmp_path_factory.mktemp("malformed")
    ports = {"uwsgi": free_port(), "fastcgi": free_port(), "http": free_port()}
    server = _start_procmaster(
        tmp,
        "[uwsgi]\nmaster = true\nprocesses = 1\nmodule = testapp\n"
        f"socket = 127.0.0.1:{ports['uwsgi']}\n"
        f"fastcgi-socket = 127.0.0.1:{ports['fastcgi']}\n"
        f"http-socket = 127.0.0.1:{ports['http']}\n",
        [ports["uwsgi"], ports["fastcgi"], ports["http"]],
        [],
    )
    server.ports = ports
    try:
        yield server
    finally:
        server.kill_all()


def uwsgi_vars(pairs: dict) -> bytes:
    out = b""
    for k, v in pairs.items():
        k, v = k.encode("latin-1"), v.encode("latin-1")
        out += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return out


def uwsgi_packet(pairs: dict, modifier1: int = 0) -> bytes:
    data = uwsgi_vars(pairs)
    return struct.pack("<BHB", modifier1, len(data), 0) + data


GET_VARS = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/",
    "QUERY_STRING": "",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_NAME": "raw.test",
    "SERVER_PORT": "80",
}


def fcgi_record(rtype: int, rid: int, content: bytes = b"", version: int = 1) -> bytes:
    pad = -len(content) & 7
    return struct.pack(">BBHHBx", version, rtype, rid, len(content), pad) + content + b"\0" * pad


def fcgi_pairs(pairs: dict) -> bytes:
    out = b""
    for k, v in pairs.items():
        k, v = k.encode("latin-1"), v.encode("latin-1")
        for n in (len(k), len(v)):
            out += bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
        out += k + v
    return out


def fcgi_begin(rid: int = 1, keep: bool = False) -> bytes:
    return fcgi_record(1, rid, struct.pack(">HB5x", 1, 1 if keep else 0))


def fcgi_request(pairs: dict, body: bytes = b"", rid: int = 1) -> bytes:
    params = fcgi_pairs(pairs)
    out = fcgi_begin(rid) + fcgi_record(4, rid, params) + fcgi_record(4, rid)
    if body:
        out += fcgi_record(5, rid, body)
    return out + fcgi_record(5, rid)


def fcgi_stdout(data: bytes) -> bytes:
    """The STDOUT stream of a FastCGI answer, and a check it ended properly."""
    out = b""
    pos = 0
    ended = False
    while pos + 8 <= len(data):
        version, rtype, _rid, clen, plen = struct.unpack_from(">BBHHBx", data, pos)
        content = data[pos + 8 : pos + 8 + clen]
        pos += 8 + clen + plen
        if rtype == 6:
            out += content
        elif rtype == 3:
            ended = True
    assert ended, f"no END_REQUEST in {data[:200]!r}"
    return out


def exchange(port: int, data: bytes, half_close: bool = False, timeout: float = 10.0):
    """Send ``data`` (then, if asked, close our sending side); read until the
    server closes. Returns (what came back, how the connection ended)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    try:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return got, "reset"
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return got, "reset"
            except TimeoutError:
                return got, "still open"
            if not chunk:
                return got, "closed"
            got += chunk
    finally:
        s.close()


def uwsgi_ok(port: int) -> None:
    got, how = exchange(port, uwsgi_packet(GET_VARS))
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"Hello, World!"), got
    assert how == "closed"


def fastcgi_ok(port: int) -> None:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(fcgi_request({**GET_VARS}))
        got = b""
        while b"\x01\x03" not in got[-16:]:  # an END_REQUEST record's start
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    out = fcgi_stdout(got)
    assert out.startswith(b"Status: 200 OK\r\n") and out.endswith(b"Hello, World!"), out


def worker_pid(server) -> bytes:
    return http_get(server.ports["http"], "/pid")[2]


MALFORMED = {
    # name: (socket, bytes, half-close after sending, what the log line says)
    "uwsgi-datasize-past-data": (
        "uwsgi",
        struct.pack("<BHB", 0, 200, 0) + uwsgi_vars({"REQUEST_METHOD": "GET"}),
        True,
        "of 200 bytes of vars",
    ),
    "uwsgi-var-past-end": (
        "uwsgi",
        struct.pack("<BHB", 0, 12, 0)
        + struct.pack("<H", 4)
        + b"PATH"
        + struct.pack("<H", 500)
        + b"/abc",
        False,
        "runs past the 12-byte vars block",
    ),
    "uwsgi-empty-packet": ("uwsgi", struct.pack("<BHB", 0, 0, 0), False, "empty uwsgi packet"),
    "uwsgi-huge-body-then-close": (
        "uwsgi",
        uwsgi_packet(
            {
                **GET_VARS,
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/echo",
                "CONTENT_LENGTH": str(10**12),
            }
        )
        + b"x" * 100000,
        True,
        "request body bytes missing",
    ),
    "uwsgi-over-buffer-size": (
        "uwsgi",
        struct.pack("<BHB", 0, 5000, 0) + uwsgi_vars({"HTTP_X_BIG": "y" * 4990}),
        False,
        "5000 (max 4096)",
    ),
    "fastcgi-wrong-version": (
        "fastcgi",
        fcgi_record(1, 1, struct.pack(">HB5x", 1, 0), version=2),
        False,
        "unsupported FastCGI version 2",
    ),
    "fastcgi-unknown-type": (
        "fastcgi",
        fcgi_begin(1) + fcgi_record(42, 1, b"whatever"),
        False,
        "unexpected FastCGI record type 42",
    ),
    "fastcgi-truncated-content": (
        "fastcgi",
        fcgi_begin(1) + struct.pack(">BBHHBx", 1, 4, 1, 100, 4) + fcgi_pairs({"A": "b"}),
        True,
        "connection closed inside a FastCGI record",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_input_closes_logs_and_the_worker_lives_on(plain, name):
    kind, data, half_close, logged = MALFORMED[name]
    pid = worker_pid(plain)
    mark = len(plain.log)
    got, how = exchange(plain.ports[kind], data, half_close)
    assert how in ("closed", "reset"), f"the server left the connection open ({got[:100]!r})"
    assert not got.startswith(b"HTTP/1.1 200"), got[:200]
    # the same worker serves the next requests, on every protocol
    uwsgi_ok(plain.ports["uwsgi"])
    fastcgi_ok(plain.ports["fastcgi"])
    assert worker_pid(plain) == pid
    assert "exited" not in plain.log and "killed" not in plain.log, plain.log
    # and the bad input was logged (the line is written before the close)
    assert logged in plain.log[mark:], (
        f"no log line with {logged!r}; the log after the bad input:\n{plain.log[mark:]}"
    )


def test_over_buffer_size_names_the_size_and_the_option(plain):
    mark = len(plain.log)
    data = struct.pack("<BHB", 0, 6000, 0) + uwsgi_vars({"HTTP_X_BIG": "z" * 5990})
    _, how = exchange(plain.ports["uwsgi"], data)
    assert how in ("closed", "reset")
    line = wait_for(
        lambda: [ln for ln in plain.log[mark:].splitlines() if "6000" in ln],
        5,
        what=f"the size in the log:\n{plain.log[mark:]}",
    )[0]
    assert "buffer-size" in line and "4096" in line
    uwsgi_ok(plain.ports["uwsgi"])


# -- at the end: nothing went wrong behind the scenes ---------------------------------

TRAFFIC = ("get", "head", "post-10k", "streamed", "30-cookies", "not-found")


def serve_through_every_upstream(stack: Stack) -> None:
    """Requests of every kind through nginx on every upstream, each answered as
    the direct request is: the checks below look at real traffic also when they
    run alone (after the whole file, they look at everything above too)."""
    served = stack.server.log.count("[pid: ")
    for upstream in UPSTREAMS:
        for case in TRAFFIC:
            assert stack.request(stack.ports[upstream], case) == direct(stack, case), (
                upstream,
                case,
            )
    # every request reached procmaster (one request log line each)
    wait_for(
        lambda: stack.server.log.count("[pid: ") >= served + len(UPSTREAMS) * len(TRAFFIC),
        30,
        what="the request log lines of the traffic",
    )


def test_no_upstream_errors_and_no_worker_died(stack):
    """Over everything the stack served (at least the traffic made here), no
    request went unanswered, nginx logged no upstream error, and procmaster
    logged no dead worker and no traceback."""
    serve_through_every_upstream(stack)
    assert not stack.stuck, "requests never answered:\n" + "\n".join(stack.stuck)
    errors = [
        line
        for line in stack.nginx.error_log.splitlines()
        if any(level in line for level in ("[error]", "[crit]", "[alert]", "[emerg]"))
    ]
    assert not errors, "\n".join(errors[:20])
    for server in stack.servers:
        log = server.log
        assert "exited" not in log and "killed" not in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]


def test_complete_responses_are_not_logged_as_cut_short(stack):
    """nginx closes its side of a uwsgi (or non-kept FastCGI) connection once it
    has the whole response; that is no "client disconnected during response"."""
    serve_through_every_upstream(stack)
    cut = [
        line
        for server in stack.servers
        for line in server.log.splitlines()
        if "disconnected during response" in line
    ]
    assert not cut, f"{len(cut)} complete responses logged as cut short:\n" + "\n".join(cut[:10])
