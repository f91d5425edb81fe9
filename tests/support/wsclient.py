"""A small blocking WebSocket client for the tests (wsproto over a socket), a
WebSocket load held through reloads, and raw helpers for hostile frames."""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
import time

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from support import wait_for

__all__ = ["WS", "WsLoad", "frame", "raw_upgrade", "read_close"]


class WS:
    """``WS(port, "/echo")``: connected and upgraded (``accept`` is the server's
    answer: AcceptConnection or RejectConnection). Pings are answered unless
    ``pong=False`` (then ``recv`` returns them)."""

    def __init__(
        self,
        port: int,
        path: str = "/echo",
        headers: list[tuple[bytes, bytes]] | None = None,
        subprotocols: list[str] | None = None,
        pong: bool = True,
        timeout: float = 20.0,
        host: str = "127.0.0.1",
        sock: socket.socket | None = None,
    ) -> None:
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pong = pong
        self.events: list = []
        self.sock.sendall(
            self.ws.send(
                Request(
                    host="localhost",
                    target=path,
                    extra_headers=headers or [],
                    subprotocols=subprotocols or [],
                )
            )
        )
        self.accept = self.next_event()
        self.body = b""
        if isinstance(self.accept, RejectConnection) and self.accept.has_body:
            while True:
                ev = self.next_event()
                if isinstance(ev, RejectData):
                    self.body += ev.data
                    if ev.body_finished:
                        break
                elif ev is None:
                    break

    def next_event(self):
        """The next event, or None when the server closed the TCP connection."""
        while not self.events:
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            for ev in self.ws.events():
                if isinstance(ev, Ping) and self.pong:
                    if self.ws.state is ConnectionState.OPEN:  # (not once we sent a close)
                        self.sock.sendall(self.ws.send(ev.response()))
                    continue
                self.events.append(ev)
            if not data and not self.events:
                return None
        return self.events.pop(0)

    def send(self, data: str | bytes) -> None:
        event = TextMessage(data) if isinstance(data, str) else BytesMessage(data)
        self.sock.sendall(self.ws.send(event))

    def recv(self):
        """The next message's data (str or bytes); a close or ping event itself."""
        ev = self.next_event()
        if isinstance(ev, TextMessage | BytesMessage):
            data = ev.data
            while not ev.message_finished:
                ev = self.next_event()
                data += ev.data
            return data
        return ev

    def close(self, code: int = 1000) -> CloseConnection | None:
        """Start the closing handshake; the server's close event (None: it cut)."""
        try:
            self.sock.sendall(self.ws.send(CloseConnection(code)))
            while True:
                ev = self.next_event()
                if ev is None or isinstance(ev, CloseConnection):
                    return ev
        finally:
            self.sock.close()

    def shut(self) -> None:
        self.sock.close()


def raw_upgrade(
    port: int, path: str = "/echo", key: str | None = "auto", version: str | None = "13"
) -> tuple[socket.socket, bytes]:
    """Send an upgrade request by hand; the socket and the response head (up to
    the blank line, or what came before the server closed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Upgrade: websocket", "Connection: Upgrade"]
    if key == "auto":
        key = base64.b64encode(os.urandom(16)).decode()
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    got = b""
    while b"\r\n\r\n" not in got:
        data = sock.recv(65536)
        if not data:
            break
        got += data
    return sock, got


def frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    """One WebSocket frame, masked as a client's must be (``mask=False``: not)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_close(sock: socket.socket) -> int | None:
    """Read until the server's close frame; its code (None: the TCP connection ended first)."""
    buf = b""
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return None
        if not data:
            break
        buf += data
    # walk the server's (unmasked) frames
    i = 0
    while i + 2 <= len(buf):
        op = buf[i] & 0x0F
        n = buf[i + 1] & 0x7F
        j = i + 2
        if n == 126:
            n = struct.unpack("!H", buf[j : j + 2])[0]
            j += 2
        elif n == 127:
            n = struct.unpack("!Q", buf[j : j + 8])[0]
            j += 8
        if op == 8:
            return struct.unpack("!H", buf[j : j + 2])[0] if n >= 2 else 1005
        i = j + n
    return None


class WsLoad:
    """WebSockets held open through a reload: ``n`` threads each keep one open
    (an echo round trip every ``every`` seconds) and open a new one when the
    server closes theirs. ``closes`` holds (code, opened, closed) of each one
    the server closed (time.monotonic()); ``kept`` counts those still open at
    the end (the client closes them, the server must answer 1000);
    ``failures`` anything else: a refused upgrade, a wrong echo, a connection
    that ended without a close frame, an error."""

    def __init__(self, port: int, path: str = "/ws", n: int = 4, every: float = 0.05) -> None:
        self.port, self.path, self.every = port, path, every
        self.closes: list[tuple[int, float, float]] = []
        self.failures: list = []
        self.kept = 0
        self.echoes = 0
        self.holding = 0  # WebSockets open now
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _run(self) -> None:
        stop = self._stop
        while not stop.is_set():
            ws = None
            try:
                ws = WS(self.port, self.path)
                if not isinstance(ws.accept, AcceptConnection):
                    self.failures.append(("refused", ws.accept))
                    stop.wait(0.1)
                    continue
                self._hold(ws, time.monotonic())
            except Exception as exc:  # every failure counts
                self.failures.append(("error", repr(exc)))
                stop.wait(0.1)
            finally:
                if ws is not None:
                    ws.shut()

    def _hold(self, ws: WS, opened: float) -> None:
        with self._lock:
            self.holding += 1
        try:
            self._echo(ws, opened)
        finally:
            with self._lock:
                self.holding -= 1

    def _echo(self, ws: WS, opened: float) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            text = f"m{n}"
            if ws.ws.state is not ConnectionState.REMOTE_CLOSING:
                ws.send(text)  # (else the server's close came in with the last echo)
            ev = ws.recv()
            if ev == text:
                self.echoes += 1
                self._stop.wait(self.every)
                continue
            if isinstance(ev, CloseConnection):
                self.closes.append((ev.code, opened, time.monotonic()))
                ws.sock.sendall(ws.ws.send(ev.response()))
            else:
                self.failures.append(("dropped" if ev is None else "unexpected", repr(ev)))
            return
        ev = ws.close()
        if isinstance(ev, CloseConnection) and ev.code == 1000:
            self.kept += 1
        else:
            self.failures.append(("client close answered with", repr(ev)))

    def __enter__(self) -> WsLoad:
        for t in self._threads:
            t.start()
        n = len(self._threads)
        wait_for(lambda: self.holding == n and self.echoes > 20, 15, what="every WebSocket open")
        return self

    def more(self, n: int = 20) -> None:
        """Wait until ``n`` more echoes came back (the site kept serving)."""
        start = self.echoes
        wait_for(lambda: self.echoes >= start + n, 20, what=f"{n} more WebSocket echoes")

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(25)
