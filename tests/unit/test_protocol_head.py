"""The response head gate (protocols/head.py) and what of a request may reach a
head or a log, on every protocol (issue 15, hole 1), plus the order of interim
responses (hole 10) and the uwsgi ping's close. Bytes only."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.sansio import Recorder
from test_protocol_fastcgi import client_records, client_request
from test_protocol_scgi import NGINX, netstring
from test_protocol_uwsgi import NGINX_VARS, packet

from procmaster.protocols.base import ProtocolError
from procmaster.protocols.fastcgi import FastCGIProtocol
from procmaster.protocols.head import HeadError, serialize_head, status_version
from procmaster.protocols.http import HTTPProtocol
from procmaster.protocols.scgi import SCGIProtocol
from procmaster.protocols.uwsgi import UwsgiProtocol

HOSTILE = [b"HTTP/1.1\r\nX: 1", b"a\nb", b"a\rb", b"a\0b"]


# -- the gate -------------------------------------------------------------------


def test_a_good_head():
    head = serialize_head("HTTP/1.1", "200 OK", [("X-A", "v\tw"), ("Set-Cookie", "a=1; b")])
    assert head == b"HTTP/1.1 200 OK\r\nX-A: v\tw\r\nSet-Cookie: a=1; b\r\n\r\n"
    assert serialize_head("Status:", "204 No Content", []) == b"Status: 204 No Content\r\n\r\n"
    assert serialize_head("HTTP/1.0", "599", []) == b"HTTP/1.0 599\r\n\r\n"


@pytest.mark.parametrize(
    ("status", "headers", "said"),
    [
        ("200 OK", [("X-A", "1\r\nSet-Cookie: evil=1")], "header X-A"),
        ("200 OK", [("X-A", "1\nSet-Cookie: evil=1")], "'\\n'"),
        ("200 OK", [("X-A", "1\rX")], "'\\r'"),
        ("200 OK", [("X-A", "1\0")], "'\\x00'"),
        ("200 OK", [("X-A", "\x1b[31m")], "control"),
        ("200 OK", [("X A", "1")], "not a token"),
        ("200 OK", [("X:A", "1")], "not a token"),
        ("200 OK", [("", "1")], "not a token"),
        ("200 OK", [("X-\u0100", "1")], "not a token"),
        ("200 OK", [("X-A", "\u20ac")], "not latin-1"),
        ("200 OK", [("X-A",)], "tuple"),
        ("200 OK\r\nX-B: 2", [], "status"),
        ("20x OK", [], "status"),
        ("2000 OK", [], "status"),
        ("200 O\x00K", [], "status"),
    ],
)
def test_the_gate_refuses_and_says_what(status, headers, said):
    with pytest.raises(HeadError) as exc:
        serialize_head("HTTP/1.1", status, headers)
    assert said in str(exc.value)
    assert "\n" not in str(exc.value) and "\r" not in str(exc.value)  # safe to log


def test_the_gate_refuses_a_bad_version():
    for version in ("HTTP/1.1\r\nX: 1", "HTTP/1.1 X", ""):
        with pytest.raises(HeadError):
            serialize_head(version, "200 OK", [])


@given(st.text(max_size=30), st.text(max_size=30))
def test_the_gate_never_lets_a_line_break_through(name, value):
    try:
        head = serialize_head("HTTP/1.1", "200 OK", [("X-A", value), (name or "N", "v")])
    except HeadError:
        return
    assert head.count(b"\n") == 4 and head.count(b"\r") == 4 and b"\0" not in head


def test_status_version():
    assert status_version({"SERVER_PROTOCOL": "HTTP/1.1"}) == "HTTP/1.1"
    assert status_version({"SERVER_PROTOCOL": "HTTP/2"}) == "HTTP/2"
    assert status_version({}) == "HTTP/1.0"
    for bad in ("HTTP/1.1\r\nX: 1", "HTTP/1.1 X", "INCLUDED", "HTTP/10.0", ""):
        assert status_version({"SERVER_PROTOCOL": bad}) == "HTTP/1.0"


# -- what a proxy sends ------------------------------------------------------------


def uwsgi_with(name: bytes, value: bytes) -> bytes:
    return packet([(k, v) for k, v in NGINX_VARS if k != name] + [(name, value)])


def scgi_with(name: bytes, value: bytes) -> bytes:
    return netstring([(k, v) for k, v in NGINX if k != name] + [(name, value)])


def fastcgi_with(name: bytes, value: bytes) -> bytes:
    return client_request([(k, v) for k, v in NGINX_VARS if k != name] + [(name, value)])


PROXIED = [
    (UwsgiProtocol, uwsgi_with),
    (SCGIProtocol, scgi_with),
    (FastCGIProtocol, fastcgi_with),
]


@pytest.mark.parametrize(("cls", "build"), PROXIED)
@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("name", [b"SERVER_PROTOCOL", b"REQUEST_URI", b"HTTP_X_A"])
def test_a_proxy_var_with_cr_lf_or_nul_is_refused(cls, build, name, value):
    if cls is SCGIProtocol and b"\0" in value:
        return  # NUL ends an SCGI string: it cannot be inside one
    sink = Recorder()
    proto = cls(sink)
    with pytest.raises(ProtocolError) as exc:
        proto.feed(build(name, value))
    assert exc.value.status == 0 and not sink.reqs
    assert "CR, LF or NUL" in exc.value.message and "\n" not in exc.value.message


@pytest.mark.parametrize(("cls", "build"), PROXIED)
def test_a_proxy_var_name_reaches_no_head_unchecked(cls, build):
    # names are the proxy's own and reach no log line (not checked, to keep the
    # per-request cost down); an app echoing one into its head meets the gate
    sink = Recorder()
    proto = cls(sink)
    proto.feed(build(b"HTTP_X\r\nY", b"1"))
    [req] = sink.reqs
    name = next(k for k in req.environ if "\r" in k)
    with pytest.raises(HeadError):
        proto.response_head(req, "200 OK", [("X-Echo", name)])


@pytest.mark.parametrize(("cls", "build"), PROXIED)
def test_a_strange_server_protocol_never_reaches_the_status_line(cls, build):
    sink = Recorder()
    proto = cls(sink)
    proto.feed(build(b"SERVER_PROTOCOL", b"HTTP/1.1 X"))
    [req] = sink.reqs
    assert req.environ["SERVER_PROTOCOL"] == "HTTP/1.1 X"  # the app sees what was sent
    head = proto.response_head(req, "200 OK", [])
    if cls is FastCGIProtocol:
        head = client_records(head)[0][2]
    assert head.split(b"\r\n")[0] in (b"HTTP/1.0 200 OK", b"Status: 200 OK")


def test_uwsgi_echoes_a_sane_server_protocol():
    sink = Recorder()
    proto = UwsgiProtocol(sink)
    proto.feed(uwsgi_with(b"SERVER_PROTOCOL", b"HTTP/2.0"))
    assert proto.response_head(sink.reqs[0], "200 OK", []).startswith(b"HTTP/2.0 200 OK\r\n")


@pytest.mark.parametrize(("cls", "build"), PROXIED)
def test_app_headers_with_cr_lf_raise_head_error_on_every_protocol(cls, build):
    sink = Recorder()
    proto = cls(sink)
    proto.feed(build(b"HTTP_X_A", b"1"))
    with pytest.raises(HeadError):
        proto.response_head(sink.reqs[0], "200 OK", [("X-A", "1\r\nSet-Cookie: evil=1")])


# -- the uwsgi ping ---------------------------------------------------------------


def test_uwsgi_ping_closes_after_the_pong():
    proto = UwsgiProtocol(Recorder())
    assert not proto.closing
    assert proto.feed(struct.pack("<BHB", 100, 0, 0)) == struct.pack("<BHB", 100, 0, 1)
    assert proto.closing


def test_other_protocols_never_close_after_a_reply():
    for cls in (HTTPProtocol, SCGIProtocol, FastCGIProtocol):
        assert cls(Recorder()).closing is False


# -- interim responses in order (hole 10) ---------------------------------------


GET_A = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
POST_B = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def answer(proto, req, body=b"ok") -> bytes:
    return (
        proto.response_head(req, "200 OK", [], len(body))
        + proto.response_body(req, body)
        + proto.response_end(req)
    )


def test_100_continue_waits_for_the_earlier_response():
    sink = Recorder()
    proto = HTTPProtocol(sink)
    assert proto.feed(GET_A + POST_B) == b""  # not ahead of /a's answer
    a, b = sink.reqs
    out = answer(proto, a)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"ok" + CONTINUE)
    assert proto.feed(b"body") == b""
    assert sink.body(b) == b"body" and not answer(proto, b).endswith(CONTINUE)


def test_100_continue_at_once_when_nothing_is_before_it():
    sink = Recorder()
    proto = HTTPProtocol(sink)
    assert proto.feed(POST_B) == CONTINUE


def test_100_continue_waits_for_every_earlier_response_chunked_too():
    sink = Recorder()
    proto = HTTPProtocol(sink)
    assert proto.feed(GET_A + GET_A + POST_B) == b""
    a1, a2, _ = sink.reqs
    first = proto.response_head(a1, "200 OK", []) + proto.response_body(a1, b"x")
    first += proto.response_end(a1)
    assert first.endswith(b"0\r\n\r\n")  # chunked, and no 100 yet: /a2 is still due
    assert answer(proto, a2).endswith(b"ok" + CONTINUE)


def test_no_100_continue_when_the_body_came_anyway():
    sink = Recorder()
    proto = HTTPProtocol(sink)
    assert proto.feed(GET_A + POST_B + b"body") == b""
    assert not answer(proto, sink.reqs[0]).endswith(CONTINUE)


def test_no_100_continue_after_a_response_that_closes():
    sink = Recorder()
    proto = HTTPProtocol(sink)
    proto.feed(GET_A + POST_B)
    a = sink.reqs[0]
    out = proto.response_head(a, "200 OK", [("Connection", "close")], 2)
    out += proto.response_body(a, b"ok") + proto.response_end(a)
    assert not out.endswith(CONTINUE)
