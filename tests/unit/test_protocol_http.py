"""HTTP/1.x request parsing, bytes only (no sockets): the conformance corpus in
tests/data/http/ and property-based tests (hypothesis) of ``HTTPProtocol``.

Corpus format: ``NAME.http`` is everything a client sends on one connection;
``NAME.json`` says what must come of it:

* ``status``: the error status the connection ends with (400, 413, 414, 431,
  501, 505), or null when every request is valid;
* ``requests``: the requests delivered (before the error, if any), in order, each
  ``{"environ": {subset of CGI variables}, "body": "latin-1 text", "keep_alive"?}``;
* ``absent``: CGI variables that must not be in any delivered request's environ;
* ``reply``: what the protocol itself answers at once (``100 Continue``).

Each case is fed whole, byte by byte, and cut at random places: the result must
be the same however the bytes arrive. tests/test_e2e_http_corpus.py sends the same
files to a real procmaster.
"""

from __future__ import annotations

import json
import random
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import DATA as TEST_DATA

from procmaster.protocols import ProtocolError, Request
from procmaster.protocols.http import HTTPProtocol
from procmaster.worker.asgi_scope import http_scope

DATA = TEST_DATA / "http"
CASES = sorted(p.stem for p in DATA.glob("*.http"))


class Sink:
    """Records the protocol's events and checks their order."""

    def __init__(self) -> None:
        self.requests: list[tuple[Request, bytearray]] = []
        self.open: Request | None = None

    def on_head(self, req: Request) -> None:
        assert self.open is None
        self.open = req
        self.requests.append((req, bytearray()))

    def on_body(self, req: Request, data: bytes) -> None:
        assert req is self.open and type(data) is bytes
        self.requests[-1][1].extend(data)

    def on_end(self, req: Request) -> None:
        assert req is self.open
        self.open = None


def run(chunks: list[bytes], eof: bool = True, keep_headers: bool = False, port: str = "80"):
    """Feed ``chunks``; returns (completed requests, error status or None, reply)."""
    sink = Sink()
    proto = HTTPProtocol(sink, buffer_size=4096, server_port=port)
    if keep_headers:
        proto.keep_headers()
    reply = b""
    status = None
    try:
        for chunk in chunks:
            reply += proto.feed(chunk)
        if eof:
            proto.eof()
    except ProtocolError as exc:
        status = exc.status
    done = [(req, bytes(body)) for req, body in sink.requests if req is not sink.open]
    return done, status, reply


def splits(data: bytes, rng: random.Random):
    yield "whole", [data]
    yield "bytewise", [data[i : i + 1] for i in range(len(data))]
    for n in range(3):
        if len(data) < 2:
            break
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 8))))
        bounds = [0, *cuts, len(data)]
        yield f"random{n}", [data[a:b] for a, b in pairwise(bounds)]


def test_corpus_is_big_enough():
    assert len(CASES) >= 100
    assert all((DATA / f"{name}.json").exists() for name in CASES)


@pytest.mark.parametrize("name", CASES)
def test_corpus_case(name):
    data = (DATA / f"{name}.http").read_bytes()
    want = json.loads((DATA / f"{name}.json").read_text())
    rng = random.Random(name)
    for how, chunks in splits(data, rng):
        done, status, reply = run(chunks)
        assert status == want["status"], (how, status)
        assert len(done) == len(want["requests"]), (how, [r.environ for r, _ in done])
        for (req, body), expected in zip(done, want["requests"], strict=True):
            for key, value in expected["environ"].items():
                assert req.environ.get(key) == value, (how, key, req.environ)
            assert body == expected["body"].encode("latin-1"), how
            if "keep_alive" in expected:
                assert req.keep_alive is expected["keep_alive"], how
            for key in want.get("absent", ()):
                assert key not in req.environ, (how, key)
        assert reply == want["reply"].encode("latin-1"), how


def combined(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Repeated fields joined as the environ joins them (RFC 9110 5.3; cookies "; ")."""
    out: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in out:
            out[name] += (b"; " if name == b"cookie" else b", ") + value
        else:
            out[name] = value
    # the environ leaves an empty Content-Type / Content-Length out of the headers
    return {k: v for k, v in out.items() if v or k not in (b"content-type", b"content-length")}


@pytest.mark.parametrize("name", CASES)
def test_kept_headers_say_what_the_environ_says(name):
    """An ASGI scope's headers come from the parser as received (``keep_headers``):
    the same fields as the environ's, repeated ones kept apart, for every request of
    the corpus."""
    data = (DATA / f"{name}.http").read_bytes()
    done, _, _ = run([data], keep_headers=True)
    for req, _ in done:
        assert req.headers is not None
        assert all(name == name.lower() for name, _ in req.headers)
        from_environ = dict(http_scope(req.environ, {})["headers"])
        assert combined(req.headers) == from_environ, req.headers
    plain, _, _ = run([data])
    assert all(req.headers is None for req, _ in plain)  # nobody asked: none kept


@pytest.mark.parametrize("name", CASES)
def test_the_kept_target_says_what_the_environ_says(name):
    """With the fields kept, the parser also keeps the request line's raw path,
    query and version (``Request.target``): the scope made from them is the scope
    made from the environ, for every request of the corpus."""
    data = (DATA / f"{name}.http").read_bytes()
    done, _, _ = run([data], keep_headers=True)
    for req, _ in done:
        assert req.target is not None
        direct = http_scope(req.environ, {}, req.headers, None, "http", req.target)
        assert direct == http_scope(req.environ, {}, req.headers, None, "http")
    plain, _, _ = run([data])
    assert all(req.target is None for req, _ in plain)


def test_the_kept_target_is_the_request_line_as_received():
    done, status, _ = run(
        [
            b"GET /a%20b/c?x=%41&y HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET http://other:81/p%2Fq?z=1 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /plain HTTP/1.0\r\n\r\n"
        ],
        keep_headers=True,
    )
    assert status is None
    targets = [req.target for req, _ in done]
    assert targets == [
        (b"/a%20b/c", b"x=%41&y", "1.1"),  # not percent-decoded (PATH_INFO is)
        (b"http://other:81/p%2Fq", b"z=1", "1.1"),  # as REQUEST_URI has it
        (b"*", b"", "1.1"),
        (b"/plain", b"", "1.0"),
    ]
    assert done[0][0].environ["PATH_INFO"] == "/a b/c"


def test_kept_headers_keep_repeats_apart_and_take_the_targets_authority():
    done, status, _ = run(
        [
            b"GET /a HTTP/1.1\r\nHost: h\r\nAccept: x  \r\nAccept: y\r\nX_Under: no\r\n\r\n"
            b"GET http://other:81/b HTTP/1.1\r\nHost: h\r\n\r\n"
            b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"1\r\nz\r\n0\r\nX-Trailer: t\r\n\r\n"
        ],
        keep_headers=True,
    )
    assert status is None
    first, second, third = (req.headers for req, _ in done)
    # trailing OWS stripped; the underscore form dropped, as from the environ
    assert first == [(b"host", b"h"), (b"accept", b"x"), (b"accept", b"y")]
    # RFC 9112 3.2.2: the absolute-form target's authority replaces Host
    assert second == [(b"host", b"other:81")]
    assert third == [(b"host", b"h"), (b"transfer-encoding", b"chunked")]  # no trailer


def test_the_field_name_caches_stay_bounded_and_right_once_full():
    """A client that sends thousands of distinct field names fills the name
    caches only up to their bound; past it, every name is still right in the
    environ and in the kept headers (worked out again, not cached)."""
    from procmaster.protocols import http_fields

    names = [f"X-Flood-{i}".encode() for i in range(1500)]
    for i in range(0, len(names), 50):
        fields = b"".join(b"%s: v\r\n" % name for name in names[i : i + 50])
        request = b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n"
        [(req, _)], status, _ = run([request], keep_headers=True)
        assert status is None
        for name in names[i : i + 50]:
            assert req.environ["HTTP_" + name.decode().upper().replace("-", "_")] == "v"
            assert (name.lower(), b"v") in req.headers
    bound = http_fields.CACHED_NAMES
    assert len(http_fields.CGI_NAMES) <= bound and len(http_fields.FIELDS) <= bound


@pytest.mark.parametrize("host", ["[::1]", "name:", "[::1]:"])
def test_a_host_without_its_own_port_takes_each_sockets_port(host):
    """A Host whose port is missing gets the port of the socket the request came
    in on, for every socket (a cache once kept the first socket's port for all)."""
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    for port in ("8001", "8002", "8001"):
        [(req, _)], status, _ = run([request], port=port)
        assert status is None and req.environ["SERVER_PORT"] == port
    [(req, _)], _, _ = run([b"GET / HTTP/1.1\r\nHost: name:9\r\n\r\n"], port="8003")
    assert req.environ["SERVER_PORT"] == "9"


# -- properties ----------------------------------------------------------------------

VALID = [
    (DATA / f"{name}.http").read_bytes()
    for name in CASES
    if json.loads((DATA / f"{name}.json").read_text())["status"] is None
]
ALL = [(DATA / f"{name}.http").read_bytes() for name in CASES]


def summary(done):
    return [(dict(req.environ), body, req.keep_alive) for req, body in done]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_random_bytes_raise_only_protocol_error(chunks):
    run(chunks)  # anything else than ProtocolError propagates and fails


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALL), st.data())
def test_mutated_corpus_raises_only_protocol_error(data, draw):
    raw = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 4))):
        if not raw:
            break
        i = draw.draw(st.integers(0, len(raw) - 1))
        op = draw.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if op == "flip":
            raw[i] = draw.draw(st.integers(0, 255))
        elif op == "insert":
            raw[i:i] = draw.draw(
                st.sampled_from([b"\r", b"\n", b"\x00", b" ", b":", b"\r\n", b"%"])
            )
        elif op == "delete":
            del raw[i]
        else:
            del raw[i:]
    run([bytes(raw)])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_valid_requests_parse_the_same_however_split(data, draw):
    whole, status, reply = run([data])
    assert status is None
    cuts = sorted(
        draw.draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=min(20, len(data))))
    )
    bounds = [0, *[c for c in cuts if c < len(data)], len(data)]
    pieces, status2, reply2 = run([data[a:b] for a, b in pairwise(bounds)])
    assert status2 is None and reply2 == reply
    assert summary(pieces) == summary(whole)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_truncated_valid_requests_wait_or_end_cleanly(data, draw):
    cut = draw.draw(st.integers(0, len(data)))
    done, status, _ = run([data[:cut]], eof=False)
    assert status is None  # a prefix of a valid stream is never an error...
    complete, _, _ = run([data])
    assert len(done) <= len(complete)
    done, status, _ = run([data[:cut]], eof=True)  # ...and an early EOF only closes
    assert status in (None, 0)


@settings(max_examples=100, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.text("abcxyz/-._~!$&'()*+,;=:@", min_size=0, max_size=30),
    query=st.text("abc=&%20", max_size=20),
    headers=st.dictionaries(
        st.from_regex(r"X-[A-Za-z0-9-]{1,10}", fullmatch=True),
        st.text("abc xyz/;=,", max_size=20).map(str.strip),
        max_size=5,
    ),
    body=st.binary(max_size=300),
    chunked=st.booleans(),
)
def test_generated_requests_round_trip(method, path, query, headers, body, chunked):
    head = f"{method} /{path}{'?' + query if query else ''} HTTP/1.1\r\nHost: h\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if chunked:
        head += "Transfer-Encoding: chunked\r\n\r\n"
        payload = (b"%x\r\n%b\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    else:
        head += f"Content-Length: {len(body)}\r\n\r\n"
        payload = body
    done, status, _ = run([head.encode() + payload])
    assert status is None
    [(req, got)] = done
    env = req.environ
    assert got == body
    assert env["REQUEST_METHOD"] == method
    assert env["PATH_INFO"] == "/" + path
    assert env["QUERY_STRING"] == query
    seen = {}
    for k, v in headers.items():
        key = "HTTP_" + k.upper().replace("-", "_")
        seen[key] = f"{seen[key]}, {v}" if key in seen else v
    for key, value in seen.items():
        assert env[key] == value
