"""SCGI, as nginx's ``scgi_pass`` and Apache's ``mod_proxy_scgi`` speak it to an ``scgi-socket``.

Theory of operation
-------------------
A connection carries one request (the SCGI protocol, python.ca/scgi/protocol.txt)::

    <decimal length> ":" <length bytes of headers> ","     a netstring
    CONTENT_LENGTH bytes of body

The headers are NUL-terminated name/value strings, ``NAME\\0value\\0`` repeated;
the first must be ``CONTENT_LENGTH`` (both proxies send it first, the spec
requires it). The ``SCGI: 1`` header the spec asks for is accepted but not
required (an operator's own ``scgi_params`` may leave it out); it stays in the
environ like every other header.

The parser is a four-state machine::

    LENGTH --(":" after 1..10 digits)--> HEAD --(block + ",")--> BODY --(CONTENT_LENGTH)--> DONE
                                              \\--(no body)----------------------------->/

In LENGTH and HEAD, bytes are kept (at most 11 + buffer_size + 1) until the
netstring is complete; the block is then decoded in one pass (one latin-1
``str``, one ``split``). A declared length over ``buffer_size`` (uWSGI's
``buffer-size``) is refused as soon as its digits are read. BODY and DONE are
as in ``uwsgi.py``: body bytes are handed on as they come, bytes after the body
are dropped, ``req.keep_alive`` is always False (one request per connection).

The response is what SCGI servers write and what both proxies parse: CGI-style
headers with the status in a ``Status:`` header (``Status: 200 OK``, then the
app's headers, a blank line), the body bytes as they are, nothing at the end.
nginx would also take an HTTP status line, Apache's ``mod_proxy_scgi`` would
not (it reads the head as CGI script output), so ``Status:`` it is. The head
goes through ``head.cached_head``, whose gate refuses a CR or LF inside the
status or a header with ``HeadError`` (header injection); headers holding CR
or LF are refused (``head.check_vars``).

Rules for this file: no sockets, no ``os``, no WSGI, no logging. Bad input raises
``ProtocolError(status=0)`` (the worker just closes) and nothing else.
"""

from __future__ import annotations

from .base import LengthBody, ProtocolError, Request, Sink
from .head import cached_head, check_vars, status_version

__all__ = ["SCGIProtocol", "parse_headers"]

MAX_DIGITS = 10  # a netstring length longer than this is never a header block

# parser states
_LENGTH = 0
_HEAD = 1
_BODY = 2
_DONE = 3


def parse_headers(block: bytes) -> dict:
    """Decode an SCGI header block (the netstring's content) into a dict of str
    (latin-1). Raises ``ProtocolError`` when it is malformed."""
    if not block:
        raise ProtocolError("empty SCGI header block: no request variables", 0)
    if block[-1] != 0:
        raise ProtocolError("invalid SCGI header block: it does not end with NUL", 0)
    parts = str(block, "latin-1").split("\0")
    parts.pop()  # the empty string after the last NUL
    if len(parts) % 2:
        raise ProtocolError(f"invalid SCGI header block: header {parts[-1][:40]!r} has no value", 0)
    if parts[0] != "CONTENT_LENGTH":
        raise ProtocolError(
            f"invalid SCGI header block: the first header is {parts[0][:40]!r}, not CONTENT_LENGTH",
            0,
        )
    names = parts[0::2]
    if "" in names:
        raise ProtocolError(f"invalid SCGI header block: empty name (header {names.index('')})", 0)
    return dict(zip(names, parts[1::2], strict=True))


def _content_length(value: str) -> int:
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    raise ProtocolError(f"invalid CONTENT_LENGTH in SCGI request: {value[:40]!r}", 0)


class SCGIProtocol(LengthBody):
    """Sans-IO SCGI protocol for one connection (see the module docstring)."""

    name = "scgi"

    BODY = _BODY
    DONE = _DONE
    __slots__ = ("sink", "buffer_size", "_state", "_buf", "_req", "_left", "_size")

    def __init__(self, sink: Sink, *, buffer_size: int = 4096) -> None:
        self.sink = sink
        # largest header block accepted (uWSGI's buffer-size option)
        self.buffer_size = buffer_size
        self._state = _LENGTH
        self._buf = b""  # LENGTH/HEAD: bytes of an incomplete netstring
        self._req: Request | None = None
        self._left = 0  # BODY: body bytes still expected
        self._size = 0  # HEAD: declared header block size

    # -- input -------------------------------------------------------------

    def _feed_head(self, data, state: int) -> bytes:
        """``data`` (with what was kept of an incomplete head) in a head state."""
        if state == _LENGTH:
            colon = data.find(b":", 0, MAX_DIGITS + 1)
            digits = data[:colon] if colon >= 0 else data[: MAX_DIGITS + 1]
            if not digits.isdigit() or (colon < 0 and len(digits) > MAX_DIGITS):
                raise ProtocolError(
                    "invalid SCGI request: it must start with a netstring length "
                    f"(1 to {MAX_DIGITS} digits and ':'), got {bytes(data[:20])!r}",
                    0,
                )
            size = int(digits)
            if size > self.buffer_size:
                raise ProtocolError(
                    f"invalid SCGI header block size: {size} (max {self.buffer_size})"
                    "; raise the buffer-size option to accept larger request headers",
                    0,
                )
            if colon < 0:
                self._buf = bytes(data)
                return b""
            self._size = size
            self._state = _HEAD
            data = data[colon + 1 :]
        size = self._size
        if len(data) <= size:  # the block and its "," are not all there yet
            self._buf = bytes(data)
            return b""
        self._buf = b""
        if data[size] != 0x2C:  # ","
            raise ProtocolError(
                f"invalid SCGI netstring: {bytes(data[size : size + 1])!r} after the "
                f"{size}-byte header block, expected ','",
                0,
            )
        environ = parse_headers(data[:size])
        check_vars(environ, "SCGI")
        length = _content_length(environ["CONTENT_LENGTH"])
        req = Request(environ, False)
        req.content_length = length
        req.head_only = environ.get("REQUEST_METHOD") == "HEAD"
        req.version = status_version(environ)
        self._req = req
        self.sink.on_head(req)
        self._begin_body(req, length, memoryview(data)[size + 1 :])
        return b""

    def eof(self) -> None:
        state = self._state
        if state == _LENGTH and self._buf:
            raise ProtocolError(
                f"connection closed inside the SCGI netstring length ({bytes(self._buf[:20])!r})",
                0,
            )
        if state == _HEAD:
            raise ProtocolError(
                f"connection closed inside the SCGI header block: {len(self._buf)} of "
                f"{self._size + 1} bytes received",
                0,
            )
        if state == _BODY:
            self._body_cut_short()
        self._state = _DONE

    # -- output ------------------------------------------------------------

    def response_head(
        self, req: Request, status: str, headers: list[tuple[str, str]], length: int | None = None
    ) -> bytes:
        return cached_head("Status:", status, headers, length)
