"""The HTTP conformance corpus (tests/data/http/, format in test_protocol_http.py)
sent to a real procmaster, one connection per case: each valid request reaches
the app with the expected CGI variables and body, each bad one is answered with
its status and the connection closed."""

from __future__ import annotations

import json
import os
import socket

import pytest
from support import APPS, DATA, ROOT, Server, free_port, wait_for

DATA = DATA / "http"
CASES = sorted(p.stem for p in DATA.glob("*.http"))


@pytest.fixture(scope="module")
def corpus_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    server = Server(
        [
            "--http-socket",
            f"127.0.0.1:{port}",
            "--module",
            "corpusapp",
            "--processes",
            "2",
            "--buffer-size",
            "4096",
            "--disable-logging",
        ],
        tmp,
        env,
        tmp / "corpus.log",
    )
    try:
        wait_for(lambda: _up(port), 15, what="the corpus site")
        server.port = port
        yield server
    finally:
        server.kill_all()


def _up(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Reader:
    """Reads HTTP/1.1 responses (Content-Length framed) off a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.eof = False

    def fill(self) -> bool:
        """More bytes (True), or the server closed (False: ``recv() == b""`` or a
        reset). Silence until the socket's timeout fails the test: a timeout is
        never taken for a close."""
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        except TimeoutError:
            raise AssertionError(
                f"no answer and no close within {self.sock.gettimeout()}s "
                f"(unread: {self.buf[:300]!r})"
            ) from None
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def response(self, head_only: bool = False):
        while b"\r\n\r\n" not in self.buf:
            if not self.fill():
                return None
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        length = 0 if head_only or status < 200 else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self.fill():
                break
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed(self) -> bool:
        while not self.eof:
            if not self.fill() and not self.eof:
                return False
            if self.buf:
                return False
        return True


@pytest.mark.parametrize("name", CASES)
def test_corpus_case_end_to_end(corpus_site, name):
    data = (DATA / f"{name}.http").read_bytes()
    want = json.loads((DATA / f"{name}.json").read_text())
    s = socket.create_connection(("127.0.0.1", corpus_site.port), timeout=15)
    try:
        s.sendall(data)
        reader = Reader(s)
        if want["reply"]:
            interim = reader.response()
            assert interim is not None and interim[0] == 100
        for expected in want["requests"]:
            head_only = expected["environ"].get("REQUEST_METHOD") == "HEAD"
            resp = reader.response(head_only)
            assert resp is not None, "no answer"
            status, _, body = resp
            assert status == 200, body
            if head_only:
                continue
            env = json.loads(body)
            for key, value in expected["environ"].items():
                if value == "localhost":  # the listener's address, not the default name
                    value = "127.0.0.1"
                assert env.get(key) == value, (key, env)
            assert env["body"] == expected["body"]
            for key in want.get("absent", ()):
                assert key not in env
        if want["status"] is not None:
            resp = reader.response()
            assert resp is not None and resp[0] == want["status"], resp
            assert resp[1].get("connection") == "close"
            assert reader.closed()
        elif want["requests"] and want["requests"][-1].get("keep_alive") is False:
            assert reader.closed()
    finally:
        s.close()
