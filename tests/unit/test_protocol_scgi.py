"""The SCGI protocol, fed with bytes only.

Conformance cases live in tests/data/scgi/: ``NAME.bin`` is what the peer sends
(the whole connection), ``NAME.json`` what must come of it:

- ``options``: keyword arguments for ``SCGIProtocol``;
- ``requests``: for each request, ``environ`` (exact), ``content_length``,
  ``head_only``, ``keep_alive`` and the body as ``body`` (latin-1 text) or
  ``body_len`` + ``body_sha256``;
- ``reply``: hex of all the bytes ``feed()`` returned;
- or ``error``: a substring of the ``ProtocolError`` raised by ``feed()`` or ``eof()``.

Each case is fed whole, one byte at a time and in random splits; the outcome
must be the same.
"""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import DATA as TEST_DATA
from test_protocol_uwsgi import Recorder, check_bodies, cut, expected_requests, splits

from procmaster.protocols import protocol_class
from procmaster.protocols.base import ProtocolError
from procmaster.protocols.scgi import SCGIProtocol

DATA = TEST_DATA / "scgi"
CASES = sorted(p.stem for p in DATA.glob("*.bin"))


def run(chunks, **options):
    """Feed ``chunks`` then eof. Returns (summary, reply) or raises ProtocolError."""
    sink = Recorder()
    proto = SCGIProtocol(sink, **options)
    reply = b""
    for chunk in chunks:
        reply += proto.feed(chunk)
    proto.eof()
    return sink.summary(), reply


@pytest.mark.parametrize("name", CASES)
def test_conformance(name):
    data = (DATA / f"{name}.bin").read_bytes()
    spec = json.loads((DATA / f"{name}.json").read_text())
    options = spec.get("options", {})
    rng = random.Random(name)
    for how, chunks in splits(data, rng):
        if "error" in spec:
            with pytest.raises(ProtocolError) as exc:
                run(chunks, **options)
            assert spec["error"] in exc.value.message, how
            assert exc.value.status == 0
            continue
        got, reply = run(chunks, **options)
        assert [{k: v for k, v in g.items() if k != "body"} for g in got] == expected_requests(
            spec
        ), how
        check_bodies(got, spec)
        assert reply.hex() == spec["reply"], how


def test_conformance_cases_found():
    assert len(CASES) >= 25
    origins = set()
    for name in CASES:
        assert (DATA / f"{name}.json").exists(), name
        origins.add(json.loads((DATA / f"{name}.json").read_text())["origin"].split()[2])
    assert {"nginx", "Apache"} <= origins


def test_wired_to_scgi_socket():
    assert protocol_class("scgi") is SCGIProtocol


# -- building requests -----------------------------------------------------------


def netstring(pairs, body=b""):
    block = b"".join(k + b"\0" + v + b"\0" for k, v in pairs)
    return b"%d:" % len(block) + block + b"," + body


NGINX = [
    (b"CONTENT_LENGTH", b"0"),
    (b"REQUEST_METHOD", b"GET"),
    (b"REQUEST_URI", b"/hello?a=1"),
    (b"QUERY_STRING", b"a=1"),
    (b"CONTENT_TYPE", b""),
    (b"DOCUMENT_URI", b"/hello"),
    (b"SCGI", b"1"),
    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"REMOTE_ADDR", b"10.0.0.1"),
    (b"HTTP_HOST", b"example.com"),
]


def with_vars(**changes):
    pairs = [(k, changes.pop(k.decode(), v)) for k, v in NGINX]
    return pairs + [(k.encode(), v) for k, v in changes.items()]


def parse(data, **options):
    sink = Recorder()
    proto = SCGIProtocol(sink, **options)
    reply = proto.feed(data)
    return sink, proto, reply


# -- requests ----------------------------------------------------------------------


def test_nginx_get():
    sink, proto, reply = parse(netstring(NGINX))
    assert reply == b"" and proto.name == "scgi"
    [req] = sink.reqs
    assert req.environ == {k.decode(): v.decode() for k, v in NGINX}
    assert req.content_length == 0 and req.keep_alive is False and req.head_only is False
    assert [e[0] for e in sink.events] == ["head", "end"]
    proto.eof()


def test_post_body_in_same_read_and_split_everywhere():
    data = netstring(with_vars(CONTENT_LENGTH=b"3", REQUEST_METHOD=b"POST"), b"abc")
    for index in range(len(data) + 1):
        sink = Recorder()
        proto = SCGIProtocol(sink)
        proto.feed(data[:index])
        proto.feed(data[index:])
        proto.eof()
        [got] = sink.summary()
        assert got["body"] == b"abc" and got["ended"], index


def test_large_body_streams_without_gathering():
    size = 20 * 1024 * 1024
    chunk = bytes(range(256)) * 256
    sink = Recorder()
    proto = SCGIProtocol(sink)
    proto.feed(netstring(with_vars(CONTENT_LENGTH=str(size).encode())))
    [req] = sink.reqs
    left = size
    while left:
        piece = chunk if left >= len(chunk) else chunk[:left]
        proto.feed(piece)
        assert sink.bodies[id(req)][-1] is piece
        left -= len(piece)
    assert id(req) in sink.ended
    proto.eof()


def test_length_over_buffer_size_refused_from_the_digits_alone():
    proto = SCGIProtocol(Recorder(), buffer_size=100)
    with pytest.raises(ProtocolError) as exc:
        proto.feed(b"101")
    assert "invalid SCGI header block size: 101 (max 100)" in exc.value.message
    assert "buffer-size" in exc.value.message and exc.value.status == 0


def test_eof_when_idle_is_not_an_error():
    SCGIProtocol(Recorder()).eof()
    proto = SCGIProtocol(Recorder())
    assert proto.feed(b"") == b""
    proto.eof()


def test_eof_cut_short_anywhere():
    data = netstring(with_vars(CONTENT_LENGTH=b"5"), b"12345")
    for end in range(1, len(data)):
        proto = SCGIProtocol(Recorder())
        proto.feed(data[:end])
        with pytest.raises(ProtocolError):
            proto.eof()


# -- responses ---------------------------------------------------------------------


def test_response_is_cgi_style_with_status_header():
    sink, proto, _ = parse(netstring(NGINX))
    req = sink.reqs[0]
    head = proto.response_head(req, "404 Not Found", [("Content-Type", "text/plain")], 4)
    assert head == b"Status: 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\n"
    assert proto.response_body(req, b"nope") == b"nope"
    assert proto.response_end(req) == b""
    assert req.keep_alive is False


def test_response_keeps_the_apps_framing_and_repeated_headers():
    sink, proto, _ = parse(netstring(NGINX))
    headers = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=\u00e9"), ("Content-Length", "9")]
    head = proto.response_head(sink.reqs[0], "200 OK", headers, 3)
    assert (
        head
        == b"Status: 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=\xe9\r\nContent-Length: 9\r\n\r\n"
    )


def test_head_request_sends_no_body():
    sink, proto, _ = parse(netstring(with_vars(REQUEST_METHOD=b"HEAD")))
    req = sink.reqs[0]
    assert req.head_only and proto.response_body(req, b"body") == b""


def test_response_head_refuses_header_injection():
    sink, proto, _ = parse(netstring(NGINX))
    with pytest.raises(ValueError):
        proto.response_head(sink.reqs[0], "200 OK", [("X-A", "1\r\nSet-Cookie: evil=1")])
    with pytest.raises(ValueError):
        proto.response_head(sink.reqs[0], "200 OK\nX-B: 2", [])


# -- properties --------------------------------------------------------------------

# CR, LF and NUL are refused in a proxy's variables (test_hostile_vars_are_refused)
names = st.binary(min_size=1, max_size=40).filter(lambda b: not re.search(rb"[\0\r\n]", b))
values = st.binary(max_size=200).map(lambda b: re.sub(rb"[\0\r\n]", b"", b))


@st.composite
def requests(draw):
    pairs = draw(st.lists(st.tuples(names, values), max_size=20))
    body = draw(st.binary(max_size=3000))
    pairs = [p for p in pairs if p[0] != b"CONTENT_LENGTH"]
    return [(b"CONTENT_LENGTH", str(len(body)).encode()), *pairs], body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.lists(st.integers(min_value=0), max_size=10))
def test_valid_requests_parse_the_same_however_split(request, points):
    pairs, body = request
    got, reply = run(cut(netstring(pairs, body), points))
    assert reply == b""
    [r] = got
    assert r["environ"] == {k.decode("latin-1"): v.decode("latin-1") for k, v in pairs}
    assert r["body"] == body and r["ended"] and r["content_length"] == len(body)


@settings(max_examples=300, deadline=None)
@given(requests(), st.data())
def test_truncated_requests_raise_protocol_error(request, data):
    pairs, body = request
    whole = netstring(pairs, body)
    end = data.draw(st.integers(min_value=1, max_value=len(whole) - 1))
    with pytest.raises(ProtocolError):
        run(cut(whole[:end], data.draw(st.lists(st.integers(min_value=0), max_size=5))))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(min_value=0), max_size=8))
def test_random_bytes_only_ever_raise_protocol_error(data, points):
    try:
        run(cut(data, points))
    except ProtocolError as exc:
        assert exc.message and exc.status == 0


@settings(max_examples=500, deadline=None)
@given(st.from_regex(rb"\A[0-9]{1,4}:", fullmatch=False), st.binary(max_size=400))
def test_digit_prefixed_bytes_only_ever_raise_protocol_error(prefix, rest):
    try:
        run([prefix + rest])
    except ProtocolError as exc:
        assert exc.message and exc.status == 0


@settings(max_examples=300, deadline=None)
@given(requests(), st.data())
def test_mutated_requests_only_ever_raise_protocol_error(request, data):
    pairs, body = request
    whole = bytearray(netstring(pairs, body))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        i = data.draw(st.integers(min_value=0, max_value=len(whole) - 1))
        whole[i] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        run(cut(bytes(whole), data.draw(st.lists(st.integers(min_value=0), max_size=5))))
    except ProtocolError as exc:
        assert exc.message
