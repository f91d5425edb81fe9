"""FastCGI, fed with bytes only.

Conformance cases live in tests/data/fastcgi/: ``NAME.bin`` is what the web
server sends (the whole connection), ``NAME.json`` what must come of it:

- ``options``: keyword arguments for ``FastCGIProtocol``;
- ``requests``: for each request seen by the sink, ``rid``, ``environ`` (exact),
  ``content_length``, ``head_only``, ``keep_alive``, ``aborted`` and the body as
  ``body`` (latin-1 text) or ``body_len`` + ``body_sha256``;
- ``reply``: hex of all the bytes ``feed()`` returned (management answers,
  END_REQUEST for refused or aborted requests);
- or ``error``: a substring of the ``ProtocolError`` raised by ``feed()`` or ``eof()``;
- ``answer`` (optional, default false): answer each request inside ``on_end``, as
  a worker running the app at once would (needed for keep-conn sequences, where
  the next request may only begin once the previous one is answered); each
  answer must decode as a complete response.

Each case is fed whole, one byte at a time and in random splits; the outcome
must be the same. A small reference client (encoding requests as nginx does,
decoding and checking every response record) drives the round-trip tests.
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
from support import sansio
from support.sansio import splits

from procmaster.protocols.base import ProtocolError, Request
from procmaster.protocols.fastcgi import FastCGIProtocol

DATA = TEST_DATA / "fastcgi"
CASES = sorted(p.stem for p in DATA.glob("*.bin"))

BEGIN, ABORT, END, PARAMS, STDIN, STDOUT, STDERR, DATA_T = 1, 2, 3, 4, 5, 6, 7, 8
GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE = 9, 10, 11


# -- a reference client, written from the spec (independent of the module) -----


def rec(rtype: int, rid: int, content: bytes = b"", pad: int | None = None) -> bytes:
    if pad is None:
        pad = -len(content) % 8
    return struct.pack(">BBHHBB", 1, rtype, rid, len(content), pad, 0) + content + bytes(pad)


def nv_len(n: int) -> bytes:
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def nv(pairs) -> bytes:
    return b"".join(nv_len(len(k)) + nv_len(len(v)) + k + v for k, v in pairs)


def stream(rtype: int, rid: int, data: bytes, size: int) -> bytes:
    """A stream as records of ``size`` bytes at most, then the empty record."""
    out = [rec(rtype, rid, data[i : i + size]) for i in range(0, len(data), size)]
    return b"".join(out) + rec(rtype, rid)


def begin(rid: int = 1, role: int = 1, keep: bool = False) -> bytes:
    return rec(BEGIN, rid, struct.pack(">HB5x", role, 1 if keep else 0))


def client_request(params, body=b"", rid=1, keep=False, params_size=65535, stdin_size=32768):
    """A request as nginx encodes it."""
    return (
        begin(rid, keep=keep)
        + stream(PARAMS, rid, nv(params), params_size)
        + stream(STDIN, rid, body, stdin_size)
    )


def client_records(data: bytes) -> list[tuple[int, int, bytes]]:
    """Decode records from the application, checking each as nginx would."""
    out = []
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 8, "truncated record header"
        version, rtype, rid, clen, pad, reserved = struct.unpack_from(">BBHHBB", data, pos)
        assert version == 1 and reserved == 0
        assert (8 + clen + pad) % 8 == 0, "records are padded to a multiple of 8"
        assert len(data) - pos >= 8 + clen + pad, "truncated record"
        out.append((rtype, rid, data[pos + 8 : pos + 8 + clen]))
        pos += 8 + clen + pad
    return out


def client_response(data: bytes, rid: int = 1):
    """(status, headers, body, app_status, protocol_status) of one response."""
    records = client_records(data)
    stdout = b""
    ended = False
    end = None
    for rtype, r, content in records:
        assert r == rid
        assert end is None, "nothing after END_REQUEST"
        if rtype == STDOUT:
            assert not ended, "STDOUT after the end of the stream"
            if content:
                stdout += content
            else:
                ended = True
        elif rtype == END:
            end = struct.unpack(">IB3x", content)
        else:
            raise AssertionError(f"unexpected record type {rtype}")
    assert ended and end is not None
    head, _, body = stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("Status: ")
    status = lines[0][len("Status: ") :]
    headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
    return status, headers, body, end[0], end[1]


# -- the recording sink --------------------------------------------------------


class Recorder(sansio.Recorder):
    EXTRA = ("rid", "aborted")


class Answering(Recorder):
    """A Recorder that answers each request as soon as it is complete."""

    proto: FastCGIProtocol

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[bytes] = []

    def on_end(self, req: Request) -> None:
        super().on_end(req)
        out = self.proto.response_head(req, "200 OK", [("Content-Type", "text/plain")])
        out += self.proto.response_body(req, b"ok") + self.proto.response_end(req)
        if out:
            assert client_response(out, req.rid)[2] == (b"" if req.head_only else b"ok")
        self.answers.append(out)


def run(chunks, answer=False, **options):
    """Feed ``chunks`` then eof. Returns (summary, reply) or raises ProtocolError."""
    sink = Answering() if answer else Recorder()
    proto = FastCGIProtocol(sink, **options)
    sink.proto = proto
    reply = b""
    for chunk in chunks:
        reply += proto.feed(chunk)
    proto.eof()
    return sink.summary(), reply


@pytest.mark.parametrize("name", CASES)
def test_conformance(name):
    data = (DATA / f"{name}.bin").read_bytes()
    spec = json.loads((DATA / f"{name}.json").read_text())
    options = {**spec.get("options", {}), "answer": spec.get("answer", False)}
    rng = random.Random(name)
    for how, chunks in splits(data, rng):
        if "error" in spec:
            with pytest.raises(ProtocolError) as exc:
                run(chunks, **options)
            assert spec["error"] in exc.value.message, how
            assert exc.value.status == 0
            continue
        got, reply = run(chunks, **options)
        assert len(got) == len(spec["requests"]), how
        for g, r in zip(got, spec["requests"], strict=True):
            for key in ("rid", "environ", "content_length", "head_only", "keep_alive", "aborted"):
                assert g[key] == r[key], (how, key)
            assert g["ended"], how
            if "body" in r:
                assert g["body"] == r["body"].encode("latin-1"), how
            else:
                assert len(g["body"]) == r["body_len"], how
                assert hashlib.sha256(g["body"]).hexdigest() == r["body_sha256"], how
        assert reply.hex() == spec["reply"], how


def test_conformance_cases_found():
    assert len(CASES) >= 30
    for name in CASES:
        assert (DATA / f"{name}.json").exists(), name


# -- requests ------------------------------------------------------------------

PARAMS_GET = [
    (b"QUERY_STRING", b"a=1"),
    (b"REQUEST_METHOD", b"GET"),
    (b"CONTENT_TYPE", b""),
    (b"CONTENT_LENGTH", b""),
    (b"SCRIPT_NAME", b"/hello"),
    (b"REQUEST_URI", b"/hello?a=1"),
    (b"DOCUMENT_URI", b"/hello"),
    (b"DOCUMENT_ROOT", b"/srv/www"),
    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"REQUEST_SCHEME", b"http"),
    (b"GATEWAY_INTERFACE", b"CGI/1.1"),
    (b"SERVER_SOFTWARE", b"nginx/1.22.1"),
    (b"REMOTE_ADDR", b"127.0.0.1"),
    (b"REMOTE_PORT", b"40000"),
    (b"SERVER_ADDR", b"127.0.0.1"),
    (b"SERVER_PORT", b"80"),
    (b"SERVER_NAME", b"localhost"),
    (b"REDIRECT_STATUS", b"200"),
    (b"HTTP_HOST", b"localhost"),
]


def params(**changes):
    pairs = [(k, changes.pop(k.decode(), v)) for k, v in PARAMS_GET]
    return pairs + [(k.encode(), v) for k, v in changes.items()]


def post(body: bytes, **changes):
    return params(REQUEST_METHOD=b"POST", CONTENT_LENGTH=str(len(body)).encode(), **changes)


def test_nginx_get():
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    assert proto.name == "fastcgi"
    assert proto.feed(client_request(PARAMS_GET)) == b""
    [req] = sink.reqs
    assert req.environ == {k.decode(): v.decode() for k, v in PARAMS_GET}
    assert req.rid == 1
    assert req.content_length is None
    assert req.keep_alive is False
    assert req.head_only is False
    assert [e[0] for e in sink.events] == ["head", "end"]
    proto.eof()


def test_keep_conn_sets_keep_alive():
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    proto.feed(client_request(PARAMS_GET, keep=True))
    assert sink.reqs[0].keep_alive is True


@pytest.mark.parametrize("index", range(len(client_request(post(b"xyz"), b"xyz"))))
def test_split_at_every_byte(index):
    data = client_request(post(b"xyz"), b"xyz")
    got, reply = run([data[:index], data[index:]])
    assert reply == b""
    [r] = got
    assert r["body"] == b"xyz" and r["ended"] and r["content_length"] == 3


def test_large_body_streams_without_gathering():
    size = 50 * 1024 * 1024
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    proto.feed(begin() + stream(PARAMS, 1, nv(params(CONTENT_LENGTH=str(size).encode())), 65535))
    [req] = sink.reqs
    record = rec(STDIN, 1, bytes(range(256)) * 128)  # 32 KiB of content, as nginx sends
    feed_size = 65536 + 3  # reads never line up with records
    data = record * 32  # 1 MiB of body
    for _ in range(size // (1024 * 1024)):
        for i in range(0, len(data), feed_size):
            piece = data[i : i + feed_size]
            before = len(sink.events)
            proto.feed(piece)
            # what was fed was handed on at once, never more than it
            assert 0 < sum(e[2] for e in sink.events[before:]) <= len(piece)
    proto.feed(rec(STDIN, 1))
    assert id(req) in sink.ended
    assert sum(map(len, sink.bodies[id(req)])) == size
    proto.eof()


def test_stdin_record_split_across_feeds_is_delivered_in_pieces():
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    proto.feed(begin() + stream(PARAMS, 1, nv(post(b"x" * 1000)), 65535))
    record = rec(STDIN, 1, b"x" * 1000)
    proto.feed(record[:300])
    proto.feed(record[300:])
    req = sink.reqs[0]
    assert [len(b) for b in sink.bodies[id(req)]] == [292, 708]


def test_get_values_in_the_middle_of_a_request():
    sink = Recorder()
    proto = FastCGIProtocol(sink, max_conns=8, max_reqs=16)
    data = client_request(post(b"abc"), b"abc")
    question = rec(GET_VALUES, 0, nv([(b"FCGI_MAX_REQS", b""), (b"FCGI_MAX_CONNS", b"")]))
    reply = proto.feed(data[:16] + question + data[16:])  # after BEGIN_REQUEST
    [(rtype, rid, content)] = client_records(reply)
    assert (rtype, rid) == (GET_VALUES_RESULT, 0)
    assert content == nv([(b"FCGI_MAX_REQS", b"16"), (b"FCGI_MAX_CONNS", b"8")])
    assert sink.body(sink.reqs[0]) == b"abc"


def test_unknown_management_type_reply():
    reply = FastCGIProtocol(Recorder()).feed(rec(BEGIN, 0, struct.pack(">HB5x", 1, 0)))
    assert client_records(reply) == [(UNKNOWN_TYPE, 0, bytes([BEGIN]) + bytes(7))]


def test_unknown_role_reply_and_connection_stays_usable():
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    refused = rec(BEGIN, 1, struct.pack(">HB5x", 3, 1)) + stream(PARAMS, 1, nv(PARAMS_GET), 9)
    reply = proto.feed(refused + stream(STDIN, 1, b"", 9) + client_request(PARAMS_GET))
    [(rtype, rid, content)] = client_records(reply)
    assert (rtype, rid) == (END, 1)
    assert struct.unpack(">IB3x", content) == (0, 3)  # FCGI_UNKNOWN_ROLE
    assert len(sink.reqs) == 1


# -- one request at a time: FCGI_CANT_MPX_CONN ---------------------------------


def test_second_request_id_is_refused_while_one_is_active():
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    proto.feed(client_request(PARAMS_GET, keep=True))
    [req] = sink.reqs
    # request 1 is complete but not answered: id 2 is refused at once, never hangs
    reply = proto.feed(client_request(PARAMS_GET, rid=2, keep=True))
    [(rtype, rid, content)] = client_records(reply)
    assert (rtype, rid) == (END, 2)
    assert struct.unpack(">IB3x", content) == (0, 1)  # FCGI_CANT_MPX_CONN
    assert len(sink.reqs) == 1
    # once request 1 is answered, id 2 is welcome
    assert [r[0] for r in client_records(proto.response_end(req))] == [STDOUT, END]
    assert proto.feed(client_request(PARAMS_GET, rid=2, keep=True)) == b""
    assert [r.rid for r in sink.reqs] == [1, 2]


def test_same_id_while_its_request_is_still_coming_is_an_error():
    proto = FastCGIProtocol(Recorder())
    proto.feed(begin(1, keep=True) + stream(PARAMS, 1, nv(PARAMS_GET), 100))
    with pytest.raises(ProtocolError) as exc:
        proto.feed(begin(1))
    assert "already active" in exc.value.message


def test_same_id_reused_before_the_answer_gets_the_answer_then_a_refusal():
    # issue 15: a complete request, then its id again in the same write (keep-conn)
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    dup = client_request(PARAMS_GET, b"body", keep=True)
    assert proto.feed(client_request(PARAMS_GET, keep=True) + dup) == b""
    [req] = sink.reqs  # the duplicate's records were skipped, never a second request
    answer = proto.response_head(req, "200 OK", [("Content-Type", "text/plain")], 2)
    answer += proto.response_body(req, b"ok") + proto.response_end(req)
    records = client_records(answer)
    assert {r[1] for r in records} == {1}
    assert [r[0] for r in records[-3:]] == [STDOUT, END, END]
    # the first: answered and complete; then the duplicate: FCGI_CANT_MPX_CONN
    assert client_response(b"".join(rec(t, r, c) for t, r, c in records[:-1]))[2:] == (b"ok", 0, 0)
    assert struct.unpack(">IB3x", records[-1][2]) == (0, 1)
    # the connection goes on: the id is free again
    assert proto.feed(client_request(PARAMS_GET, keep=True)) == b""
    assert len(sink.reqs) == 2 and sink.reqs[1].rid == 1


# -- keep-conn: several requests, one after the other --------------------------


def test_keep_conn_sequence_reuses_the_id():
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    for n in range(5):
        body = b"%d" % n * (n * 1000)
        assert proto.feed(client_request(post(body), body, keep=True)) == b""
        req = sink.reqs[-1]
        assert req.rid == 1 and req.keep_alive and sink.body(req) == body
        out = proto.response_head(req, "200 OK", [("Content-Type", "text/plain")])
        out += proto.response_body(req, body)
        out += proto.response_end(req)
        status, headers, got, app, protocol = client_response(out)
        assert (status, headers, got, app, protocol) == (
            "200 OK",
            [("Content-Type", "text/plain")],
            body,
            0,
            0,
        )
    assert len(sink.reqs) == 5
    proto.eof()


def test_answer_before_the_body_is_read_skips_the_rest_of_stdin():
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    body = b"z" * 100_000
    data = client_request(post(body), body, keep=True)
    proto.feed(data[:5000])
    req = sink.reqs[0]
    out = proto.response_head(req, "413 Payload Too Large", []) + proto.response_end(req)
    assert client_response(out)[0] == "413 Payload Too Large"
    got_before = len(sink.body(req))
    proto.feed(data[5000:])  # the rest of request 1 is ignored (inactive id)
    assert len(sink.body(req)) == got_before
    assert id(req) not in sink.ended
    proto.feed(client_request(PARAMS_GET, keep=True))
    assert len(sink.reqs) == 2 and id(sink.reqs[1]) in sink.ended
    proto.eof()


# -- abort ---------------------------------------------------------------------


def test_abort_before_head():
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    reply = proto.feed(begin(keep=True) + rec(PARAMS, 1, nv(PARAMS_GET)) + rec(ABORT, 1))
    assert sink.events == []
    assert client_records(reply) == [(STDOUT, 1, b""), (END, 1, struct.pack(">IB3x", 0, 0))]
    proto.feed(rec(PARAMS, 1) + rec(STDIN, 1))  # late records of the aborted id: ignored
    proto.feed(client_request(PARAMS_GET))  # and the id can start again
    assert len(sink.reqs) == 1
    proto.eof()


def test_abort_during_body_ends_it_and_answers_at_once():
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    data = client_request(post(b"x" * 10), b"x" * 10)
    proto.feed(data[:-8])  # all but the empty STDIN record
    req = sink.reqs[0]
    out_before = proto.response_head(req, "200 OK", [])  # the app may have started
    assert out_before
    reply = proto.feed(rec(ABORT, 1))
    assert req.aborted
    assert sink.events[-1] == ("end", req)
    assert client_records(reply) == [(STDOUT, 1, b""), (END, 1, struct.pack(">IB3x", 0, 0))]
    # the worker finishing the request afterwards sends nothing more
    assert proto.response_body(req, b"late") == b""
    assert proto.response_end(req) == b""
    proto.feed(data[-8:])
    proto.eof()


def test_abort_after_end_is_answered_by_response_end():
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    proto.feed(client_request(PARAMS_GET, keep=True))
    req = sink.reqs[0]
    assert proto.feed(rec(ABORT, 1)) == b""
    assert req.aborted
    assert proto.response_head(req, "200 OK", []) == b""
    assert proto.response_body(req, b"data") == b""
    out = proto.response_end(req)
    assert client_records(out) == [(STDOUT, 1, b""), (END, 1, struct.pack(">IB3x", 0, 0))]
    assert proto.response_end(req) == b""  # END_REQUEST exactly once
    proto.feed(client_request(PARAMS_GET, keep=True))
    assert len(sink.reqs) == 2


# -- responses -----------------------------------------------------------------


def answered(body_chunks, method=b"GET", status="200 OK", headers=()):
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    proto.feed(client_request(params(REQUEST_METHOD=method)))
    req = sink.reqs[0]
    out = [proto.response_head(req, status, list(headers))]
    out += [proto.response_body(req, chunk) for chunk in body_chunks]
    out.append(proto.response_end(req))
    return out


def test_response_head_is_cgi_style():
    out = answered([b"hi"], headers=[("Content-Type", "text/html"), ("Set-Cookie", "a=\u00e9")])
    [(rtype, rid, content)] = client_records(out[0])
    assert (rtype, rid) == (STDOUT, 1)
    assert content == b"Status: 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: a=\xe9\r\n\r\n"
    assert not content.startswith(b"HTTP/")


def test_response_head_refuses_header_injection():
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    proto.feed(client_request(PARAMS_GET))
    with pytest.raises(ValueError):
        proto.response_head(sink.reqs[0], "200 OK", [("X-A", "1\nLocation: /evil")])


def test_response_end_is_empty_stdout_then_end_request():
    out = answered([])
    assert out[-1] == (
        bytes([1, STDOUT, 0, 1, 0, 0, 0, 0]) + bytes([1, END, 0, 1, 0, 8, 0, 0]) + bytes(8)
    )


def test_empty_body_chunk_produces_nothing():
    out = answered([b"", b"a", b""])
    assert out[1] == b"" and out[3] == b""
    assert client_response(b"".join(out))[2] == b"a"


def test_head_request_sends_head_only():
    out = answered([b"body"], method=b"HEAD")
    assert out[1] == b""
    status, _, body, _, _ = client_response(b"".join(out))
    assert status == "200 OK" and body == b""


@pytest.mark.parametrize(
    "size", [1, 7, 8, 9, 65527, 65528, 65529, 65535, 65536, 200_000, 3_000_001]
)
def test_body_records_are_at_most_65535_and_padded(size):
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    out = answered([body])
    records = client_records(out[1])
    assert all(rtype == STDOUT and 0 < len(content) <= 65535 for rtype, _, content in records)
    assert len(records) == -(-size // 65528)
    assert b"".join(content for _, _, content in records) == body
    assert client_response(b"".join(out))[2] == body


def test_body_may_be_a_memoryview_or_bytearray():
    out = answered([memoryview(b"abc"), bytearray(b"def")])
    assert client_response(b"".join(out))[2] == b"abcdef"


def test_large_head_is_split_too():
    out = answered([], headers=[("X-Big", "v" * 70_000)])
    records = client_records(out[0])
    assert len(records) == 2
    status, headers, _, _, _ = client_response(b"".join(out))
    assert headers == [("X-Big", "v" * 70_000)]


# -- round trip with the reference client --------------------------------------


def echo_app_round_trip(proto: FastCGIProtocol, sink: Recorder, requests, rng: random.Random):
    """Like nginx: send each request in random pieces, read its whole response
    (the app echoes the body back), then send the next one."""
    responses = []
    for n, data in enumerate(requests):
        pos = 0
        while pos < len(data):
            size = rng.choice([1, 7, 8, 100, 4096, 65536])
            assert proto.feed(data[pos : pos + size]) == b""
            pos += size
        req = sink.reqs[n]
        assert id(req) in sink.ended
        body = sink.body(req)
        headers = [("Content-Type", "application/octet-stream"), ("X-Len", str(len(body)))]
        out = proto.response_head(req, "200 OK", headers)
        for i in range(0, len(body), 50_000):
            out += proto.response_body(req, body[i : i + 50_000])
        out += proto.response_end(req)
        assert req.keep_alive
        responses.append(out)
    proto.eof()
    return responses


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_nginx_style_keep_conn(seed):
    rng = random.Random(seed)
    bodies = [rng.randbytes(rng.choice([0, 1, 100, 40_000, 150_000])) for _ in range(4)]
    requests = [
        client_request(
            post(body, HTTP_X_N=str(n).encode(), HTTP_COOKIE=b"c" * rng.randint(0, 300)),
            body,
            keep=True,
            params_size=rng.choice([7, 100, 65535]),
            stdin_size=rng.choice([8, 32768, 65535]),
        )
        for n, body in enumerate(bodies)
    ]
    sink = Recorder()
    proto = FastCGIProtocol(sink, buffer_size=8192)
    responses = echo_app_round_trip(proto, sink, requests, rng)
    assert len(responses) == len(bodies)
    for n, (out, body) in enumerate(zip(responses, bodies, strict=True)):
        status, headers, got, app_status, protocol_status = client_response(out)
        assert status == "200 OK"
        assert ("X-Len", str(len(body))) in headers
        assert got == body
        assert (app_status, protocol_status) == (0, 0)
        assert sink.reqs[n].environ["HTTP_X_N"] == str(n)


# -- properties ----------------------------------------------------------------


def cut(data: bytes, points) -> list[bytes]:
    bounds = [0, *sorted({p % (len(data) + 1) for p in points}), len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


# CR, LF and NUL are refused in a proxy's variables (test_hostile_vars_are_refused)
names = st.binary(min_size=1, max_size=150).filter(lambda b: not re.search(rb"[\0\r\n]", b))
values = st.binary(max_size=300).map(lambda b: re.sub(rb"[\0\r\n]", b"", b))


@st.composite
def fcgi_requests(draw):
    pairs = draw(st.lists(st.tuples(names, values), max_size=15))
    body = draw(st.binary(max_size=2000))
    pairs = [p for p in pairs if p[0] != b"CONTENT_LENGTH"]
    pairs.append((b"CONTENT_LENGTH", str(len(body)).encode()))
    rid = draw(st.integers(min_value=1, max_value=65535))
    keep = draw(st.booleans())
    psize = draw(st.integers(min_value=1, max_value=400))
    ssize = draw(st.integers(min_value=1, max_value=3000))
    return pairs, body, client_request(pairs, body, rid, keep, psize, ssize), rid, keep


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fcgi_requests(), min_size=1, max_size=3), st.lists(st.integers(0), max_size=10))
def test_valid_requests_parse_the_same_however_split(reqs, points):
    # sequential requests, each answered before the next: feed one at a time
    sink = Recorder()
    proto = FastCGIProtocol(sink, buffer_size=65535)
    for n, (pairs, body, data, rid, keep) in enumerate(reqs):
        for chunk in cut(data, points):
            assert proto.feed(chunk) == b""
        req = sink.reqs[n]
        expected = {}
        for k, v in pairs:
            expected[k.decode("latin-1")] = v.decode("latin-1")
        assert req.environ == expected
        assert (req.rid, req.keep_alive, req.content_length) == (rid, keep, len(body))
        assert sink.body(req) == body and id(req) in sink.ended
        assert [r[:2] for r in client_records(proto.response_end(req))] == [
            (STDOUT, rid),
            (END, rid),
        ]
    proto.eof()


@settings(max_examples=300, deadline=None)
@given(fcgi_requests(), st.data())
def test_truncated_requests_raise_protocol_error(request, data):
    whole = request[2]
    end = data.draw(st.integers(min_value=1, max_value=len(whole) - 1))
    with pytest.raises(ProtocolError):
        run(cut(whole[:end], data.draw(st.lists(st.integers(0), max_size=5))), buffer_size=65535)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0), max_size=8))
def test_random_bytes_only_ever_raise_protocol_error(data, points):
    try:
        run(cut(data, points))
    except ProtocolError as exc:
        assert exc.message and exc.status == 0


@st.composite
def record_soup(draw):
    """Well-framed records of any type, id and content: the parser's state machine."""
    out = b""
    for _ in range(draw(st.integers(1, 12))):
        rtype = draw(st.sampled_from([1, 1, 2, 4, 4, 5, 5, 8, 9, 3, 0, 12]))
        rid = draw(st.sampled_from([0, 1, 1, 1, 2]))
        if rtype == 1 and draw(st.booleans()):
            content = struct.pack(">HB5x", draw(st.sampled_from([1, 1, 2, 3])), draw(st.booleans()))
        elif rtype == 4 and draw(st.booleans()):
            content = nv(draw(st.lists(st.tuples(names, values), max_size=3)))
        else:
            content = draw(st.binary(max_size=40))
        out += rec(rtype, rid, content, draw(st.integers(0, 9)))
    return out


@settings(max_examples=500, deadline=None)
@given(record_soup(), st.lists(st.integers(0), max_size=8))
def test_any_record_sequence_only_ever_raises_protocol_error(data, points):
    sink = Recorder()
    proto = FastCGIProtocol(sink)
    try:
        for chunk in cut(data, points):
            client_records(proto.feed(chunk))
            for req in sink.reqs:
                # the worker may answer at any moment
                if id(req) in sink.ended:
                    client_records(proto.response_end(req))
        proto.eof()
    except ProtocolError as exc:
        assert exc.message and exc.status == 0


@settings(max_examples=300, deadline=None)
@given(fcgi_requests(), st.data())
def test_mutated_requests_only_ever_raise_protocol_error(request, data):
    whole = bytearray(request[2])
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        i = data.draw(st.integers(min_value=0, max_value=len(whole) - 1))
        whole[i] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        run(cut(bytes(whole), data.draw(st.lists(st.integers(0), max_size=5))))
    except ProtocolError as exc:
        assert exc.message
