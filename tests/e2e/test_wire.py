"""Hostile bytes on every protocol against a real procmaster (issue 15).

One worker serves HTTP, uwsgi, FastCGI and SCGI sockets. Each test keeps a
request in flight on another connection (its body half sent), sends what an
attacker or a broken proxy would, and checks: the hostile request is refused
or answered with a 500 (never a head the app or the client could split), the
in-flight request completes, and the worker is the same process. Reads wait
for the server's close (``recv() == b""``) with a deadline; a timeout fails.
"""

from __future__ import annotations

import socket
import struct
import time
from urllib.parse import quote

import pytest
from support import free_port, wait_for

from procmaster.protocols.fastcgi_records import encode_pairs, record

BEGIN, PARAMS, STDIN, STDOUT, END = 1, 4, 5, 6, 3


def start(procmaster, *extra):
    ports = {name: free_port() for name in ("http", "uwsgi", "fastcgi", "scgi")}
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{ports['http']}",
        "--socket",
        f"127.0.0.1:{ports['uwsgi']}",
        "--fastcgi-socket",
        f"127.0.0.1:{ports['fastcgi']}",
        "--scgi-socket",
        f"127.0.0.1:{ports['scgi']}",
        "--module",
        "wireapp",
        "--processes",
        "1",
        *extra,
        wait_port=ports["http"],
    )
    wait_for(lambda: len(server.worker_pids()) == 1, 15, what="the worker")
    return server, ports


def read_to_close(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """All the server sends until it closes; a timeout fails the test."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            raise AssertionError(f"the server did not close within {timeout}s: {chunks}")
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return b"".join(chunks)
        except TimeoutError:
            raise AssertionError(f"the server did not close within {timeout}s: {chunks}") from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_to_close(sock, timeout)


def http_request(target: str, extra: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n".encode()


# -- the proxies' packets -------------------------------------------------------


def cgi_vars(path: str, query: str = "", **more: bytes) -> list[tuple[bytes, bytes]]:
    pairs = {
        b"CONTENT_LENGTH": b"0",
        b"REQUEST_METHOD": b"GET",
        b"REQUEST_URI": f"{path}?{query}".encode(),
        b"PATH_INFO": path.encode(),
        b"QUERY_STRING": query.encode(),
        b"SERVER_PROTOCOL": b"HTTP/1.1",
        b"SERVER_NAME": b"x",
        b"SERVER_PORT": b"80",
        b"REMOTE_ADDR": b"10.0.0.1",
    }
    for name, value in more.items():
        pairs[name.encode()] = value
    return list(pairs.items())


def uwsgi_packet(pairs) -> bytes:
    block = b"".join(
        struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs
    )
    return struct.pack("<BHB", 0, len(block), 0) + block


def scgi_packet(pairs) -> bytes:
    block = b"".join(k + b"\0" + v + b"\0" for k, v in pairs)
    return b"%d:%b," % (len(block), block)


def fastcgi_packet(pairs, rid: int = 1, keep: bool = False) -> bytes:
    return (
        record(BEGIN, rid, struct.pack(">HB5x", 1, 1 if keep else 0))
        + record(PARAMS, rid, encode_pairs(pairs))
        + record(PARAMS, rid)
        + record(STDIN, rid)
    )


def fastcgi_records(data: bytes) -> list[tuple[int, int, bytes]]:
    out, pos = [], 0
    while pos + 8 <= len(data):
        _, rtype, rid, clen, pad, _ = struct.unpack_from(">BBHHBB", data, pos)
        out.append((rtype, rid, data[pos + 8 : pos + 8 + clen]))
        pos += 8 + clen + pad
    return out


def fastcgi_head(data: bytes) -> bytes:
    return b"".join(c for t, _, c in fastcgi_records(data) if t == STDOUT)


PACKETS = {"uwsgi": uwsgi_packet, "scgi": scgi_packet, "fastcgi": fastcgi_packet}


def status_of(protocol: str, reply: bytes) -> bytes:
    """The status line of a reply: ``HTTP/1.1 500 ...`` or ``Status: 500 ...``."""
    if protocol == "fastcgi":
        reply = fastcgi_head(reply)
    return reply.split(b"\r\n", 1)[0]


class InFlight:
    """A POST whose body is half sent: it must complete after the attack."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(
            b"POST /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: 10\r\n\r\n12345"
        )

    def finish(self) -> bytes:
        self.sock.sendall(b"67890")
        reply = read_to_close(self.sock)
        self.sock.close()
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply
        return reply.rpartition(b"\r\n\r\n")[2]


def worker_pid(ports) -> int:
    reply = exchange(ports["http"], http_request("/pid"))
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply
    return int(reply.rpartition(b"\r\n\r\n")[2])


# -- hole 1 ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["uwsgi", "fastcgi", "scgi"])
def test_hostile_proxy_vars_never_kill_the_worker(procmaster, protocol):
    server, ports = start(procmaster)
    pid = worker_pid(ports)
    build = PACKETS[protocol]
    in_flight = InFlight(ports["http"])
    hostile = [
        cgi_vars("/pid", SERVER_PROTOCOL=b"HTTP/1.1\r\nX: 1"),
        cgi_vars("/pid", REQUEST_URI=b"/x\r\n[fake] log line"),
        cgi_vars("/pid", HTTP_X_A=b"1\nSet-Cookie: evil=1"),
    ]
    if protocol != "scgi":  # NUL ends an SCGI string
        hostile.append(cgi_vars("/pid", REQUEST_METHOD=b"GET\0"))
    for _ in range(5):
        for pairs in hostile:
            # refused: closed without an answer, the way a broken packet is
            assert exchange(ports[protocol], build(pairs)) == b""
    server.wait_log("holds CR, LF or NUL", 15)
    assert "[fake] log line" not in server.log.replace("'/x\\r\\n[fake] log line'", "")
    # a SERVER_PROTOCOL without CR/LF but not HTTP/x.y is answered, never echoed
    reply = exchange(ports[protocol], build(cgi_vars("/pid", SERVER_PROTOCOL=b"HTTP/1.1 X")))
    assert status_of(protocol, reply) in (b"HTTP/1.0 200 OK", b"Status: 200 OK"), reply
    # the app reflecting request data into its head: a 500, never a split head
    evil = quote("1\r\nSet-Cookie: evil=1")
    reply = exchange(ports[protocol], build(cgi_vars("/echo", f"X-A={evil}")))
    assert status_of(protocol, reply).endswith(b"500 Internal Server Error"), reply
    assert b"evil" not in reply
    assert in_flight.finish() == f"10 {pid}".encode()
    assert worker_pid(ports) == pid
    assert server.worker_pids() == [pid]


def test_app_heads_that_would_split_are_a_500_over_http(procmaster):
    server, ports = start(procmaster, "--threads", "2")
    pid = worker_pid(ports)
    in_flight = InFlight(ports["http"])
    cases = [
        f"/echo?X-A={quote('1' + chr(13) + chr(10) + 'Set-Cookie: evil=1')}",
        f"/echo?X-A={quote('1' + chr(10) + 'evil: 1')}",
        f"/echo?X-A={quote('1' + chr(0))}",
        f"/echo?{quote('X A')}=1",
        f"/echo?{quote('X:evil')}=1",
        f"/echo?X-A={quote(chr(0x20AC))}",
        f"/status?{quote('200 OK' + chr(13) + chr(10) + 'Set-Cookie: evil=1')}",
        f"/status?{quote('2x0 OK')}",
    ]
    for target in cases:
        reply = exchange(ports["http"], http_request(target))
        assert reply.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), (target, reply)
        assert b"evil" not in reply
    # hostile request fields over HTTP: refused by the parser, never echoed
    for raw in (
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\rSet-Cookie: evil=1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\0\r\n\r\n",
        b"GET /\r\nSet-Cookie: evil HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHTTP/1.1\r\nX: 1\r\nHost: x\r\n\r\n",
        b"G\rET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        reply = exchange(ports["http"], raw)
        assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), (raw, reply)
        assert b"evil" not in reply
    server.wait_log("invalid response header X-A", 15)
    assert "invalid response status" in server.log
    assert in_flight.finish() == f"10 {pid}".encode()
    assert server.worker_pids() == [pid]


# -- hole 10 --------------------------------------------------------------------


def test_100_continue_comes_after_the_earlier_pipelined_response(procmaster):
    _, ports = start(procmaster)
    with socket.create_connection(("127.0.0.1", ports["http"]), timeout=10) as sock:
        sock.sendall(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        got = b""
        while b"100 Continue" not in got:
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
        first, _, _ = got.partition(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"GET\n/a\n\n"), got
        sock.sendall(b"body")
        rest = read_to_close(sock)
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\n\r\n4 " in rest, rest


# -- the smaller ones -----------------------------------------------------------


def test_uwsgi_ping_closes_right_after_the_pong(procmaster):
    _, ports = start(procmaster, "--socket-timeout", "60")
    with socket.create_connection(("127.0.0.1", ports["uwsgi"]), timeout=30) as sock:
        t0 = time.monotonic()
        sock.sendall(struct.pack("<BHB", 100, 0, 0))
        assert read_to_close(sock, 30) == struct.pack("<BHB", 100, 0, 1)
        # held until socket-timeout (60 s) before the fix
        assert time.monotonic() - t0 < 20


def test_fastcgi_id_reused_answers_the_first_then_refuses(procmaster):
    server, ports = start(procmaster)
    pid = worker_pid(ports)
    with socket.create_connection(("127.0.0.1", ports["fastcgi"]), timeout=10) as sock:
        sock.settimeout(10)
        pairs = cgi_vars("/pid")
        sock.sendall(fastcgi_packet(pairs, keep=True) + fastcgi_packet(pairs, keep=True))
        got = b""
        while [r[0] for r in fastcgi_records(got)].count(END) < 2:
            chunk = sock.recv(65536)
            assert chunk, got  # the connection stays open
            got += chunk
        records = fastcgi_records(got)
        assert fastcgi_head(got).startswith(b"Status: 200 OK\r\n")
        assert fastcgi_head(got).endswith(str(pid).encode())
        ends = [struct.unpack(">IB3x", c) for t, _, c in records if t == END]
        assert ends == [(0, 0), (0, 1)]  # complete, then FCGI_CANT_MPX_CONN
        # the same connection serves the next request
        sock.sendall(fastcgi_packet(pairs, keep=False))
        assert fastcgi_head(read_to_close(sock)).endswith(str(pid).encode())
    assert server.worker_pids() == [pid]
