"""uwsgi.websocket_* outside a WebSocket request, and their argument types."""

import pytest

from procmaster.api import websocket as ws


class FakeChannel:
    def __init__(self):
        self.calls = []

    def handshake(self, key, origin, proto):
        self.calls.append(("handshake", key, origin, proto))

    def recv(self, block):
        self.calls.append(("recv", block))
        return b"m"

    def send(self, data, binary):
        self.calls.append(("send", data, binary))

    def fileno(self):
        return 7


def test_outside_a_websocket_request_everything_is_ioerror():
    ws.bind(None)
    names = ws.names()
    with pytest.raises(OSError, match="unable to complete websocket handshake"):
        names["websocket_handshake"]()
    with pytest.raises(OSError, match="unable to receive websocket message"):
        names["websocket_recv"]()
    with pytest.raises(OSError, match="unable to receive websocket message"):
        names["websocket_recv_nb"]()
    with pytest.raises(OSError, match="unable to send websocket message"):
        names["websocket_send"](b"x")
    with pytest.raises(OSError, match="unable to send websocket message"):
        names["websocket_send_binary"](b"x")
    assert names["connection_fd"]() == -1


def test_calls_reach_the_bound_channel_with_uwsgis_types():
    ch = FakeChannel()
    ws.bind(ch)
    try:
        n = ws.names()
        n["websocket_handshake"](b"key==", "http://o", b"chat")
        n["websocket_handshake"]()
        assert n["websocket_recv"]() == b"m" and n["websocket_recv_nb"]() == b"m"
        n["websocket_send"]("é")
        n["websocket_send_binary"](bytearray(b"\x00"))
        assert n["connection_fd"]() == 7
        with pytest.raises(TypeError):
            n["websocket_send"](5)
        assert ch.calls == [
            ("handshake", "key==", "http://o", "chat"),
            ("handshake", None, None, None),
            ("recv", True),
            ("recv", False),
            ("send", "é".encode(), False),
            ("send", b"\x00", True),
        ]
    finally:
        ws.bind(None)
