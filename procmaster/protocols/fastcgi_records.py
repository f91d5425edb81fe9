"""FastCGI 1.0 records: the wire format under ``fastcgi.py``'s request machine.

Theory of operation
-------------------
Everything on the wire is a record: an 8-byte header (version 1, type, request
id u16 BE, content length u16 BE, padding length u8, reserved) then the content
and the padding. This module owns that layout, the record types, roles, flags
and protocol statuses of the spec, and the encoding of every record we produce:

- STDOUT: a chunk split into records of at most ``MAX_STDOUT`` = 65528 bytes
  (the largest multiple of 8 that fits a record, so only the last record of a
  chunk needs padding), each padded to a multiple of 8, built with one
  ``b"".join`` over memoryview slices: the body is copied once;
- the end of a response: an empty STDOUT record plus END_REQUEST(appStatus 0,
  FCGI_REQUEST_COMPLETE), packed by one ``Struct``;
- END_REQUEST with a refusal status (FCGI_CANT_MPX_CONN, FCGI_UNKNOWN_ROLE);
- UNKNOWN_TYPE and GET_VALUES_RESULT for management records;
- name-value pairs (PARAMS, GET_VALUES): 1-byte lengths below 128, else 4
  bytes with the top bit set; ``parse_pairs`` decodes them in one pass and
  measures them as uWSGI's buffer-size does (in uwsgi-encoded bytes).

Each encoder is one function call on the protocol's hot path: the request
machine calls ``stdout_records`` per response chunk and ``end_of_response`` per
response, and unpacks headers with ``HEADER`` itself.

Must not know
-------------
Requests, phases, which record is allowed when, sinks: that is ``fastcgi.py``.
No sockets, no ``os``, no WSGI, no logging. Bad input raises
``ProtocolError(status=0)`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from struct import Struct
from struct import error as _StructError

from .base import ProtocolError

__all__ = [
    "HEADER",
    "BEGIN_BODY",
    "MAX_STDOUT",
    "end_of_response",
    "encode_pairs",
    "end_request",
    "parse_pairs",
    "record",
    "stdout_records",
    "too_large",
    "unknown_type",
    "values_result",
]

VERSION = 1

# record types
BEGIN_REQUEST = 1
ABORT_REQUEST = 2
END_REQUEST = 3
PARAMS = 4
STDIN = 5
STDOUT = 6
STDERR = 7
DATA = 8
GET_VALUES = 9
GET_VALUES_RESULT = 10
UNKNOWN_TYPE = 11

# roles, flags, protocol statuses
RESPONDER = 1
KEEP_CONN = 1
REQUEST_COMPLETE = 0
CANT_MPX_CONN = 1
OVERLOADED = 2
UNKNOWN_ROLE = 3

TYPE_NAMES = {
    BEGIN_REQUEST: "BEGIN_REQUEST",
    ABORT_REQUEST: "ABORT_REQUEST",
    END_REQUEST: "END_REQUEST",
    PARAMS: "PARAMS",
    STDIN: "STDIN",
    STDOUT: "STDOUT",
    STDERR: "STDERR",
    DATA: "DATA",
    GET_VALUES: "GET_VALUES",
    GET_VALUES_RESULT: "GET_VALUES_RESULT",
    UNKNOWN_TYPE: "UNKNOWN_TYPE",
}

HEADER = Struct(">BBHHBx")  # version, type, request id, content length, padding
BEGIN_BODY = Struct(">HB5x")  # role, flags
_END_RECORD = Struct(">BBHHBxIB3x")  # END_REQUEST header + (appStatus, protocolStatus)
_CLOSE = Struct(">BBHHBx" + "BBHHBxIB3x")  # empty STDOUT + END_REQUEST
_UNKNOWN_RECORD = Struct(">BBHHBxB7x")
_U32 = Struct(">I")

_PADDING = tuple(b"\0" * i for i in range(8))
MAX_STDOUT = 0xFFF8  # content per STDOUT record: <= 65535 and a multiple of 8


# -- records -----------------------------------------------------------------


def record(rtype: int, rid: int, content: bytes = b"") -> bytes:
    """One record (content of at most 65535 bytes), padded to a multiple of 8."""
    n = len(content)
    pad = -n & 7
    return b"".join((HEADER.pack(VERSION, rtype, rid, n, pad), content, _PADDING[pad]))


def stdout_records(rid: int, data: bytes | bytearray | memoryview) -> bytes:
    """``data`` as STDOUT records: one copy of the body, whatever its size."""
    n = len(data)
    if n <= MAX_STDOUT:
        pad = -n & 7
        return b"".join((HEADER.pack(VERSION, STDOUT, rid, n, pad), data, _PADDING[pad]))
    view = memoryview(data)
    full = HEADER.pack(VERSION, STDOUT, rid, MAX_STDOUT, 0)
    parts = []
    off = 0
    while n - off > MAX_STDOUT:
        parts += (full, view[off : off + MAX_STDOUT])
        off += MAX_STDOUT
    rest = n - off
    pad = -rest & 7
    parts += (HEADER.pack(VERSION, STDOUT, rid, rest, pad), view[off:], _PADDING[pad])
    return b"".join(parts)


def end_request(rid: int, protocol_status: int) -> bytes:
    """END_REQUEST(appStatus 0, ``protocol_status``) for request ``rid``."""
    return _END_RECORD.pack(VERSION, END_REQUEST, rid, 8, 0, 0, protocol_status)


def end_of_response(rid: int) -> bytes:
    """Empty STDOUT (end of stream) + END_REQUEST(0, FCGI_REQUEST_COMPLETE)."""
    return _CLOSE.pack(VERSION, STDOUT, rid, 0, 0, VERSION, END_REQUEST, rid, 8, 0, 0, 0)


def unknown_type(rtype: int) -> bytes:
    """The answer to a management record of a type we do not know."""
    return _UNKNOWN_RECORD.pack(VERSION, UNKNOWN_TYPE, 0, 8, 0, rtype)


def values_result(asked: Iterable[str], known: dict[str, str]) -> bytes:
    """GET_VALUES_RESULT with the ``known`` values of the names ``asked``."""
    answer = encode_pairs(
        (name.encode("latin-1"), known[name].encode("latin-1")) for name in asked if name in known
    )
    return record(GET_VALUES_RESULT, 0, answer)


# -- name-value pairs --------------------------------------------------------


def _length(n: int) -> bytes:
    return bytes((n,)) if n < 128 else _U32.pack(n | 0x80000000)


def encode_pairs(pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Name-value pairs (bytes, bytes) in FastCGI's 1-or-4-byte-length form."""
    return b"".join(_length(len(k)) + _length(len(v)) + k + v for k, v in pairs)


def parse_pairs(data: bytes, limit: int | None = None) -> dict[str, str]:
    """Decode FastCGI name-value pairs into a dict of str (latin-1).

    ``limit`` bounds the size the pairs would take in a uwsgi packet
    (sum of 4 + len(name) + len(value)), the measure of uWSGI's buffer-size.
    Raises ``ProtocolError`` on malformed input.
    """
    text = str(data, "latin-1")
    n = len(data)
    result = {}
    unpack = _U32.unpack_from
    i = 0
    longs = 0  # 4-byte lengths seen
    try:
        while i < n:
            k = data[i]
            if k < 128:
                i += 1
            else:
                k = unpack(data, i)[0] & 0x7FFFFFFF
                i += 4
                longs += 1
            v = data[i]
            if v < 128:
                i += 1
            else:
                v = unpack(data, i)[0] & 0x7FFFFFFF
                i += 4
                longs += 1
            j = i + k
            end = j + v
            if end > n or not k:
                if k:
                    raise ProtocolError(
                        f"invalid FastCGI params: a pair of {k}+{v} bytes runs past "
                        f"the {n}-byte PARAMS stream",
                        0,
                    )
                raise ProtocolError("invalid FastCGI params: empty name", 0)
            result[text[i:j]] = text[j:end]
            i = end
    except (IndexError, _StructError):
        raise ProtocolError(
            f"invalid FastCGI params: pair lengths cut short at byte {i} of {n}", 0
        ) from None
    if limit is not None and 2 * n > limit:
        # in uwsgi form each pair has 4 bytes of lengths instead of 2 or 5 or 8
        size = n + 2 * len(result) - 3 * longs
        if size > limit:
            raise ProtocolError(too_large(size, limit), 0)
    return result


def too_large(size: int, limit: int) -> str:
    """The message for request params over the buffer size."""
    return (
        f"FastCGI request params too large: {size} bytes (max {limit}); "
        "raise the buffer-size option to accept larger request headers"
    )
