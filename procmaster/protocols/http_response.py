"""HTTP/1.x responses: the head (framing decided once per response, cached for a
second), the body's framing, the end, the interim ``100 Continue`` in order, and
the answers to bad requests. ``HTTPProtocol`` (``http.py``, the request side) is
an ``HTTPResponse``.

Theory of operation
-------------------
``response_head`` decides the framing once per response: ``Content-Length`` as
given, chunked when HTTP/1.1 and no length, close-delimited for HTTP/1.0; adds
``Date`` and ``Server`` unless the app set them; the head is written by
``head.serialize_head`` (the one gate against header injection) and cached per
(request framing, status, headers, length) for the ``Date`` header's second.

Interim responses go out in order: a ``100 Continue`` owed to a request read
while earlier responses are still due is appended to the end of the last of
them (``response_end``), never written ahead of them; it is dropped when the
body came anyway (RFC 9110 10.1.1) or the connection closes.

Must not know: sockets, ``os``, WSGI, logging; how requests are parsed.
"""

from __future__ import annotations

import time

from .base import ProtocolBase, ProtocolError, Request
from .head import http_date, serialize_head

__all__ = ["ALLOW", "CONTINUE", "ERROR_REASONS", "SERVER", "HTTPResponse", "MethodNotServed"]

SERVER = "procmaster"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# what an origin server that is not a proxy answers to CONNECT
ALLOW = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"

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


class MethodNotServed(ProtocolError):
    """A method this server never serves (CONNECT): answered with ``Allow``."""


class HTTPResponse(ProtocolBase):
    """The response side of ``HTTPProtocol`` (whose slots hold ``chunked_out``,
    ``unanswered`` and ``continue_deferred``)."""

    __slots__ = ()
    chunked_out: bool
    unanswered: int
    continue_deferred: bool

    @staticmethod
    def error_reply(exc: ProtocolError) -> bytes | None:
        """``413 Content Too Large`` & co, closing the connection; None when the
        error has no status (a connection cut short: nobody to answer)."""
        status = exc.status
        if not status:
            return None
        reason = ERROR_REASONS.get(status, "Bad Request")
        body = f"{status} {reason}\n".encode()
        allow = f"Allow: {ALLOW}\r\n" if isinstance(exc, MethodNotServed) else ""
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n{allow}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        return head + body

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
            end += CONTINUE
        return end
