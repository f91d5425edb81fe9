"""HTTP/1.0 and HTTP/1.1 on ``http-socket``: request bytes in, CGI variables out;
response head and body in, framed bytes out.

Theory of operation
-------------------
Parsing is done by llhttp (through ``httptools``), the parser of Node.js: it is
strict where request smuggling lives (``Content-Length`` with
``Transfer-Encoding``, duplicate ``Content-Length``, obsolete line folding, bare LF,
bad chunk sizes, bytes outside the token/field grammar) and it is C, which the
micro-benchmark in ``bench/micro.py`` shows pays (figures in ``bench/RESULTS.md``).
llhttp calls us back; the callbacks below build the CGI variables of one request
at a time and hand them to the sink. What llhttp accepts but we must not (HTTP/0.9,
oversized header blocks, headers with ``_`` that would alias others in the CGI
namespace, trailers overriding headers) is checked here.

Responses: ``serialize_head`` writes the status line and headers; the framing
(``Content-Length`` as given, chunked when HTTP/1.1 and no length, close-delimited
for HTTP/1.0) is decided once per response in ``response_head``. ``Date`` and
``Server`` are added unless the app set them.

Rules: no sockets, no ``os``, no WSGI, no logging (see ``base.py``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from functools import partial
from urllib.parse import unquote_to_bytes

import httptools

from .base import ProtocolBase, ProtocolError, Request, Sink
from .head import http_date, serialize_head, with_length

__all__ = ["HTTPProtocol", "http_date", "serialize_head", "with_length"]

SERVER = "procmaster"

# request header name (bytes, as sent) -> CGI variable name; filled lazily
_CGI_NAMES: dict[bytes, str | None] = {
    b"Content-Type": "CONTENT_TYPE",
    b"Content-Length": "CONTENT_LENGTH",
}

_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}

# Host header -> (SERVER_NAME, SERVER_PORT): a site sees few distinct hosts
_HOSTS: dict[str, tuple[str, str]] = {}

# a "%" not followed by two hex digits (RFC 3986 pct-encoded)
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# Content-Length values from here on are absurd (and past a signed 64-bit offset)
_MAX_LENGTH = 1 << 63

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# error status -> reason phrase of the answer to a bad request
ERROR_REASONS = {
    400: "Bad Request",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}

_head_cache: dict = {}
_head_cache_second = [0]


def _cgi_name(name: bytes) -> str | None:
    """``User-Agent`` -> ``HTTP_USER_AGENT``; None for names that must be dropped."""
    try:
        return _CGI_NAMES[name]
    except KeyError:
        pass
    text = name.decode("latin-1")
    low = text.lower()
    if low == "content-type":
        cgi: str | None = "CONTENT_TYPE"
    elif low == "content-length":
        cgi = "CONTENT_LENGTH"
    elif "_" in text:
        # ``X_Forwarded_For`` and ``X-Forwarded-For`` would both become
        # HTTP_X_FORWARDED_FOR: drop the underscore form (as nginx and gunicorn do).
        cgi = None
    else:
        cgi = "HTTP_" + text.upper().replace("-", "_")
    if len(_CGI_NAMES) < 512:
        _CGI_NAMES[name] = cgi
    return cgi


def _split_host(host: str, default_port: str) -> tuple[str, str]:
    """``example.com:8080`` -> (name, port); ``[::1]:80`` keeps the brackets."""
    if ":" not in host:
        return host, default_port
    if host[0] == "[":
        end = host.find("]") + 1
        rest = host[end:]
        return host[:end], rest[1:] if rest[:1] == ":" and rest[1:] else default_port
    name, colon, port = host.partition(":")
    return name, port if colon and port else default_port


class HTTPProtocol(ProtocolBase):
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
        "server_name",
        "server_port",
        "chunked_out",
        "close_after",
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
        self.chunked_out = False
        self.close_after = False

    @classmethod
    def for_listener(
        cls, *, buffer_size: int, server_name: str, server_port: str, backlog: int
    ) -> Callable[[Sink], HTTPProtocol]:
        return partial(
            cls, buffer_size=buffer_size, server_name=server_name, server_port=server_port
        )

    @staticmethod
    def error_reply(exc: ProtocolError) -> bytes | None:
        """``413 Content Too Large`` & co, closing the connection; None when the
        error has no status (a connection cut short: nobody to answer)."""
        status = exc.status
        if not status:
            return None
        reason = ERROR_REASONS.get(status, "Bad Request")
        body = f"{status} {reason}\n".encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        return head + body

    # -- llhttp callbacks -------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        # llhttp may deliver the target in pieces when it spans feed() calls
        url = self.url = self.url + url
        # what the headers may still use of buffer-size
        self.head_limit = self.buffer_size - len(url)
        if self.head_limit < 0:
            self._fail(ProtocolError("request target longer than buffer-size", 414))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_trailers:
            return  # trailer fields never override the request's headers
        size = self.head_bytes = self.head_bytes + len(name) + len(value) + 4
        count = self.nheaders = self.nheaders + 1
        if size > self.head_limit or count > self.max_headers:
            self._header_limit()
        try:
            key = _CGI_NAMES[name]
        except KeyError:
            key = _cgi_name(name)
        if key is None:
            return
        env = self.env
        if value and value[-1] in (32, 9):  # llhttp keeps trailing OWS (RFC 9110 5.5)
            value = value.rstrip(b" \t")
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
        url = raw_url if raw_url[:1] == b"/" else self._origin_form(raw_url)
        path, sep, query = url.partition(b"?")
        if b"#" in path:
            self._fail(ProtocolError("fragment in request target", 400))
        if b"%" in path:
            if _BAD_ESCAPE.search(path):
                self._fail(ProtocolError("invalid percent-escape in request target", 400))
            path = unquote_to_bytes(path)
        method = parser.get_method()
        env["REQUEST_METHOD"] = method_str = _METHODS.get(method) or method.decode("latin-1")
        env["SCRIPT_NAME"] = ""
        env["PATH_INFO"] = path.decode("latin-1")
        env["QUERY_STRING"] = query.decode("latin-1") if sep else ""
        env["REQUEST_URI"] = raw_url.decode("latin-1")
        env["SERVER_PROTOCOL"] = protocol
        host = env.get("HTTP_HOST")
        if host:
            try:
                env["SERVER_NAME"], env["SERVER_PORT"] = _HOSTS[host]
            except KeyError:
                env["SERVER_NAME"], env["SERVER_PORT"] = self._split_host(host)
        elif version == "1.1" and host is None:  # an empty Host is allowed (RFC 9112 3.2)
            self._fail(ProtocolError("HTTP/1.1 request without Host", 400))
        else:
            env["SERVER_NAME"] = self.server_name
            env["SERVER_PORT"] = self.server_port
        req = Request(env, parser.should_keep_alive())
        req.version = version
        if method_str == "HEAD":
            req.head_only = True
        cl = env.get("CONTENT_LENGTH")
        if cl is not None:
            req.content_length = int(cl)  # llhttp has validated the digits
            if req.content_length >= _MAX_LENGTH:
                self._fail(ProtocolError("absurd Content-Length", 400))
        elif "HTTP_TRANSFER_ENCODING" not in env:
            req.content_length = 0
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
        self.head_bytes = self.nheaders = 0
        self.head_limit = self.buffer_size
        self.url = b""
        self.in_trailers = False
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

    def _split_host(self, host: str) -> tuple[str, str]:
        parts = _split_host(host, self.server_port)
        if len(_HOSTS) < 256 and ":" in host:  # a host without a port depends on the socket
            _HOSTS[host] = parts
        return parts

    def _fail(self, exc: ProtocolError) -> None:
        self.error = exc
        raise exc

    def _origin_form(self, url: bytes) -> bytes:
        """absolute-form (``http://host/path``) -> origin-form; ``*`` for OPTIONS."""
        if url == b"*":
            return b"*"
        scheme, sep, rest = url.partition(b"://")
        if sep and scheme.lower() in (b"http", b"https"):
            slash = rest.find(b"/")
            # RFC 9112 3.2.2: the target's authority replaces the Host header
            authority = rest[:slash] if slash >= 0 else rest.partition(b"?")[0]
            self.env["HTTP_HOST"] = authority.decode("latin-1")
            return rest[slash:] if slash >= 0 else b"/"
        self._fail(ProtocolError("invalid request target", 400))
        return b""  # not reached

    # -- WireProtocol -----------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
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
                return b""
            message = str(exc) or "malformed request"
            status = 400
            if "Pause on PRI" in message:
                message, status = "HTTP/2 connection preface on an HTTP/1 socket", 505
            elif "Invalid HTTP version" in message:
                status = 505
            raise ProtocolError(message, status) from None
        if self.continue_pending:
            self.continue_pending = False
            return _CONTINUE
        return b""

    def eof(self) -> None:
        if self.req is not None:
            raise ProtocolError("connection closed in the middle of a request", 0)
        if self.head_bytes or self.url:
            if self.env.get("REQUEST_METHOD") is None:
                raise ProtocolError("connection closed in the middle of a request head", 0)

    def response_head(
        self, req: Request, status: str, headers: list[tuple[str, str]], length: int | None = None
    ) -> bytes:
        # The same app answers the same way most of the time: the serialised head
        # is cached per (request framing, status, headers, length), for one second
        # (the Date header's resolution).
        key = (req.version, req.keep_alive, req.head_only, status, length, *headers)
        now = int(time.time())
        if now != _head_cache_second[0]:
            _head_cache.clear()
            _head_cache_second[0] = now
        try:
            head, self.chunked_out, req.keep_alive = _head_cache[key]
            return head
        except KeyError:
            pass
        except TypeError:  # an unhashable header value: no caching
            return self._response_head(req, status, headers, length)
        head = self._response_head(req, status, headers, length)
        if len(_head_cache) < 512:
            _head_cache[key] = (head, self.chunked_out, req.keep_alive)
        return head

    def _response_head(
        self, req: Request, status: str, headers: list[tuple[str, str]], length: int | None
    ) -> bytes:
        has_length = has_date = has_server = chunked = False
        keep_alive = req.keep_alive
        for name, value in headers:
            n = len(name)  # compare lengths first: most headers are none of these
            if n == 14:
                if name.lower() == "content-length":
                    has_length = True
            elif n == 4:
                if name.lower() == "date":
                    has_date = True
            elif n == 6:
                if name.lower() == "server":
                    has_server = True
            elif n == 17:
                if name.lower() == "transfer-encoding":
                    chunked = "chunked" in value.lower()
                    has_length = True
            elif n == 10 and name.lower() == "connection" and value.lower() == "close":
                keep_alive = False
        extra = []
        code = status[:3]
        bodyless = code in ("204", "304") or code[0] == "1"
        if not has_length and not bodyless:
            if length is not None:
                extra.append(("Content-Length", str(length)))
            elif req.version == "1.1" and not req.head_only:
                chunked = True
                extra.append(("Transfer-Encoding", "chunked"))
            elif not req.head_only:
                keep_alive = False
        self.chunked_out = chunked and not req.head_only
        if req.version == "1.1":
            if not keep_alive:
                extra.append(("Connection", "close"))
        elif keep_alive:
            extra.append(("Connection", "keep-alive"))
        if not has_date:
            extra.append(("Date", http_date()))
        if not has_server:
            extra.append(("Server", SERVER))
        req.keep_alive = keep_alive
        return serialize_head("HTTP/" + req.version, status, headers + extra if extra else headers)

    def response_body(self, req: Request, data: bytes) -> bytes:
        if req.head_only or not data:
            return b""
        if self.chunked_out:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return data

    def response_end(self, req: Request) -> bytes:
        self.unanswered -= 1
        if self.continue_deferred:
            return self._end_then_continue(req)
        if self.chunked_out:
            self.chunked_out = False
            return b"0\r\n\r\n"
        return b""

    def _end_then_continue(self, req: Request) -> bytes:
        """The end of ``req``'s response, then the deferred ``100 Continue`` once
        no earlier response is left (the connection staying open)."""
        end = b"0\r\n\r\n" if self.chunked_out else b""
        self.chunked_out = False
        if not req.keep_alive:
            self.continue_deferred = False
        elif self.unanswered == 1:
            self.continue_deferred = False
            end += _CONTINUE
        return end
