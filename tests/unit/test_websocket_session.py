"""The sans-IO WebSocket session (procmaster.protocols.websocket), with bytes alone:
a wsproto client on the other side, plus hand-made hostile frames."""

import base64
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import CLIENT, Connection
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from procmaster.protocols.head import HeadError
from procmaster.protocols.websocket import (
    BINARY,
    TEXT,
    HandshakeError,
    Session,
    accept_head,
    check_upgrade,
    is_upgrade,
    refusal,
)

KEY = base64.b64encode(b"0123456789abcdef").decode()


def env(**extra):
    e = {
        "REQUEST_METHOD": "GET",
        "HTTP_UPGRADE": "websocket",
        "HTTP_CONNECTION": "keep-alive, Upgrade",
        "HTTP_SEC_WEBSOCKET_VERSION": "13",
        "HTTP_SEC_WEBSOCKET_KEY": KEY,
    }
    e.update(extra)
    return {k: v for k, v in e.items() if v is not None}


def frame(opcode, payload, fin=True, mask=True):
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


def test_upgrade_checks():
    assert check_upgrade(env()) == KEY
    assert is_upgrade(env()) and not is_upgrade({"HTTP_UPGRADE": "h2c"})
    # behind nginx the Connection header may be missing: accepted
    assert check_upgrade(env(HTTP_CONNECTION=None)) == KEY
    cases = [
        (env(HTTP_SEC_WEBSOCKET_KEY=None), 400, "Key"),
        (env(HTTP_SEC_WEBSOCKET_VERSION="8"), 426, "version"),
        (env(HTTP_SEC_WEBSOCKET_VERSION=None), 400, "Version"),
        (env(REQUEST_METHOD="POST"), 400, "GET"),
        (env(HTTP_UPGRADE="h2c"), 400, "Upgrade"),
        (env(HTTP_CONNECTION="close"), 400, "Connection"),
        (env(HTTP_SEC_WEBSOCKET_KEY="not base64!"), 400, "base64"),
        (env(HTTP_SEC_WEBSOCKET_KEY=base64.b64encode(b"short").decode()), 400, "16"),
    ]
    for e, status, word in cases:
        with pytest.raises(HandshakeError, match=word) as info:
            check_upgrade(e)
        assert info.value.status == status


def test_refusal_answers():
    status, headers, body = refusal(HandshakeError("unsupported WebSocket version '8'", 426))
    assert status == "426 Upgrade Required" and ("Sec-WebSocket-Version", "13") in headers
    assert body == b"unsupported WebSocket version '8'\n"
    assert ("Content-Length", str(len(body))) in headers
    assert refusal(HandshakeError("no key"))[0] == "400 Bad Request"


def test_accept_head():
    head = accept_head(KEY, "chat", [("X-A", "1")])
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    # RFC 6455 4.2.2 example key and accept value
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in accept_head(
        "dGhlIHNhbXBsZSBub25jZQ=="
    )
    assert b"Sec-WebSocket-Protocol: chat\r\n" in head and head.endswith(b"X-A: 1\r\n\r\n")
    with pytest.raises(HeadError):
        accept_head(KEY, "a\r\nSet-Cookie: x")


def test_messages_both_ways():
    client = Connection(CLIENT)
    s = Session()
    wire = client.send(TextMessage("héllo")) + client.send(BytesMessage(b"\x00\xff"))
    # fed one byte at a time: nothing lost, nothing early
    for i in range(len(wire)):
        assert s.receive(wire[i : i + 1]) == b""
    assert s.next_message() == (TEXT, "héllo")
    assert s.next_message() == (BINARY, b"\x00\xff")
    assert s.next_message() is None and s.queued == 0
    client.receive_data(s.send("hi") + s.send(b"bin") + s.send_text_bytes(b"t"))
    got = [(type(e).__name__, e.data) for e in client.events()]
    assert got == [("TextMessage", "hi"), ("BytesMessage", b"bin"), ("TextMessage", "t")]
    with pytest.raises(UnicodeDecodeError):
        s.send_text_bytes(b"\xff")


def test_ping_answered_and_close_handshake():
    client = Connection(CLIENT)
    s = Session()
    reply = s.receive(client.send(Ping(b"p")))
    client.receive_data(reply)
    assert [type(e) for e in client.events()] == [Pong]
    reply = s.receive(client.send(CloseConnection(1000, "bye")))
    assert s.closed and s.close_code == 1000
    client.receive_data(reply)
    assert [(type(e), e.code) for e in client.events()] == [(CloseConnection, 1000)]
    with pytest.raises(OSError):
        s.send("late")


def test_fragments_gathered_and_bounded():
    s = Session(max_size=10)
    wire = frame(1, b"ab", fin=False) + frame(0, b"", fin=False) * 1000 + frame(0, b"cd")
    assert s.receive(wire) == b""
    assert s.next_message() == (TEXT, "abcd")
    out = s.receive(frame(2, b"12345", fin=False) + frame(0, b"678901"))
    assert s.closed and s.close_code == 1009
    assert out[:2] == b"\x88\x02"[:1] + out[1:2] and struct.unpack("!H", out[2:4])[0] == 1009


def test_oversized_frame_claim_closes_once_past_the_limit():
    s = Session(max_size=1024)
    # a frame that claims 2**40 bytes: its payload is counted as it comes, never
    # buffered past the limit
    head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 2**40) + b"mask"
    s.receive(head + b"x" * 2000)
    assert s.closed and s.close_code == 1009


def test_unmasked_and_reserved_bits_and_bad_utf8():
    for wire, code in [
        (frame(1, b"hi", mask=False), 1002),
        (bytes([0xC1, 0x80]) + b"mask", 1002),  # RSV1 without an extension
        (frame(1, b"\xff\xfe"), 1007),
        (frame(9, b"x" * 200), 1002),  # a control frame over 125 bytes
    ]:
        s = Session()
        out = s.receive(wire)
        assert s.closed and s.close_code == code, wire
        assert out[:1] == b"\x88"


def test_eof_is_1006():
    s = Session()
    s.receive(b"")
    assert s.closed and s.close_code == 1006


def test_tick_pings_then_times_out():
    s = Session(ping_freq=10, pong_tolerance=3, now=100.0)
    assert s.tick(105.0) == b""
    ping = s.tick(110.0)
    assert ping[:1] == b"\x89"
    assert s.tick(112.0) == b""  # within tolerance
    client = Connection(CLIENT)
    s.receive(client.send(Pong(b"")))
    assert not s.awaiting_pong
    s.tick(120.0)
    out = s.tick(123.5)
    assert s.closed and s.close_code == 1006 and out[:1] == b"\x88"


def test_server_close_then_peer_answer():
    s = Session()
    out = s.close(1001, "going away")
    assert out[:1] == b"\x88" and s.closing and not s.closed
    s.receive(frame(8, struct.pack("!H", 1001)))
    assert s.closed and s.close_code == 1001


@given(st.lists(st.binary(max_size=64), max_size=20), st.booleans())
@settings(max_examples=300, deadline=None)
def test_any_bytes_never_raise(chunks, eof):
    """Whatever a client sends (random bytes, cut anywhere), receive() returns bytes
    to send, never raises, and a closed session stays closed."""
    s = Session(max_size=100, ping_freq=1, pong_tolerance=1, now=0.0)
    for i, chunk in enumerate(chunks):
        out = s.receive(chunk)
        assert isinstance(out, bytes)
        s.tick(float(i))
        while s.next_message() is not None:
            pass
    if eof:
        s.receive(b"")
        assert s.closed
    assert s.queued >= 0


@given(st.lists(st.tuples(st.integers(0, 10), st.binary(max_size=40), st.booleans())))
@settings(max_examples=200, deadline=None)
def test_masked_frames_of_any_opcode_never_raise(frames):
    s = Session(max_size=100)
    for opcode, payload, fin in frames:
        s.receive(frame(opcode, payload, fin=fin))
    # what is queued is exactly the messages' bytes
    total = 0
    while (msg := s.next_message()) is not None:
        total += len(msg[1].encode()) if msg[0] == TEXT else len(msg[1])
    assert s.queued == 0 and total >= 0
