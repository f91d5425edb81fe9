"""Request bytes as a front end sends them: uwsgi packets, SCGI netstrings, FastCGI records.

Theory of operation
-------------------
The micro-benchmarks feed procmaster's protocol code (micro_protocols.py) and
its worker (micro.py) with the bytes nginx would send, built here from
``(name, value)`` pairs of bytes: the uwsgi packet (modifier 0, little-endian
sizes), the SCGI netstring (``CONTENT_LENGTH`` first, ``SCGI=1``), and FastCGI
records (BEGIN_REQUEST as a responder with the keep-connection flag, PARAMS,
the empty PARAMS, STDIN in records of at most 32 KiB, the empty STDIN).

Must not know
-------------
procmaster: these are the bytes on the wire, written from the protocols'
specifications, not with procmaster's own encoders (which would hide a bug in
both directions).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

Pairs = Sequence[tuple[bytes, bytes]]

FCGI_BEGIN_REQUEST = 1
FCGI_PARAMS = 4
FCGI_STDIN = 5
FCGI_RESPONDER = 1
FCGI_KEEP_CONN = 1
FCGI_STDIN_RECORD = 32768  # bytes of body per STDIN record, as nginx sends them


def uwsgi_packet(pairs: Pairs, body: bytes = b"") -> bytes:
    """A uwsgi request: the 4-byte header, the variables block, then the body."""
    block = b"".join(
        struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs
    )
    return struct.pack("<BHB", 0, len(block), 0) + block + body


def scgi_request(pairs: Pairs, body: bytes = b"") -> bytes:
    """A netstring header as nginx's scgi_pass sends it: CONTENT_LENGTH first."""
    first = [(b"CONTENT_LENGTH", str(len(body)).encode())]
    rest = [(k, v) for k, v in pairs if k != b"CONTENT_LENGTH"]
    block = b"".join(k + b"\0" + v + b"\0" for k, v in [*first, *rest, (b"SCGI", b"1")])
    return b"%d:" % len(block) + block + b"," + body


def fastcgi_record(rtype: int, request_id: int, content: bytes = b"") -> bytes:
    """One FastCGI record, padded to a multiple of 8 bytes."""
    pad = -len(content) % 8
    header = struct.pack(">BBHHBx", 1, rtype, request_id, len(content), pad)
    return header + content + bytes(pad)


def fastcgi_length(n: int) -> bytes:
    """A name or value length: one byte below 128, else four with the top bit set."""
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def fastcgi_request(
    pairs: Pairs, body: bytes = b"", keep: bool = True, request_id: int = 1
) -> bytes:
    """A whole FastCGI responder request: BEGIN_REQUEST, PARAMS, STDIN, each stream ended."""
    params = b"".join(fastcgi_length(len(k)) + fastcgi_length(len(v)) + k + v for k, v in pairs)
    flags = FCGI_KEEP_CONN if keep else 0
    out = fastcgi_record(
        FCGI_BEGIN_REQUEST, request_id, struct.pack(">HB5x", FCGI_RESPONDER, flags)
    )
    out += fastcgi_record(FCGI_PARAMS, request_id, params) + fastcgi_record(FCGI_PARAMS, request_id)
    for i in range(0, len(body), FCGI_STDIN_RECORD):
        out += fastcgi_record(FCGI_STDIN, request_id, body[i : i + FCGI_STDIN_RECORD])
    return out + fastcgi_record(FCGI_STDIN, request_id)
