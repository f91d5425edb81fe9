"""What each protocol class says about itself (protocols/base.py, "Capabilities"):
how it answers a bad request, whether it answers after pipelined requests, how
it is built for a listener, whether its body may go out with sendfile, and how
an environ from a proxy is completed. Bytes and dicts only."""

from __future__ import annotations

import pytest
from support.sansio import Recorder

from procmaster.protocols import ProtocolError, protocol_class
from procmaster.protocols.base import ProtocolBase
from procmaster.protocols.fastcgi import FastCGIProtocol
from procmaster.protocols.http import HTTPProtocol
from procmaster.protocols.scgi import SCGIProtocol
from procmaster.protocols.uwsgi import UwsgiProtocol

ALL = ["http", "uwsgi", "fastcgi", "scgi"]
PROXIED = ["uwsgi", "fastcgi", "scgi"]


def test_every_protocol_class_has_the_capabilities():
    for kind in ALL:
        cls = protocol_class(kind)
        assert issubclass(cls, ProtocolBase)
        assert cls.name == kind


# -- answering an error -------------------------------------------------------------


def test_http_answers_an_error_with_its_status_and_closes():
    reply = HTTPProtocol.error_reply(ProtocolError("request body over limit-post", 413))
    assert reply == (
        b"HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 22\r\nConnection: close\r\n\r\n413 Content Too Large\n"
    )


@pytest.mark.parametrize(
    "status, reason",
    [
        (400, "Bad Request"),
        (414, "URI Too Long"),
        (431, "Request Header Fields Too Large"),
        (501, "Not Implemented"),
        (505, "HTTP Version Not Supported"),
        (418, "Bad Request"),  # a status without its own phrase
    ],
)
def test_http_error_reply_reasons(status, reason):
    reply = HTTPProtocol.error_reply(ProtocolError("x", status))
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} {reason}\r\n".encode())
    assert body == f"{status} {reason}\n".encode()
    assert f"Content-Length: {len(body)}\r\n".encode() in head


def test_http_has_no_answer_for_an_error_without_status():
    # a connection cut in the middle of a request: nobody to answer
    assert HTTPProtocol.error_reply(ProtocolError("cut short", 0)) is None


@pytest.mark.parametrize("kind", PROXIED)
def test_proxied_protocols_close_instead_of_answering(kind):
    cls = protocol_class(kind)
    assert cls.error_reply(ProtocolError("request body over limit-post", 413)) is None
    assert cls.error_reply(ProtocolError("garbage", 0)) is None


def test_only_http_answers_errors_after_pipelined_requests():
    assert HTTPProtocol.pipelined_errors is True
    for kind in PROXIED:
        assert protocol_class(kind).pipelined_errors is False


# -- framing ------------------------------------------------------------------------


def test_sendfile_where_the_body_goes_out_as_it_is():
    assert HTTPProtocol.sendfile and UwsgiProtocol.sendfile
    # FastCGI wraps the body in STDOUT records; SCGI as before
    assert not FastCGIProtocol.sendfile and not SCGIProtocol.sendfile


def test_identity_framing_behind_sendfile():
    # what sendfile relies on: with a length, the body bytes are the file's bytes
    for cls in (HTTPProtocol, UwsgiProtocol):
        proto = cls.for_listener(
            buffer_size=4096, server_name="localhost", server_port="80", backlog=1
        )(Recorder())
        request = (
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
            if cls is HTTPProtocol
            else _uwsgi_packet({"REQUEST_METHOD": "GET", "PATH_INFO": "/"})
        )
        proto.feed(request)
        req = proto.sink.reqs[0]
        proto.response_head(req, "200 OK", [], 5)
        assert proto.response_body(req, b"hello") == b"hello"
        assert proto.response_end(req) == b""


def _uwsgi_packet(env: dict) -> bytes:
    data = b"".join(
        len(k).to_bytes(2, "little") + k.encode() + len(v).to_bytes(2, "little") + v.encode()
        for k, v in env.items()
    )
    return bytes([0]) + len(data).to_bytes(2, "little") + bytes([0]) + data


# -- construction for a listener ----------------------------------------------------


def test_http_for_listener_knows_the_socket_name():
    make = HTTPProtocol.for_listener(
        buffer_size=8192, server_name="10.0.0.1", server_port="8080", backlog=100
    )
    proto = make(Recorder())
    assert (proto.buffer_size, proto.server_name, proto.server_port) == (8192, "10.0.0.1", "8080")
    # an HTTP/1.0 request without Host is named after the socket
    proto.feed(b"GET / HTTP/1.0\r\n\r\n")
    env = proto.sink.reqs[0].environ
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("10.0.0.1", "8080")


def test_fastcgi_for_listener_reports_the_backlog():
    proto = FastCGIProtocol.for_listener(
        buffer_size=4096, server_name="x", server_port="0", backlog=64
    )(Recorder())
    assert (proto.max_conns, proto.max_reqs) == (64, 64)
    proto = FastCGIProtocol.for_listener(
        buffer_size=4096, server_name="x", server_port="0", backlog=0
    )(Recorder())
    assert (proto.max_conns, proto.max_reqs) == (1, 1)


@pytest.mark.parametrize("kind", ["uwsgi", "scgi"])
def test_length_protocols_for_listener_take_the_buffer_size(kind):
    proto = protocol_class(kind).for_listener(
        buffer_size=123, server_name="x", server_port="0", backlog=5
    )(Recorder())
    assert proto.buffer_size == 123


# -- the environ behind a proxy -----------------------------------------------------


def test_http_is_not_proxied_and_the_rest_are():
    assert HTTPProtocol.proxied is False
    for kind in PROXIED:
        assert protocol_class(kind).proxied is True


def complete(env: dict, remote=("192.0.2.1", "5000")) -> dict:
    UwsgiProtocol.complete_environ(env, remote, "sock.example", "3031")
    return env


def test_complete_environ_fills_what_the_proxy_left_out():
    env = complete({"REQUEST_METHOD": "GET", "PATH_INFO": "/a"})
    assert env == {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/a",
        "REMOTE_ADDR": "192.0.2.1",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "sock.example",
        "SERVER_PORT": "3031",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }


def test_complete_environ_keeps_what_the_proxy_sent():
    sent = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/p",
        "SCRIPT_NAME": "/app",
        "QUERY_STRING": "q=1",
        "REMOTE_ADDR": "203.0.113.9",
        "SERVER_NAME": "www.example",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/2.0",
    }
    assert complete(dict(sent)) == sent


def test_complete_environ_drops_the_http_copies_of_cgi_headers():
    env = complete(
        {
            "PATH_INFO": "/",
            "CONTENT_TYPE": "text/plain",
            "CONTENT_LENGTH": "3",
            "HTTP_CONTENT_TYPE": "text/plain",
            "HTTP_CONTENT_LENGTH": "3",
        }
    )
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["CONTENT_TYPE"] == "text/plain" and env["CONTENT_LENGTH"] == "3"


def test_complete_environ_path_from_script_name():
    # nginx's stock fastcgi_params: no PATH_INFO, the path in SCRIPT_NAME
    env = complete({"SCRIPT_NAME": "/shop/cart", "REQUEST_URI": "/shop/cart?x=1"})
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/shop/cart")


def test_complete_environ_path_from_request_uri_is_decoded():
    env = complete({"REQUEST_URI": "/caf%C3%A9/a%20b?x=%20"})
    assert env["PATH_INFO"] == "/caf\xc3\xa9/a b"  # latin-1 of the UTF-8 bytes (PEP 3333)
    assert env["SCRIPT_NAME"] == ""


def test_complete_environ_without_any_path():
    env = complete({})
    assert env["PATH_INFO"] == "" and env["SCRIPT_NAME"] == ""


def test_complete_environ_from_a_unix_socket():
    env = complete({"PATH_INFO": "/"}, remote=("", ""))
    assert env["REMOTE_ADDR"] == ""


# -- sinks never raise through the parser -------------------------------------------


class Failing(Recorder):
    def on_body(self, req, data):
        raise OSError(28, "No space left on device")


def test_an_exception_of_the_sink_leaves_http_feed_as_it_is():
    proto = HTTPProtocol(Failing())
    with pytest.raises(OSError) as caught:
        proto.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
    assert caught.value.errno == 28
    assert not isinstance(caught.value, ProtocolError)


class Refusing(Recorder):
    """Records a refusal and ignores the rest, as the worker's connection does."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = False

    def on_head(self, req):
        if not self.refused:
            self.refused = True  # and nothing else: no exception into the parser

    def on_body(self, req, data):
        pass

    def on_end(self, req):
        pass


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ],
)
def test_http_goes_on_parsing_after_a_refusal(request_bytes):
    sink = Refusing()
    proto = HTTPProtocol(sink)
    proto.feed(request_bytes)  # no error: the refusal is the sink's to act on
    assert sink.refused
