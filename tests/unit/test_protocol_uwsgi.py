"""The uwsgi protocol, fed with bytes only.

Conformance cases live in tests/data/uwsgi/: ``NAME.bin`` is what the peer sends
(the whole connection), ``NAME.json`` what must come of it:

- ``options``: keyword arguments for ``UwsgiProtocol``;
- ``requests``: for each request, ``environ`` (exact), ``content_length``,
  ``head_only``, ``keep_alive`` and the body as ``body`` (latin-1 text) or
  ``body_len`` + ``body_sha256``;
- ``reply``: hex of all the bytes ``feed()`` returned;
- or ``error``: a substring of the ``ProtocolError`` raised by ``feed()`` or ``eof()``.

Each case is fed whole, one byte at a time and in random splits; the outcome
must be the same.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import struct
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import DATA as TEST_DATA
from support.sansio import Recorder, splits

from procmaster.protocols.base import ProtocolError
from procmaster.protocols.uwsgi import UwsgiProtocol

DATA = TEST_DATA / "uwsgi"
CASES = sorted(p.stem for p in DATA.glob("*.bin"))


def run(chunks, **options):
    """Feed ``chunks`` then eof. Returns (summary, reply) or raises ProtocolError."""
    sink = Recorder()
    proto = UwsgiProtocol(sink, **options)
    reply = b""
    for chunk in chunks:
        reply += proto.feed(chunk)
    proto.eof()
    return sink.summary(), reply


def expected_requests(spec: dict) -> list[dict]:
    out = []
    for r in spec["requests"]:
        out.append(
            {
                "environ": r["environ"],
                "content_length": r["content_length"],
                "head_only": r["head_only"],
                "keep_alive": r["keep_alive"],
                "ended": True,
            }
        )
    return out


def check_bodies(got: list[dict], spec: dict) -> None:
    for g, r in zip(got, spec["requests"], strict=True):
        if "body" in r:
            assert g["body"] == r["body"].encode("latin-1")
        else:
            assert len(g["body"]) == r["body_len"]
            assert hashlib.sha256(g["body"]).hexdigest() == r["body_sha256"]


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
    assert len(CASES) >= 20
    for name in CASES:
        assert (DATA / f"{name}.json").exists(), name


# -- building packets ----------------------------------------------------------


def packet(pairs, body=b"", modifier1=0, modifier2=0):
    block = b"".join(
        struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs
    )
    return struct.pack("<BHB", modifier1, len(block), modifier2) + block + body


NGINX_VARS = [
    (b"QUERY_STRING", b"a=1"),
    (b"REQUEST_METHOD", b"GET"),
    (b"CONTENT_TYPE", b""),
    (b"CONTENT_LENGTH", b""),
    (b"REQUEST_URI", b"/hello?a=1"),
    (b"PATH_INFO", b"/hello"),
    (b"DOCUMENT_ROOT", b"/usr/share/nginx/html"),
    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"REQUEST_SCHEME", b"https"),
    (b"HTTPS", b"on"),
    (b"REMOTE_ADDR", b"10.0.0.1"),
    (b"REMOTE_PORT", b"50000"),
    (b"SERVER_PORT", b"443"),
    (b"SERVER_NAME", b"example.com"),
    (b"HTTP_HOST", b"example.com"),
    (b"HTTP_USER_AGENT", b"curl/8"),
]


def with_vars(**changes):
    pairs = [(k, changes.pop(k.decode(), v)) for k, v in NGINX_VARS]
    pairs += [(k.encode(), v) for k, v in changes.items()]
    return pairs


def parse(data, **options):
    sink = Recorder()
    proto = UwsgiProtocol(sink, **options)
    reply = proto.feed(data)
    return sink, proto, reply


# -- requests ------------------------------------------------------------------


def test_nginx_get():
    sink, proto, reply = parse(packet(NGINX_VARS))
    assert reply == b""
    assert proto.name == "uwsgi"
    [req] = sink.reqs
    assert req.environ == {k.decode(): v.decode() for k, v in NGINX_VARS}
    assert req.content_length == 0
    assert req.keep_alive is False
    assert req.head_only is False
    assert [e[0] for e in sink.events] == ["head", "end"]
    proto.eof()


def test_head_request():
    sink, proto, _ = parse(packet(with_vars(REQUEST_METHOD=b"HEAD")))
    [req] = sink.reqs
    assert req.head_only is True
    assert proto.response_body(req, b"body") == b""


def test_post_body_in_same_read():
    sink, proto, _ = parse(packet(with_vars(CONTENT_LENGTH=b"11"), b"hello world"))
    [req] = sink.reqs
    assert req.content_length == 11
    assert sink.bodies[id(req)] == [b"hello world"]
    assert sink.events[-1] == ("end", req)


@pytest.mark.parametrize("index", range(len(packet(NGINX_VARS, b"abc"))))
def test_split_at_every_byte(index):
    data = packet(with_vars(CONTENT_LENGTH=b"3"), b"abc")
    sink = Recorder()
    proto = UwsgiProtocol(sink)
    assert proto.feed(data[:index]) == b""
    assert proto.feed(data[index:]) == b""
    proto.eof()
    [got] = sink.summary()
    assert got["body"] == b"abc"
    assert got["environ"]["CONTENT_LENGTH"] == "3"
    assert got["ended"]


def test_large_body_streams_without_gathering():
    size = 50 * 1024 * 1024
    chunk = bytes(range(256)) * 256  # 64 KiB
    sink = Recorder()
    proto = UwsgiProtocol(sink)
    proto.feed(packet(with_vars(REQUEST_METHOD=b"PUT", CONTENT_LENGTH=str(size).encode())))
    [req] = sink.reqs
    assert req.content_length == size
    left = size
    while left:
        piece = chunk if left >= len(chunk) else chunk[:left]
        proto.feed(piece)
        # each piece is handed on at once, as the same object (no copy)
        assert sink.bodies[id(req)][-1] is piece
        left -= len(piece)
    assert id(req) in sink.ended
    assert sum(map(len, sink.bodies[id(req)])) == size
    proto.eof()


def test_body_pieces_of_odd_sizes():
    body = bytes(range(256)) * 40
    data = packet(with_vars(CONTENT_LENGTH=str(len(body)).encode()), body)
    rng = random.Random(7)
    sink = Recorder()
    proto = UwsgiProtocol(sink)
    pos = 0
    while pos < len(data):
        n = rng.randint(1, 3000)
        proto.feed(data[pos : pos + n])
        pos += n
    proto.eof()
    [got] = sink.summary()
    assert got["body"] == body and got["ended"]


def test_bytes_after_the_body_are_dropped():
    sink, proto, _ = parse(packet(with_vars(CONTENT_LENGTH=b"2"), b"okJUNK"))
    [req] = sink.reqs
    assert sink.bodies[id(req)] == [b"ok"]
    assert proto.feed(b"more junk") == b""
    proto.eof()


def test_eof_when_idle_is_not_an_error():
    proto = UwsgiProtocol(Recorder())
    proto.eof()
    proto = UwsgiProtocol(Recorder())
    assert proto.feed(b"") == b""
    proto.eof()


def test_vars_are_latin1_str():
    sink, _, _ = parse(packet(with_vars(HTTP_X_NAME=b"caf\xc3\xa9 \xff")))
    [req] = sink.reqs
    assert req.environ["HTTP_X_NAME"] == "caf\u00c3\u00a9 \u00ff"
    assert all(type(k) is str and type(v) is str for k, v in req.environ.items())


def test_modifier30_strips_script_name():
    pairs = with_vars(PATH_INFO=b"/app/x/y", SCRIPT_NAME=b"/app")
    sink, _, _ = parse(packet(pairs, modifier1=30))
    assert sink.reqs[0].environ["PATH_INFO"] == "/x/y"
    assert sink.reqs[0].environ["SCRIPT_NAME"] == "/app"
    # not a prefix: left alone
    pairs = with_vars(PATH_INFO=b"/other", SCRIPT_NAME=b"/app")
    sink, _, _ = parse(packet(pairs, modifier1=30))
    assert sink.reqs[0].environ["PATH_INFO"] == "/other"


def test_modifier2_is_ignored():
    sink, _, _ = parse(packet(NGINX_VARS, modifier2=7))
    assert len(sink.reqs) == 1


def test_ping():
    sink, proto, reply = parse(packet([], modifier1=100))
    assert reply == b"\x64\x00\x00\x01"
    assert sink.events == []
    assert proto.feed(b"anything") == b""
    proto.eof()


@pytest.mark.parametrize("modifier1", [1, 5, 6, 7, 17, 22, 72, 255])
def test_other_modifiers_are_refused(modifier1):
    with pytest.raises(ProtocolError) as exc:
        parse(packet(NGINX_VARS, modifier1=modifier1))
    assert exc.value.status == 0
    assert f"unavailable modifier requested: {modifier1}" in exc.value.message


def test_buffer_size_is_checked_from_the_header_alone():
    proto = UwsgiProtocol(Recorder(), buffer_size=100)
    with pytest.raises(ProtocolError) as exc:
        proto.feed(struct.pack("<BHB", 0, 21573, 0))
    assert exc.value.status == 0
    assert "invalid request block size: 21573 (max 100)" in exc.value.message
    assert "buffer-size" in exc.value.message


def test_max_u16_datasize_with_large_buffer_size():
    pairs = with_vars(HTTP_COOKIE=b"c" * 65000)
    data = packet(pairs)
    assert struct.unpack_from("<H", data, 1)[0] > 65000
    sink, _, _ = parse(data, buffer_size=65535)
    assert sink.reqs[0].environ["HTTP_COOKIE"] == "c" * 65000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x05\x00\x00\x03\x00abc", "runs past"),  # key length 3, then no value length
        (b"\x00\x07\x00\x00\x03\x00abc\x05\x00", "runs past"),  # value past the block
        (b"\x00\x01\x00\x00\x01", "runs past"),  # half a length
        (b"\x00\x02\x00\x00\x00\x00", "empty var name"),
    ],
)
def test_malformed_vars(data, message):
    with pytest.raises(ProtocolError) as exc:
        parse(data)
    assert message in exc.value.message and exc.value.status == 0


def test_eof_cut_short():
    data = packet(with_vars(CONTENT_LENGTH=b"5"), b"12345")
    for cut in range(1, len(data)):
        proto = UwsgiProtocol(Recorder())
        proto.feed(data[:cut])
        with pytest.raises(ProtocolError):
            proto.eof()


# -- responses -----------------------------------------------------------------


def test_response_is_raw_http_with_the_request_protocol():
    sink, proto, _ = parse(packet(with_vars(SERVER_PROTOCOL=b"HTTP/1.0")))
    req = sink.reqs[0]
    head = proto.response_head(req, "404 Not Found", [("Content-Type", "text/plain"), ("X-A", "1")])
    assert head == b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nX-A: 1\r\n\r\n"
    assert proto.response_body(req, b"nope") == b"nope"
    assert proto.response_body(req, b"") == b""
    assert proto.response_end(req) == b""
    assert req.keep_alive is False


def test_response_defaults_to_http10_like_uwsgi_and_adds_nothing():
    pairs = [(k, v) for k, v in NGINX_VARS if k != b"SERVER_PROTOCOL"]
    sink, proto, _ = parse(packet(pairs))
    head = proto.response_head(sink.reqs[0], "200 OK", [])
    assert head == b"HTTP/1.0 200 OK\r\n\r\n"  # what uWSGI 2.0 answers too
    sink, proto, _ = parse(packet(with_vars(SERVER_PROTOCOL=b"")))
    assert proto.response_head(sink.reqs[0], "200 OK", []) == b"HTTP/1.0 200 OK\r\n\r\n"
    for name in (b"Date", b"Server", b"Connection"):
        assert name not in head


def test_response_headers_latin1_and_repeated():
    sink, proto, _ = parse(packet(NGINX_VARS))
    head = proto.response_head(
        sink.reqs[0], "200 OK", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=\u00e9")]
    )
    assert head == b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=\xe9\r\n\r\n"


# -- properties ----------------------------------------------------------------

# CR, LF and NUL are refused in a proxy's variables (test_hostile_vars_are_refused)
names = st.binary(min_size=1, max_size=40).filter(lambda b: not re.search(rb"[\0\r\n]", b))
values = st.binary(max_size=200).map(lambda b: re.sub(rb"[\0\r\n]", b"", b))


@st.composite
def requests(draw):
    pairs = draw(st.lists(st.tuples(names, values), max_size=20))
    body = draw(st.binary(max_size=3000))
    pairs = [p for p in pairs if p[0] != b"CONTENT_LENGTH"]
    pairs.append((b"CONTENT_LENGTH", str(len(body)).encode()))
    draw(st.randoms()).shuffle(pairs)
    return pairs, body


def cut(data: bytes, points) -> list[bytes]:
    bounds = [0, *sorted({p % (len(data) + 1) for p in points}), len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.lists(st.integers(min_value=0), max_size=10))
def test_valid_packets_parse_the_same_however_split(request, points):
    pairs, body = request
    data = packet(pairs, body)
    got, reply = run(cut(data, points))
    assert reply == b""
    [r] = got
    expected = {}
    for k, v in pairs:
        expected[k.decode("latin-1")] = v.decode("latin-1")
    assert r["environ"] == expected
    assert r["body"] == body and r["ended"]
    assert r["content_length"] == len(body)


@settings(max_examples=300, deadline=None)
@given(requests(), st.data())
def test_truncated_packets_raise_protocol_error(request, data):
    pairs, body = request
    whole = packet(pairs, body)
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


@settings(max_examples=300, deadline=None)
@given(requests(), st.data())
def test_mutated_packets_only_ever_raise_protocol_error(request, data):
    pairs, body = request
    whole = bytearray(packet(pairs, body))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        i = data.draw(st.integers(min_value=0, max_value=len(whole) - 1))
        whole[i] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        run(cut(bytes(whole), data.draw(st.lists(st.integers(min_value=0), max_size=5))))
    except ProtocolError as exc:
        assert exc.message


def test_response_head_refuses_header_injection():
    sink, proto, _ = parse(packet(NGINX_VARS))
    with pytest.raises(ValueError):
        proto.response_head(sink.reqs[0], "200 OK", [("X-A", "1\r\nSet-Cookie: evil=1")])
    with pytest.raises(ValueError):
        proto.response_head(sink.reqs[0], "200 OK\r\nX-B: 2", [])
