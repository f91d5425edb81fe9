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

    def __init__(self, port: int, target: str) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        # a small receive window: the server's writes soon have to wait for us
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        self.sock.settimeout(60)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        )
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


@pytest.mark.parametrize("target", ["static", "file_wrapper"])
def test_slow_reader_of_a_big_file_does_not_hold_the_worker(procmaster, big_file, target):
    path, digest = big_file
    port = free_port()
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
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
    url = "/static/big.bin" if target == "static" else f"/file?path={path}"
    slow = SlowReader(port, url)
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
    assert head.startswith(b"HTTP/1.1 200"), head
    assert len(body) == SIZE
    assert hashlib.sha256(body).hexdigest() == digest
