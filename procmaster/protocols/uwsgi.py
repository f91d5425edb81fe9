"""The uwsgi wire protocol, as nginx's ``uwsgi_pass`` speaks it to a uWSGI ``socket``.

Theory of operation
-------------------
A connection carries exactly one packet and then the request body::

    modifier1 (u8) | datasize (u16 LE) | modifier2 (u8)      4-byte header
    datasize bytes of vars: (u16 LE len, key, u16 LE len, value) ...
    CONTENT_LENGTH bytes of body

The parser is a three-state machine::

    HEAD --(header + vars complete)--> BODY --(CONTENT_LENGTH bytes)--> DONE
      \\--(no body)-------------------------------------------------->/

In HEAD, bytes are kept (at most 4 + buffer_size of them) until the whole vars
block is there; it is then decoded in one pass: the block is turned into one
latin-1 ``str`` (byte offsets are character offsets in latin-1) and each var
costs two ``unpack_from`` and two slices. In BODY the bytes of each ``feed()``
are handed to ``sink.on_body`` as they come, never gathered. In DONE anything
more from the peer is ignored: uWSGI serves one request per connection on a
``socket`` and nginx never keeps uwsgi connections alive, so ``req.keep_alive``
is always False and the worker closes once the response is written.

modifier1 selects what the packet is (as in uWSGI): 0 is a WSGI request; 30 is a
WSGI request whose PATH_INFO still starts with SCRIPT_NAME, which is stripped
(nginx's ``uwsgi_modifier1 30``); 100 is a ping, answered at once by ``feed()``
with the 4-byte pong header, after which the connection closes (``closing``).
Anything else is refused with ``ProtocolError``.

The response is what uWSGI writes on a ``socket``: a raw HTTP/1.x head (status
line with the request's SERVER_PROTOCOL when it is ``HTTP/x.y``, else HTTP/1.0
as uWSGI answers without one; the app's headers; a blank line), the body bytes
as they are, nothing at the end. nginx adds Date, Server and Connection itself,
so neither do we. The head goes through ``head.cached_head``, whose gate refuses
with ``HeadError`` a CR, LF or other control character an app put inside its
status or a header. A packet whose variables hold CR, LF or NUL is refused
(``head.check_vars``): no HTTP field holds them, and they would forge log lines.

Rules for this file: no sockets, no ``os``, no WSGI, no logging. Bad input raises
``ProtocolError(status=0)`` (the worker just closes) and nothing else.
"""

from __future__ import annotations

from struct import Struct

from .base import LengthBody, ProtocolError, Request, Sink
from .head import HEADS, KNOWN_VERSIONS, cached_head, check_vars, status_version

__all__ = ["UwsgiProtocol", "MODIFIER_WSGI", "MODIFIER_WSGI_STRIP", "MODIFIER_PING"]

MODIFIER_WSGI = 0
MODIFIER_WSGI_STRIP = 30  # uWSGI's UWSGI_MODIFIER_MANAGE_PATH_INFO
MODIFIER_PING = 100

_HEADER = Struct("<BHB")
_PONG = _HEADER.pack(MODIFIER_PING, 0, 1)  # uWSGI answers a ping with modifier2 = 1

# parser states
_HEAD = 0
_BODY = 1
_DONE = 2


def parse_vars(data, start: int, end: int) -> dict:
    """Decode the uwsgi vars in ``data[start:end]`` into a dict of str (latin-1).

    ``data`` is any bytes-like object; bytes past ``end`` may be present (the
    body) and are never read as vars. Raises ``ProtocolError`` on a malformed
    block.
    """
    text = str(memoryview(data)[:end], "latin-1")
    environ = {}
    p = start
    try:
        while p < end:
            # k..q is the name, v..r the value; lengths are u16 little-endian
            k = p + 2
            q = k + (data[p] | data[p + 1] << 8)
            v = q + 2
            r = v + (data[q] | data[q + 1] << 8)
            if r > end or q == k:
                break
            environ[text[k:q]] = text[v:r]
            p = r
        else:
            return environ
    except IndexError:
        pass
    if p + 2 <= end and not (data[p] | data[p + 1] << 8):
        message = f"invalid uwsgi packet: empty var name at offset {p - start}"
    else:
        message = (
            f"invalid uwsgi packet: var at offset {p - start} runs past the "
            f"{end - start}-byte vars block"
        )
    raise ProtocolError(message, 0)


def _content_length(value: str) -> int:
    if not value:
        return 0
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    raise ProtocolError(f"invalid CONTENT_LENGTH in uwsgi packet: {value[:40]!r}", 0)


class UwsgiProtocol(LengthBody):
    """Sans-IO uwsgi protocol for one connection (see the module docstring)."""

    name = "uwsgi"
    sendfile = True  # the body follows the head as it is
    upgrades = True  # a 101 head hands the bytes to a WebSocket

    BODY = _BODY
    DONE = _DONE
    __slots__ = ("sink", "buffer_size", "_state", "_buf", "_req", "_left", "closing")

    def __init__(self, sink: Sink, *, buffer_size: int = 4096) -> None:
        self.sink = sink
        # largest vars block accepted (uWSGI's buffer-size option)
        self.buffer_size = buffer_size
        self._state = _HEAD
        self._buf = b""  # HEAD: bytes of an incomplete packet
        self._req: Request | None = None
        self._left = 0  # BODY: body bytes still expected
        self.closing = False  # a ping was answered: nothing more on this connection

    # -- input -------------------------------------------------------------

    def _feed_head(self, data, state: int) -> bytes:
        """``data`` (with what was kept of an incomplete head) in a head state."""
        size = len(data)
        if size < 4:
            self._buf = bytes(data)
            return b""
        modifier1, datasize, _modifier2 = _HEADER.unpack_from(data)
        if datasize > self.buffer_size:
            raise ProtocolError(
                f"invalid request block size: {datasize} (max {self.buffer_size})"
                " ...skip; raise the buffer-size option to accept larger request headers",
                0,
            )
        end = 4 + datasize
        if size < end:
            self._buf = bytes(data)
            return b""
        self._buf = b""

        if modifier1 == MODIFIER_PING:
            self._state = _DONE
            self.closing = True  # uWSGI closes right after the pong
            return _PONG
        if modifier1 != MODIFIER_WSGI and modifier1 != MODIFIER_WSGI_STRIP:
            raise ProtocolError(
                f"unavailable modifier requested: {modifier1} (served here: 0 = WSGI, "
                f"30 = WSGI with SCRIPT_NAME stripped from PATH_INFO, 100 = ping)",
                0,
            )
        if not datasize:
            raise ProtocolError("empty uwsgi packet: no request variables", 0)

        environ = parse_vars(data, 4, end)
        check_vars(environ, "uwsgi")
        if modifier1 == MODIFIER_WSGI_STRIP:
            script_name = environ.get("SCRIPT_NAME")
            path_info = environ.get("PATH_INFO")
            if script_name and path_info and path_info.startswith(script_name):
                environ["PATH_INFO"] = path_info[len(script_name) :]

        length = _content_length(environ.get("CONTENT_LENGTH"))
        req = Request(environ, False)
        req.content_length = length
        req.head_only = environ.get("REQUEST_METHOD") == "HEAD"
        # the status line's version: absent, empty or not HTTP/x.y gives HTTP/1.0
        version = environ.get("SERVER_PROTOCOL")
        req.version = version if version in KNOWN_VERSIONS else status_version(environ)
        self._req = req
        self.sink.on_head(req)
        self._begin_body(req, length, memoryview(data)[end:])
        return b""

    def eof(self) -> None:
        state = self._state
        if state == _HEAD and self._buf:
            got = len(self._buf)
            if got < 4:
                raise ProtocolError(
                    f"connection closed inside the uwsgi packet header ({got} of 4 bytes)", 0
                )
            datasize = self._buf[1] | self._buf[2] << 8
            raise ProtocolError(
                f"connection closed inside the uwsgi packet: {got - 4} of {datasize} "
                "bytes of vars received",
                0,
            )
        if state == _BODY:
            self._body_cut_short()
        self._state = _DONE

    # -- output ------------------------------------------------------------

    def response_head(
        self, req: Request, status: str, headers: list[tuple[str, str]], length: int | None = None
    ) -> bytes:
        try:  # the common case without a call: the same answer as before
            return HEADS[(req.version, status, length, *headers)]
        except (KeyError, TypeError):
            return cached_head(req.version, status, headers, length)
