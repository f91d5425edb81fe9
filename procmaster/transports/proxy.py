"""The PROXY protocol header (HAProxy's v1 text and v2 binary forms), read
before anything else a load balancer sends on a connection.

Theory of operation
-------------------
``parse(buffer)`` is called with everything received so far. It answers
``None`` while the header is incomplete, raises ``ProxyError`` as soon as the
bytes cannot become a valid header, and otherwise returns ``Header``: how many
bytes the header took (the rest belongs to the protocol behind it) and the
client's address and port as text, or ``None`` for a header that carries no
client (v1 ``UNKNOWN``, v2 ``LOCAL``, the unspecified or unix families: the
socket's peer stays the client).

v1 is one line of at most 107 bytes: ``PROXY TCP4|TCP6 SRC DST SPORT DPORT``
then CRLF, addresses checked as IPv4 or IPv6 of the family named, ports as
decimal numbers up to 65535. v2 is a 12-byte signature, a version/command byte
(version 2; LOCAL or PROXY), a family/transport byte, a 16-bit length and that
many bytes: the addresses (their size fixed by the family; a length shorter
than that is an error) and TLVs, which are skipped without being read. A v2
header longer than ``MAX_V2`` is refused (the specification allows 64 KiB;
no load balancer sends more than a few hundred bytes).

Must not know: sockets, who is trusted (``networks``), the worker.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

__all__ = ["MAX_V1", "MAX_V2", "SIGNATURE_V2", "Header", "ProxyError", "parse"]

SIGNATURE_V2 = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
MAX_V1 = 107
MAX_V2 = 16 + 1024
# v2 family/transport byte -> (address block size, address length, IP version)
_V2_FAMILIES = {
    0x11: (12, 4, 4),  # TCP over IPv4
    0x12: (12, 4, 4),  # UDP over IPv4
    0x21: (36, 16, 6),  # TCP over IPv6
    0x22: (36, 16, 6),  # UDP over IPv6
    0x31: (216, 0, 0),  # unix stream
    0x32: (216, 0, 0),  # unix datagram
    0x00: (0, 0, 0),  # unspecified
}


class ProxyError(Exception):
    """A malformed PROXY header; the message says what was wrong."""


class Header(NamedTuple):
    length: int
    client: tuple[str, str] | None


def parse(buf: bytes) -> Header | None:
    """The header at the start of ``buf``, ``None`` while incomplete; see the module."""
    if not buf:
        return None
    if buf[:1] == b"P":
        return _parse_v1(buf)
    if buf[:1] == b"\r":
        return _parse_v2(buf)
    raise ProxyError("the connection did not start with a PROXY protocol header")


def _parse_v1(buf: bytes) -> Header | None:
    head = buf[: len(V1_PREFIX)]
    if not V1_PREFIX.startswith(head):
        raise ProxyError("the connection did not start with a PROXY protocol header")
    end = buf.find(b"\r\n", 0, MAX_V1)
    if end < 0:
        if len(buf) >= MAX_V1:
            raise ProxyError(f"PROXY v1 header longer than {MAX_V1} bytes")
        if b"\n" in buf or b"\0" in buf:
            raise ProxyError("PROXY v1 header with a stray LF or NUL")
        return None
    fields = buf[len(V1_PREFIX) : end].split(b" ")
    family = fields[0]
    if family == b"UNKNOWN":
        return Header(end + 2, None)
    if family not in (b"TCP4", b"TCP6") or len(fields) != 5:
        raise ProxyError("PROXY v1 header: expected TCP4|TCP6 SRC DST SPORT DPORT or UNKNOWN")
    version = 4 if family == b"TCP4" else 6
    src = _v1_address(fields[1], version)
    _v1_address(fields[2], version)
    sport = _v1_port(fields[3])
    _v1_port(fields[4])
    return Header(end + 2, (src, sport))


def _v1_address(raw: bytes, version: int) -> str:
    try:
        ip = ipaddress.ip_address(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProxyError(f"PROXY v1 header: {raw[:64]!r} is not an address") from None
    if ip.version != version:
        raise ProxyError(f"PROXY v1 header: {raw[:64]!r} is not an IPv{version} address")
    return str(ip)


def _v1_port(raw: bytes) -> str:
    if not raw.isdigit() or len(raw) > 5 or int(raw) > 65535 or (raw[:1] == b"0" and raw != b"0"):
        raise ProxyError(f"PROXY v1 header: {raw[:16]!r} is not a port")
    return str(int(raw))


def _parse_v2(buf: bytes) -> Header | None:
    if not SIGNATURE_V2.startswith(buf[:12]):
        raise ProxyError("the connection did not start with a PROXY protocol header")
    if len(buf) < 16:
        return None
    ver_cmd, fam = buf[12], buf[13]
    if ver_cmd >> 4 != 2:
        raise ProxyError(f"PROXY v2 header: version {ver_cmd >> 4} (expected 2)")
    command = ver_cmd & 0x0F
    if command > 1:
        raise ProxyError(f"PROXY v2 header: unknown command {command}")
    if fam not in _V2_FAMILIES:
        raise ProxyError(f"PROXY v2 header: unknown family/transport 0x{fam:02x}")
    length = int.from_bytes(buf[14:16], "big")
    if 16 + length > MAX_V2:
        raise ProxyError(f"PROXY v2 header of {16 + length} bytes (at most {MAX_V2})")
    block, size, version = _V2_FAMILIES[fam]
    if command == 1 and length < block:
        raise ProxyError(
            f"PROXY v2 header: length {length} is shorter than the addresses of family "
            f"0x{fam:02x} ({block} bytes)"
        )
    if len(buf) < 16 + length:
        return None
    if command == 0 or not size:  # LOCAL (a health check), or no IP client
        return Header(16 + length, None)
    src = buf[16 : 16 + size]
    port = buf[16 + 2 * size : 16 + 2 * size + 2]
    ip = ipaddress.IPv4Address(src) if version == 4 else ipaddress.IPv6Address(src)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return Header(16 + length, (str(ip), str(int.from_bytes(port, "big"))))
