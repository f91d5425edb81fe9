"""The ASGI runner's pure parts: which callables are ASGI 3 apps, and the http
scope built from a protocol's CGI variables, the websocket scope and the
``websocket.http.response`` extension's header check, the response headers'
decoding; and the hand-over of an accepted socket to a real loop."""

from __future__ import annotations

import asyncio
import functools
import socket
import time

import pytest

from procmaster.app import AppLoadError, asgi_problem, load_asgi_app
from procmaster.config import load
from procmaster.worker import asgi_accept, asgi_exchange
from procmaster.worker.asgi import new_loop
from procmaster.worker.asgi_scope import http_scope
from procmaster.worker.asgi_ws import _byte_pairs, websocket_scope


async def asgi3(scope, receive, send):
    pass


class AsgiInstance:
    async def __call__(self, scope, receive, send):
        pass


class Asgi2:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        pass


def wsgi(environ, start_response):
    return []


async def two(scope, receive):
    pass


@pytest.mark.parametrize("app", [asgi3, AsgiInstance(), functools.partial(asgi3)])
def test_asgi3_apps_are_accepted(app):
    assert asgi_problem(app) is None


@pytest.mark.parametrize(
    "app, words",
    [
        (wsgi, "looks like a WSGI app"),
        (Asgi2, "is a class"),
        (two, "takes 2 positional"),
        (print, "is not an ASGI 3 app"),
    ],
)
def test_other_callables_are_refused_with_the_reason(app, words):
    assert words in (asgi_problem(app) or "")


def test_http_scope_from_cgi_variables():
    env = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/app",
        "PATH_INFO": "/caf\xc3\xa9",  # latin-1 view of the UTF-8 bytes, as PEP 3333
        "REQUEST_URI": "/app/caf%C3%A9?x=1",
        "QUERY_STRING": "x=1",
        "SERVER_PROTOCOL": "HTTP/1.0",
        "HTTP_X_FORWARDED_FOR": "10.0.0.9",
        "HTTP_HOST": "example.org",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        "REMOTE_ADDR": "10.0.0.1",
        "REMOTE_PORT": "5555",
        "SERVER_NAME": "example.org",
        "SERVER_PORT": "443",
        "HTTPS": "on",
    }
    state = {"db": object()}
    scope = http_scope(env, state)
    assert scope["type"] == "http" and scope["asgi"]["version"] == "3.0"
    assert scope["method"] == "POST" and scope["http_version"] == "1.0"
    assert scope["root_path"] == "/app" and scope["path"] == "/app/café"
    assert scope["raw_path"] == b"/app/caf%C3%A9" and scope["query_string"] == b"x=1"
    assert scope["scheme"] == "https"
    assert scope["client"] == ("10.0.0.1", 5555) and scope["server"] == ("example.org", 443)
    headers = dict(scope["headers"])
    assert headers[b"x-forwarded-for"] == b"10.0.0.9" and headers[b"host"] == b"example.org"
    assert headers[b"content-type"] == b"application/json" and headers[b"content-length"] == b"2"
    assert scope["state"] == state and scope["state"] is not state  # a shallow copy


def test_http_scope_takes_the_headers_and_client_it_is_given():
    """From HTTP's parser: the header fields as received (repeats apart) and the
    socket's peer, instead of what the CGI variables would give."""
    env = {"HTTP_ACCEPT": "a, b", "REMOTE_ADDR": "10.0.0.1", "REMOTE_PORT": "5555"}
    kept = [(b"accept", b"a"), (b"accept", b"b")]
    env["HTTPS"] = "on"  # (as a proxy would say it: the socket's word wins)
    scope = http_scope(env, {}, kept, ("10.0.0.1", 5555), "http")
    assert scope["headers"] is kept and scope["client"] == ("10.0.0.1", 5555)
    assert scope["scheme"] == "http"  # a plain HTTP socket
    assert http_scope(env, {}, kept, ("10.0.0.1", 5555))["scheme"] == "https"  # not said
    del env["HTTPS"]
    assert http_scope(env, {})["headers"] == [(b"accept", b"a, b")]
    assert http_scope(env, {})["client"] == ("10.0.0.1", 5555)


def test_http_scope_tolerates_odd_proxy_variables():
    scope = http_scope({"SERVER_PORT": "not-a-port", "REMOTE_ADDR": "x", "REMOTE_PORT": "?"}, {})
    assert scope["server"] is None and scope["client"] == ("x", 0)
    assert scope["path"] == "" and scope["method"] == "GET" and scope["scheme"] == "http"


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--module", "x"], "remove module"),
        (["--threads", "4"], "threads = 4 does not apply"),
        (["--asgi-loop", "trio"], "'trio' is not one of auto, asyncio, uvloop"),
    ],
)
def test_asgi_refuses_what_it_does_not_run(extra, words):
    cfg = load(["--http-socket", "127.0.0.1:0", "--asgi", "json:loads", *extra], environ={})
    with pytest.raises(AppLoadError) as exc:
        load_asgi_app(cfg)
    assert words in str(exc.value) and "command line" in str(exc.value)


def test_a_plain_module_is_refused_as_not_asgi():
    cfg = load(["--http-socket", "127.0.0.1:0", "--asgi", "json:loads"], environ={})
    with pytest.raises(AppLoadError, match="json.loads is not an ASGI 3 app"):
        load_asgi_app(cfg)


def test_websocket_scope_advertises_the_http_response_extension():
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/ws", "HTTP_UPGRADE": "websocket",
           "HTTP_SEC_WEBSOCKET_PROTOCOL": "chat, superchat", "wsgi.url_scheme": "http"}  # fmt: skip
    scope = websocket_scope(http_scope(env, {}))
    assert scope["type"] == "websocket" and "method" not in scope
    assert scope["subprotocols"] == ["chat", "superchat"]
    # the field repeated, as HTTP's parser keeps it: every offer counts
    kept = [(b"sec-websocket-protocol", b"chat"), (b"sec-websocket-protocol", b"superchat")]
    assert websocket_scope(http_scope(env, {}, kept))["subprotocols"] == ["chat", "superchat"]
    assert scope["extensions"] == {"websocket.http.response": {}}
    again = websocket_scope(http_scope(env, {}))
    assert again["extensions"] is not scope["extensions"]  # (each scope its own dicts)
    assert (
        again["extensions"]["websocket.http.response"]
        is not (scope["extensions"]["websocket.http.response"])
    )


@pytest.mark.parametrize(
    "headers",
    [[("x-a", "1")], [(b"x-a",)], [(b"x-a", b"1", b"2")], [b"x-a: 1"], 5, [(b"x-a", 1)]],
)
def test_http_response_headers_must_be_pairs_of_bytes(headers):
    with pytest.raises((TypeError, ValueError)):
        _byte_pairs(headers)


def test_http_response_headers_decode_as_latin1():
    assert _byte_pairs([(b"x-a", b"caf\xe9")]) == [("x-a", "café")]


def test_response_headers_are_decoded_once_per_set_and_shared():
    fields = [(b"content-type", b"text/plain"), (b"x-caf", b"caf\xe9")]
    first = asgi_exchange.decoded(fields)
    assert first == [("content-type", "text/plain"), ("x-caf", "café")]
    # the same fields in new objects (as a framework builds them per response)
    again = asgi_exchange.decoded([(b"content-type", b"text/plain"), (b"x-caf", b"caf\xe9")])
    assert again is first
    assert asgi_exchange.decoded([(b"content-type", b"text/html")]) == [
        ("content-type", "text/html")
    ]
    assert asgi_exchange.decoded(()) == []


def test_response_headers_that_cannot_be_keys_are_decoded_all_the_same():
    fields = [[b"x-a", b"1"], [b"x-b", b"2"]]  # lists: not hashable
    assert asgi_exchange.decoded(fields) == [("x-a", "1"), ("x-b", "2")]


def test_response_headers_given_as_a_generator_are_read_once():
    fields = ((k, v) for k, v in [(b"x-gen", b"1"), (b"x-gen2", b"2")])
    assert asgi_exchange.decoded(fields) == [("x-gen", "1"), ("x-gen2", "2")]


def test_response_headers_that_are_not_bytes_raise_as_before():
    with pytest.raises(AttributeError):  # (the app's error: a 500, or a cut)
        asgi_exchange.decoded([("x-a", "1")])


def test_the_decoded_headers_kept_are_bounded(monkeypatch):
    monkeypatch.setattr(asgi_exchange, "DECODED", {})
    for n in range(asgi_exchange.DECODED_MAX * 3):
        assert asgi_exchange.decoded([(b"x-n", b"%d" % n)]) == [("x-n", str(n))]
        assert len(asgi_exchange.DECODED) <= asgi_exchange.DECODED_MAX
    # full of sets that never came back, it started again: a set that repeats is kept
    again = asgi_exchange.decoded([(b"x-n", b"1")])
    assert asgi_exchange.decoded([(b"x-n", b"1")]) is again


class Worker:
    """What ``Connecting`` reads of an ASGI worker."""

    def __init__(self, loop) -> None:
        self.loop = loop
        self.accepted = 0
        self.stopping = True
        self.checked = 0

    def check_done(self) -> None:
        self.checked += 1


class Early:
    """A connection read at accept: its transport is told when the loop cannot take it."""

    def __init__(self) -> None:
        self.lost_with = None
        self.transport = self

    def lost(self, conn, exc) -> None:
        self.lost_with = exc


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_a_socket_the_loop_cannot_take_is_closed_and_no_longer_counted(kind):
    loop = new_loop(kind)
    try:
        worker = Worker(loop)
        mine, peer = socket.socketpair()
        with peer:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, mine.detach())
            sock.close()  # (a socket the loop cannot take: closed under it)
            conn = Early()
            worker.accepted += 1
            asgi_accept.Connecting(worker, sock, None, conn).step()
        assert worker.accepted == 0 and worker.checked == 1
        assert conn.lost_with is not None
    finally:
        loop.close()


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_a_socket_the_loop_takes_is_counted_until_its_connection_is_made(kind):
    loop = new_loop(kind)
    made = []

    class Conn(asyncio.Protocol):
        transport = None  # (its early transport: never told, the loop takes the socket)

        def connection_made(self, transport):
            made.append(worker.accepted)
            transport.close()

    try:
        worker = Worker(loop)
        mine, peer = socket.socketpair()
        with peer:
            mine.setblocking(False)
            worker.accepted += 1
            asgi_accept.Connecting(worker, mine, None, Conn()).step()
            assert worker.accepted == 1  # the loop has not called connection_made yet
            deadline = time.monotonic() + 10
            while worker.accepted and time.monotonic() < deadline:
                loop.run_until_complete(asyncio.sleep(0))  # (a turn of the loop)
            assert made == [1] and worker.accepted == 0 and worker.checked == 1
    finally:
        loop.close()
