"""HTTP on http-socket, end to end: a real procmaster, real sockets, the
validator-wrapped test app (tests/apps/testapp.py)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time

import pytest
from support import APPS, ROOT, Server, free_port, http_get, raw_request, wait_for


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http")
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    server = Server(
        [
            "--http-socket",
            f"127.0.0.1:{port}",
            "--module",
            "testapp",
            "--processes",
            "2",
            "--master",
            "--buffer-size",
            "4096",
        ],
        tmp,
        env,
        tmp / "site.log",
    )
    try:
        wait_for(lambda: _up(port), 15, what=f"the site on {port}")
        server.port = port
        server.tmp = tmp
        yield server
    finally:
        server.kill_all()


def _up(port):
    try:
        http_get(port, "/", timeout=1)
        return True
    except OSError:
        return False


def split_response(raw: bytes):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return lines[0], headers, body


def test_get_hello_with_date_and_server(site):
    status, headers, body = http_get(site.port, "/")
    assert status == 200 and body == b"Hello, World!"
    assert "Date" in headers and headers["Server"] == "procmaster"


def test_keep_alive_serves_several_requests_on_one_connection(site):
    s = socket.create_connection(("127.0.0.1", site.port), timeout=5)
    try:
        for _ in range(3):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while not data.endswith(b"Hello, World!"):
                data += s.recv(4096)
            assert data.startswith(b"HTTP/1.1 200 OK")
    finally:
        s.close()


def test_http10_gets_http10_answer_and_close(site):
    raw = raw_request(site.port, b"GET / HTTP/1.0\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == "HTTP/1.0 200 OK" and body == b"Hello, World!"


def test_http10_keep_alive_when_asked(site):
    s = socket.create_connection(("127.0.0.1", site.port), timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = b""
        while not data.endswith(b"Hello, World!"):
            data += s.recv(4096)
        assert b"Connection: keep-alive" in data
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        rest = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
        assert rest.startswith(b"HTTP/1.0 200 OK")
    finally:
        s.close()


def test_head_sends_no_body(site):
    raw = raw_request(site.port, b"HEAD /head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status.startswith("HTTP/1.1 200")
    assert headers["content-length"] == [str(len(b"body that HEAD must not send"))]
    assert body == b""


def test_head_of_streamed_response_sends_no_body(site):
    raw = raw_request(
        site.port, b"HEAD /stream?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    status, headers, body = split_response(raw)
    assert status.startswith("HTTP/1.1 200") and body == b""


@pytest.mark.parametrize("size", [0, 1, 10 * 1024, 3 * 1024 * 1024])
def test_post_echo_content_length(site, size):
    payload = os.urandom(size)
    status, _, body = http_get(
        site.port, "/echo", "POST", payload, {"Content-Type": "application/octet-stream"}
    )
    assert status == 200 and body == payload


def test_post_chunked_body(site):
    raw = raw_request(
        site.port,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    )
    status, headers, body = split_response(raw)
    assert status.startswith("HTTP/1.1 200") and body == b"hello world"


@pytest.mark.parametrize("route", ["/echo-lines", "/echo-iter"])
def test_wsgi_input_readline_and_iteration(site, route):
    payload = b"line one\nline two\n\nlast without newline"
    status, _, body = http_get(site.port, route, "POST", payload)
    assert status == 200 and body == payload


def test_expect_100_continue(site):
    s = socket.create_connection(("127.0.0.1", site.port), timeout=5)
    try:
        s.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        first = s.recv(4096)
        assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"abcde")
        data = b""
        while not data.endswith(b"abcde"):
            data += s.recv(4096)
        assert data.startswith(b"HTTP/1.1 200 OK")
    finally:
        s.close()


def test_pipelined_requests_answered_in_order(site):
    reqs = (
        b"".join(
            f"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(str(i))}\r\n\r\n{i}".encode()
            for i in range(5)
        )
        + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    raw = raw_request(site.port, reqs)
    assert raw.count(b"HTTP/1.1 200 OK") == 6
    bodies = [part.split(b"\r\n\r\n", 1)[1][:1] for part in raw.split(b"HTTP/1.1 200 OK")[1:6]]
    assert bodies == [b"0", b"1", b"2", b"3", b"4"]


def test_connection_close_honoured(site):
    raw = raw_request(
        site.port,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    assert raw.count(b"HTTP/1.1 200") == 1
    assert b"Connection: close" in raw


def test_chunked_response_on_http11(site):
    raw = raw_request(
        site.port, b"GET /stream?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    status, headers, body = split_response(raw)
    assert headers["transfer-encoding"] == ["chunked"]
    assert body == b"8\r\nchunk 0\n\r\n8\r\nchunk 1\n\r\n8\r\nchunk 2\n\r\n0\r\n\r\n"


def test_streamed_response_on_http10_is_close_delimited(site):
    raw = raw_request(site.port, b"GET /stream?n=3 HTTP/1.0\r\n\r\n")
    status, headers, body = split_response(raw)
    assert "transfer-encoding" not in headers and "content-length" not in headers
    assert body == b"chunk 0\nchunk 1\nchunk 2\n"


def test_big_streamed_response(site):
    status, headers, body = http_get(site.port, "/big?mb=20")
    assert status == 200 and len(body) == 20 << 20 and body == b"x" * (20 << 20)


def test_file_wrapper_uses_whole_file(site, tmp_path):
    data = os.urandom(5 << 20)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    status, headers, body = http_get(site.port, f"/file?path={path}")
    assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(data).digest()


def test_legacy_write_callable(site):
    status, _, body = http_get(site.port, "/write")
    assert status == 200 and body == b"written then returned"


def test_thirty_set_cookie_headers(site):
    conn_status, _, _ = http_get(site.port, "/cookies?n=30")
    raw = raw_request(
        site.port, b"GET /cookies?n=30 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    _, headers, body = split_response(raw)
    assert conn_status == 200 and len(headers["set-cookie"]) == 30 and body == b"ok"


def test_environ_values(site):
    status, _, body = http_get(
        site.port, "/env?a=%20b&c=d", headers={"X-Custom": "v1", "Host": "example.com:81"}
    )
    env = json.loads(body)
    assert env["REQUEST_METHOD"] == "GET"
    assert env["PATH_INFO"] == "/env" and env["SCRIPT_NAME"] == ""
    assert env["QUERY_STRING"] == "a=%20b&c=d"
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["REMOTE_PORT"].isdigit()
    assert env["SERVER_NAME"] == "example.com" and env["SERVER_PORT"] == "81"
    assert env["HTTP_X_CUSTOM"] == "v1"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["wsgi.url_scheme"] == "http" and env["wsgi.multiprocess"] is True


def test_percent_encoded_path_reaches_app_as_latin1(site):
    """PEP 3333: PATH_INFO is the percent-decoded path, its bytes as latin-1 (each
    byte one character: %ff is \xff, UTF-8's two bytes of "é" are two characters)."""
    raw = raw_request(
        site.port,
        b"GET /path/%ff%20x%C3%A9/%2541 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    status, headers, body = split_response(raw)
    assert status.startswith("HTTP/1.1 200")
    assert json.loads(body) == "/path/\xff x\xc3\xa9/%41"


def test_underscore_headers_dropped(site):
    raw = raw_request(
        site.port,
        b"GET /env HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: evil\r\nConnection: close\r\n\r\n",
    )
    env = json.loads(split_response(raw)[2])
    assert "HTTP_X_FORWARDED_FOR" not in env


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            400,
        ),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ],
)
def test_malformed_requests_get_error_and_close(site, raw, status):
    answer = raw_request(site.port, raw)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert b"Connection: close" in answer
    # the worker goes on serving
    assert http_get(site.port, "/")[0] == 200


def test_app_exception_gives_500_and_worker_lives(site):
    status, _, body = http_get(site.port, "/error")
    assert status == 500
    wait_for(lambda: "boom (this traceback is expected" in site.log, 5, what="traceback in log")
    assert "Traceback" in site.log
    assert http_get(site.port, "/")[0] == 200
    assert "worker 1 (pid" not in site.log and "worker 2 (pid" not in site.log  # nobody died


def test_exception_after_headers_cuts_connection(site):
    raw = raw_request(site.port, b"GET /error-late HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert not raw.endswith(b"0\r\n\r\n")  # never a clean end of a broken body
    assert http_get(site.port, "/")[0] == 200


def test_close_called_when_client_disconnects(site, tmp_path):
    marker = tmp_path / "closed.txt"
    s = socket.create_connection(("127.0.0.1", site.port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(f"GET /close-log?n=400&path={marker} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    s.recv(1000)
    s.close()
    wait_for(lambda: marker.exists() and "closed" in marker.read_text(), 10, what="close() called")
    assert http_get(site.port, "/")[0] == 200


def test_request_log_line_in_uwsgi_format(site):
    http_get(site.port, "/?logme=1")
    wait_for(lambda: "GET /?logme=1 =>" in site.log, 5, what="request log line")
    line = [ln for ln in site.log.splitlines() if "GET /?logme=1 =>" in ln][0]
    assert line.startswith("[pid: ") and "|app: 0|req: " in line
    assert "127.0.0.1 () {" in line and " vars in " in line
    assert "generated 13 bytes in " in line and "msecs (HTTP/1.1 200) " in line
    assert "headers in " in line and "(1 switches on core 0)" in line


def test_idle_client_does_not_hold_a_worker(site):
    # 20 connections that send half a request and stall: the 2 workers still answer others
    stalled = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", site.port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHo")
            stalled.append(s)
        t0 = time.monotonic()
        for _ in range(10):
            assert http_get(site.port, "/", timeout=2)[0] == 200
        assert time.monotonic() - t0 < 5
    finally:
        for s in stalled:
            s.close()
