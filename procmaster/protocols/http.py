"""HTTP/1.0 and HTTP/1.1 on ``http-socket``: request bytes in, CGI variables out
(the response side is ``http_response.py``; header names and Host as CGI variables,
``http_fields.py``).

Theory of operation
-------------------
Parsing is done by llhttp (through ``httptools``), the parser of Node.js: it is
strict where request smuggling lives (``Content-Length`` with
``Transfer-Encoding``, duplicate ``Content-Length``, obsolete line folding, bare LF,
bad chunk sizes, bytes outside the token/field grammar) and it is C, which the
micro-benchmark in ``bench/micro.py`` shows pays (figures in ``bench/RESULTS.md``).
llhttp calls us back; the callbacks below build the CGI variables of one request
at a time and hand them to the sink. What llhttp accepts but we must not is
checked here: HTTP/0.9, oversized header blocks, headers with ``_`` that would
alias others in the CGI namespace, trailer fields (never in the environ; the
framing and routing ones refused, RFC 9110 6.5.1), ``Transfer-Encoding`` in an
HTTP/1.0 request (RFC 9112 6.1), an asterisk-form target on a method other than
OPTIONS (RFC 9112 3.2.4), userinfo in an absolute-form target (RFC 9110 4.2.4),
more than one empty line before a request line (RFC 9112 2.2 asks to ignore at
least one: one is ignored, more are a probe, refused as gunicorn does), CONNECT
(a proxy's method: 501 with ``Allow``). What llhttp refuses but we must not: a
method that is a token missing from llhttp's table (``-BLARGH``, RFC 9110 9.1:
the app decides); ``_unknown_method`` parses its request with a stand-in method,
off the hot path (it runs only after llhttp refused the read).

Responses (the framing, the head cache, ``100 Continue`` in order, error
replies) are ``http_response.py``'s; ``HTTPProtocol`` is an ``HTTPResponse``.

Rules: no sockets, no ``os``, no WSGI, no logging (see ``base.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from urllib.parse import unquote_to_bytes

import httptools

from .base import ProtocolError, Request, Sink
from .http_fields import CGI_NAMES, FIELDS, cgi_name, field, server_of
from .http_response import (
    ALLOW,
    CONTINUE,
    ERROR_REASONS,
    SERVER,
    HTTPResponse,
    MethodNotServed,
)

__all__ = ["ALLOW", "ERROR_REASONS", "SERVER", "HTTPProtocol", "MethodNotServed"]

_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}

# a "%" not followed by two hex digits (RFC 3986 pct-encoded)
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# Content-Length values from here on are absurd (and past a signed 64-bit offset)
_MAX_LENGTH = 1 << 63

_CRLF = (13, 10)
# RFC 9110 5.6.2 token: what a method may be
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_METHOD = 64
# trailer fields that would change framing or routing (RFC 9110 6.5.1)
_FORBIDDEN_TRAILERS = frozenset((b"content-length", b"transfer-encoding", b"trailer", b"host"))


class HTTPProtocol(HTTPResponse):
    """One HTTP connection. ``buffer_size`` bounds the request line plus headers
    (uWSGI's ``buffer-size``): past it the answer is 431 (414 when the request
    target alone is too long)."""

    name = "http"
    # the client speaks to us: its environ is complete, its address the socket's peer
    proxied = False
    # an error is answered, after the answers to the requests pipelined before it
    pipelined_errors = True
    # a response with a length goes out as it is (no chunks)
    sendfile = True
    upgrades = True  # a 101 head hands the bytes to a WebSocket

    __slots__ = (
        "sink",
        "parser",
        "buffer_size",
        "max_headers",
        "req",
        "env",
        "head_bytes",
        "head_limit",
        "nheaders",
        "url",
        "in_trailers",
        "error",
        "continue_pending",
        "continue_deferred",
        "unanswered",
        "idle",
        "blank_lines",
        "method",
        "pending",
        "collecting",
        "server_name",
        "server_port",
        "chunked_out",
        "close_after",
        "headers",
    )

    def __init__(
        self,
        sink: Sink,
        *,
        buffer_size: int = 4096,
        max_headers: int = 100,
        server_name: str = "localhost",
        server_port: str = "80",
    ) -> None:
        self.sink = sink
        self.parser = httptools.HttpRequestParser(self)
        self.buffer_size = buffer_size
        self.max_headers = max_headers
        self.server_name = server_name
        self.server_port = server_port
        self.req: Request | None = None
        self.env: dict = {}
        self.head_bytes = 0
        self.head_limit = buffer_size
        self.nheaders = 0
        self.url = b""
        self.in_trailers = False
        # what stopped the parser: our ProtocolError, or what the sink raised
        self.error: BaseException | None = None
        self.continue_pending = False
        # a 100 Continue waiting for the answers to the requests before its own
        self.continue_deferred = False
        # requests whose head went to the sink and whose response has not ended
        self.unanswered = 0
        # between requests: the next byte fed starts a request (or its empty lines)
        self.idle = True
        self.blank_lines = 0  # empty lines seen before the request line
        # a method llhttp does not know (an unknown token), for the request being read
        self.method: str | None = None
        # the start of a request line llhttp may have to see again, and whether
        # we are collecting a method llhttp does not know ourselves
        self.pending = b""
        self.collecting = False
        self.chunked_out = False
        self.close_after = False
        # the request's header fields as (lower-case name, value) bytes, for a sink
        # that asked for them (``keep_headers``: an ASGI scope); None otherwise
        self.headers: list[tuple[bytes, bytes]] | None = None

    @classmethod
    def for_listener(
        cls, *, buffer_size: int, server_name: str, server_port: str, backlog: int
    ) -> Callable[[Sink], HTTPProtocol]:
        return partial(
            cls, buffer_size=buffer_size, server_name=server_name, server_port=server_port
        )

    def keep_headers(self) -> None:
        """From now on every request also carries its header fields as received
        (``Request.headers``: lower-case names, repeated fields kept apart), the
        same fields its environ has (none that the environ drops)."""
        if self.headers is None:
            self.headers = []

    # -- llhttp callbacks -------------------------------------------------------

    def on_message_begin(self) -> None:
        # llhttp read the first byte of a request line: no longer between requests
        self.idle = False

    def on_url(self, url: bytes) -> None:
        # llhttp may deliver the target in pieces when it spans feed() calls
        url = self.url = self.url + url
        # what the headers may still use of buffer-size
        self.head_limit = self.buffer_size - len(url)
        if self.head_limit < 0:
            self._fail(ProtocolError("request target longer than buffer-size", 414))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_trailers:
            # trailer fields never reach the environ; framing and routing ones
            # are refused (RFC 9110 6.5.1: they must not be in a trailer)
            if name.lower() in _FORBIDDEN_TRAILERS:
                self._fail(ProtocolError(f"{name.decode('latin-1')} in a chunked trailer", 400))
            return
        size = self.head_bytes = self.head_bytes + len(name) + len(value) + 4
        count = self.nheaders = self.nheaders + 1
        if size > self.head_limit or count > self.max_headers:
            self._header_limit()
        if value and value[-1] in (32, 9):  # llhttp keeps trailing OWS (RFC 9110 5.5)
            value = value.rstrip(b" \t")
        headers = self.headers
        if headers is None:
            try:
                key = CGI_NAMES[name]
            except KeyError:
                key = cgi_name(name)
            if key is None:
                return
        else:  # the field too, by its lower-case name (keep_headers)
            try:
                key, low = FIELDS[name]
            except KeyError:
                key, low = field(name)
            if key is None:
                return
            headers.append((low, value))
        env = self.env
        if key in env:
            if key == "HTTP_HOST":  # RFC 9112 3.2: more than one Host is a 400
                self._fail(ProtocolError("more than one Host header", 400))
            # RFC 9110 5.3: repeated fields combine with a comma
            # (``Cookie`` uses "; " as its own separator, RFC 6265 5.4).
            env[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value.decode("latin-1")
        else:
            env[key] = value.decode("latin-1")

    def _header_limit(self) -> None:
        if self.nheaders > self.max_headers:
            self._fail(ProtocolError("too many request header fields", 431))
        self._fail(ProtocolError("request header block larger than buffer-size", 431))

    def on_headers_complete(self) -> None:
        self.in_trailers = True
        parser = self.parser
        version = parser.get_http_version()
        protocol = _PROTOCOLS.get(version)
        if protocol is None:
            if version == "0.9":
                self._fail(ProtocolError("HTTP/0.9 requests are not served", 400))
            self._fail(ProtocolError(f"HTTP version {version} not supported", 505))
        env = self.env
        raw_url = self.url
        method = parser.get_method()
        if self.method is not None:
            method_str = self.method  # a token llhttp does not know: the app decides
        else:
            method_str = _METHODS.get(method) or method.decode("latin-1")
        if method_str == "CONNECT":
            self._fail(MethodNotServed("CONNECT (a tunnel) is for proxies", 501))
        url = raw_url if raw_url[:1] == b"/" else self._origin_form(raw_url, method_str)
        # (``find``, not ``in``: ``bytes in bytes`` first tries the right side as an
        # int and formats the TypeError it swallows, twice the cost on every request)
        if url.find(b"#") >= 0:  # neither the path nor the query may hold one (RFC 9112 3.2)
            self._fail(ProtocolError("fragment in request target", 400))
        path, sep, query = url.partition(b"?")
        raw_path = path
        if path.find(b"%") >= 0:
            if _BAD_ESCAPE.search(path):
                self._fail(ProtocolError("invalid percent-escape in request target", 400))
            path = unquote_to_bytes(path)
        env["REQUEST_METHOD"] = method_str
        env["SCRIPT_NAME"] = ""
        env["PATH_INFO"] = path.decode("latin-1")
        env["QUERY_STRING"] = query.decode("latin-1") if sep else ""
        env["REQUEST_URI"] = raw_url.decode("latin-1")
        env["SERVER_PROTOCOL"] = protocol
        host = env.get("HTTP_HOST")
        if host:
            if ":" not in host:  # (most): the port is the socket's
                env["SERVER_NAME"] = host
                env["SERVER_PORT"] = self.server_port
            else:
                env["SERVER_NAME"], env["SERVER_PORT"] = server_of(host, self.server_port)
        elif version == "1.1" and host is None:  # an empty Host is allowed (RFC 9112 3.2)
            self._fail(ProtocolError("HTTP/1.1 request without Host", 400))
        else:
            env["SERVER_NAME"] = self.server_name
            env["SERVER_PORT"] = self.server_port
        req = Request(env, parser.should_keep_alive())
        req.version = version
        if self.headers is not None:
            req.headers = self.headers
            if url is not raw_url:  # (absolute-form: the path as the target had it)
                raw_path = raw_url.partition(b"?")[0]
            req.target = (raw_path, query, version)
        if method_str == "HEAD":
            req.head_only = True
        cl = env.get("CONTENT_LENGTH")
        if cl is not None:
            req.content_length = int(cl)  # llhttp has validated the digits
            if req.content_length >= _MAX_LENGTH:
                self._fail(ProtocolError("absurd Content-Length", 400))
        elif "HTTP_TRANSFER_ENCODING" not in env:
            req.content_length = 0
        elif version == "1.0":
            # RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing
            self._fail(ProtocolError("Transfer-Encoding in an HTTP/1.0 request", 400))
        elif env["HTTP_TRANSFER_ENCODING"].strip().lower() != "chunked":
            # llhttp accepts codings before a final chunked (``gzip, chunked``);
            # we decode none of them (RFC 9112 6.1: 501)
            self._fail(ProtocolError("transfer coding other than chunked", 501))
        self.req = req
        try:
            self.sink.on_head(req)
        except BaseException as exc:
            self.error = exc  # feed() raises it as it is
            raise
        self.unanswered += 1
        if (
            "HTTP_EXPECT" in env
            and version == "1.1"
            and env["HTTP_EXPECT"].lower() == "100-continue"
        ):
            # interim responses go out in order: after the earlier responses
            if self.unanswered == 1:
                self.continue_pending = True
            else:
                self.continue_deferred = True

    def on_body(self, body: bytes) -> None:
        try:
            self.sink.on_body(self.req, body)
        except BaseException as exc:
            self.error = exc  # feed() raises it as it is
            raise

    def on_message_complete(self) -> None:
        # reset for the next request on this connection (cheaper than on_message_begin)
        self.env = {}
        if self.headers is not None:
            self.headers = []
        self.head_bytes = self.nheaders = 0
        self.head_limit = self.buffer_size
        self.url = b""
        self.in_trailers = False
        self.idle = True
        self.blank_lines = 0
        self.method = None
        # the body came without waiting for its 100: none is owed (RFC 9110 10.1.1)
        self.continue_deferred = False
        req = self.req
        self.req = None
        if req is not None:
            try:
                self.sink.on_end(req)
            except BaseException as exc:
                self.error = exc  # feed() raises it as it is
                raise

    # -- helpers ----------------------------------------------------------------

    def _fail(self, exc: ProtocolError) -> None:
        self.error = exc
        raise exc

    def _origin_form(self, url: bytes, method: str) -> bytes:
        """absolute-form (``http://host/path``) -> origin-form; ``*`` for OPTIONS."""
        if url == b"*":
            if method != "OPTIONS":  # RFC 9112 3.2.4: asterisk-form is for OPTIONS only
                self._fail(ProtocolError(f"asterisk-form target with {method}", 400))
            return b"*"
        scheme, sep, rest = url.partition(b"://")
        if sep and scheme.lower() in (b"http", b"https"):
            slash = rest.find(b"/")
            # RFC 9112 3.2.2: the target's authority replaces the Host header
            authority = rest[:slash] if slash >= 0 else rest.partition(b"?")[0]
            if b"@" in authority:
                # RFC 9110 4.2.4: userinfo in an http(s) URI is to be treated as an error
                self._fail(ProtocolError("userinfo in the request target", 400))
            self.env["HTTP_HOST"] = authority.decode("latin-1")
            if self.headers is not None:
                self.headers = [h for h in self.headers if h[0] != b"host"]
                self.headers.append((b"host", authority))
            return rest[slash:] if slash >= 0 else b"/"
        self._fail(ProtocolError("invalid request target", 400))
        return b""  # not reached

    # -- WireProtocol -----------------------------------------------------------

    def release(self) -> None:
        # the parser calls back into us (a cycle): without this, every HTTP
        # connection, its sink and its last request waited for the cycle collector
        self.parser = None
        self.sink = None
        self.req = None

    def feed(self, data: bytes) -> bytes:
        idle = self.idle
        if idle:
            if self.collecting:  # the bytes of a method llhttp does not know
                return self._unknown_method(self.pending + data)
            if data and data[0] in _CRLF:
                data = self._empty_lines(data)
                if not data:
                    return b""
        unanswered = self.unanswered
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # an Upgrade request (or the HTTP/2 preface "PRI * HTTP/2.0")
            if self.env.get("REQUEST_METHOD") is None and data.startswith(b"PRI * HTTP/2"):
                raise ProtocolError("HTTP/2 connection preface on an HTTP/1 socket", 505) from None
            # plain Upgrade: the request itself was delivered; we do not switch protocols
        except httptools.HttpParserError as exc:
            if self.error is not None:
                raise self.error from None
            if "after `Connection: close`" in str(exc):
                # bytes after a request that closes the connection: never served
                self.idle = False
                return b""
            message = str(exc) or "malformed request"
            if message.startswith("Invalid method") and unanswered == self.unanswered:
                # the request line that starts this read (or the one before it
                # began, ``pending``) has a method llhttp does not know
                if idle:
                    return self._unknown_method(data)
                if self.pending:
                    return self._unknown_method(self.pending + data)
            status = 400
            if "Pause on PRI" in message:
                message, status = "HTTP/2 connection preface on an HTTP/1 socket", 505
            elif "Invalid HTTP version" in message:
                status = 505
            raise ProtocolError(message, status) from None
        if idle and not self.idle and not self.url and unanswered == self.unanswered:
            # the read ended inside the method of the request line it started:
            # kept, in case llhttp refuses the method once the rest comes
            self.pending = data
        if self.continue_pending:
            self.continue_pending = False
            return CONTINUE
        return b""

    def _empty_lines(self, data: bytes) -> bytes:
        """Empty lines before a request line (``data`` starts with CR or LF):
        RFC 9112 2.2 asks a server to ignore at least one; one is ignored, more
        are a 400 (as gunicorn does: nothing sends several but a probe). What
        is left for llhttp; empty lines may end one read and go on in the next."""
        rest = data.lstrip(b"\r\n")
        lines = self.blank_lines = self.blank_lines + data[: len(data) - len(rest)].count(b"\n")
        if lines > 1:
            raise ProtocolError("more than one empty line before the request line", 400)
        return rest

    def _unknown_method(self, data: bytes) -> bytes:
        """A request line whose method is a token llhttp's table lacks (``-BLARGH``,
        ``FROB`` ...): RFC 9110 9.1 leaves the method to the resource (the app),
        so llhttp parses the request with a stand-in method and the app gets the
        real one. ``data`` starts with the method: the request starts a read,
        or its first bytes were kept (``pending``); a method cut by the end of a
        read is collected until its space. Pipelined behind another request
        in the same read, llhttp's refusal stands (it reports no offset). The
        slow path: llhttp refused the read before this."""
        method, sp, rest = data.partition(b" ")
        if not _TOKEN.fullmatch(method) or len(method) > _MAX_METHOD:
            raise ProtocolError("invalid method in the request line", 400)
        self.parser = httptools.HttpRequestParser(self)
        self.idle = True
        if not sp:
            self.collecting = True
            self.pending = data
            return b""
        self.collecting = False
        self.pending = b""
        self.method = method.decode("latin-1")
        return self.feed(b"POST " + rest)

    def eof(self) -> None:
        if self.collecting:
            raise ProtocolError("connection closed in the middle of a request line", 0)
        if self.req is not None:
            raise ProtocolError("connection closed in the middle of a request", 0)
        if self.head_bytes or self.url:
            if self.env.get("REQUEST_METHOD") is None:
                raise ProtocolError("connection closed in the middle of a request head", 0)
