"""Files sent with sendfile (static files, ``wsgi.file_wrapper``) go through the
worker's event loop: one client reading a big file slowly does not hold the
worker, other clients are answered meanwhile."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

import pytest
from support import free_port, http_get, wait_for

SIZE = 32 << 20


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("sendfile")
    static = root / "static"
    static.mkdir()
    path = static / "big.bin"
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for i in range(SIZE >> 20):
            data = block[i:] + block[:i]
            fh.write(data)
            digest.update(data)
    return path, digest.hexdigest()


class SlowReader(threading.Thread):
    """Asks for ``target`` and reads the answer a little at a time until told to
    hurry, then reads the rest at full speed."""

    def __init__(self, port: int, request: bytes) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        # a small receive window: the server's writes soon have to wait for us
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        self.sock.settimeout(60)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(request)
        self.received = 0
        self.hurry = threading.Event()
        self.data = bytearray()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                chunk = self.sock.recv(4096 if not self.hurry.is_set() else 1 << 20)
                if not chunk:
                    return
                self.data += chunk
                self.received += len(chunk)
                if not self.hurry.is_set():
                    self.hurry.wait(0.02)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.sock.close()


def uwsgi_packet(env: dict) -> bytes:
    data = b"".join(
        len(k).to_bytes(2, "little") + k.encode() + len(v).to_bytes(2, "little") + v.encode()
        for k, v in env.items()
    )
    return bytes([0]) + len(data).to_bytes(2, "little") + bytes([0]) + data


@pytest.mark.parametrize("target", ["static", "file_wrapper", "uwsgi"])
def test_slow_reader_of_a_big_file_does_not_hold_the_worker(procmaster, big_file, target):
    path, digest = big_file
    port, uwsgi_port = free_port(), free_port()
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--uwsgi-socket",
        f"127.0.0.1:{uwsgi_port}",
        "--module",
        "testapp",
        "--processes",
        "1",
        # a stalled write would hold a blocking worker for this long
        "--socket-timeout",
        "120",
        "--static-map",
        f"/static={path.parent}",
        "--disable-logging",
        wait_port=port,
    )
    if target == "uwsgi":  # a file_wrapper response to a proxy speaking uwsgi
        env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/file", "QUERY_STRING": f"path={path}"}
        slow = SlowReader(uwsgi_port, uwsgi_packet(env))
    else:
        url = "/static/big.bin" if target == "static" else f"/file?path={path}"
        slow = SlowReader(
            port, f"GET {url} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        )
    slow.start()
    try:
        wait_for(lambda: slow.received > 0, 30, what="the first bytes of the big file")
        for _ in range(5):
            t0 = time.monotonic()
            status, _, body = http_get(port, "/", timeout=30)
            assert status == 200 and body
            # answered while the big file is still on its way, and promptly
            assert slow.is_alive() and slow.received < SIZE // 2
            assert time.monotonic() - t0 < 10
    finally:
        slow.hurry.set()
    slow.join(60)
    assert not slow.is_alive() and slow.error is None, slow.error
    head, _, body = bytes(slow.data).partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")), head
    assert len(body) == SIZE
    assert hashlib.sha256(body).hexdigest() == digest


def test_a_kept_alive_connection_goes_on_after_a_file_that_waited(procmaster, big_file):
    """The file fills the socket (sendfile waits for EPOLLOUT), then the next
    request on the same connection is answered."""
    path, digest = big_file
    port = free_port()
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--processes",
        "1",
        "--static-map",
        f"/static={path.parent}",
        "--disable-logging",
        wait_port=port,
    )
    with socket.socket() as sock:
        # a small window (set before connecting): the file soon fills it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = bytearray()
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in head
        body = bytearray(body)
        while len(body) < SIZE:
            chunk = sock.recv(1 << 20)
            assert chunk, "the connection closed before the end of the file"
            body += chunk
        assert len(body) == SIZE and hashlib.sha256(body).hexdigest() == digest
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), rest[:200]


def test_a_client_that_stops_reading_a_file_is_closed_by_the_write_deadline(procmaster, big_file):
    path, _ = big_file
    port = free_port()
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--processes",
        "1",
        "--socket-timeout",
        "1",
        "--static-map",
        f"/static={path.parent}",
        wait_port=port,
    )
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
        # and nothing more is read: the worker gives up after socket-timeout
        server.wait_log("connection closed during response to GET /static/big.bin", 30)
        status, _, _ = http_get(port, "/", timeout=30)
        assert status == 200
