"""The PROXY protocol header parser (transports/proxy.py), with bytes alone:
v1 and v2 as HAProxy sends them, and hostile headers (truncated, oversized,
bad addresses, bad lengths and families)."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from procmaster.transports.proxy import MAX_V2, SIGNATURE_V2, Header, ProxyError, parse


def v2(cmd=1, fam=0x11, src="192.0.2.1", dst="192.0.2.2", sport=5000, dport=80, tlv=b""):
    if fam in (0x11, 0x12):
        addrs = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
        addrs += struct.pack("!HH", sport, dport)
    elif fam in (0x21, 0x22):
        addrs = ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
        addrs += struct.pack("!HH", sport, dport)
    elif fam in (0x31, 0x32):
        addrs = b"/a".ljust(108, b"\0") + b"/b".ljust(108, b"\0")
    else:
        addrs = b""
    body = addrs + tlv
    return SIGNATURE_V2 + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body)) + body


def test_v1_tcp4_and_the_bytes_after_it():
    data = b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n"
    header = parse(data)
    assert header == Header(
        len(b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\n"), ("203.0.113.7", "56324")
    )
    assert data[header.length :] == b"GET / HTTP/1.1\r\n"


def test_v1_tcp6_and_unknown():
    assert parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n").client == ("2001:db8::1", "1")
    assert parse(b"PROXY UNKNOWN\r\n") == Header(15, None)
    assert parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").client is None


@pytest.mark.parametrize("cut", [1, 5, 6, 20, 40])
def test_v1_truncated_waits_for_more(cut):
    assert parse(b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\n"[:cut]) is None


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 256.1.1.1 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",  # family and address disagree
        b"PROXY TCP6 10.0.0.1 10.0.0.2 1 2\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 65536 2\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 -1 2\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 01 2\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n",
        b"PROXY TCP4  10.0.0.1 10.0.0.2 1 2\r\n",
        b"PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n",
        b"PROXY TCP4 010.0.0.1 10.0.0.2 1 2\r\n",
        b"PROXY TCP4 10.0.0.1\xff 10.0.0.2 1 2\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n",
        b"PROXX TCP4 10.0.0.1 10.0.0.2 1 2\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00",  # a TLS ClientHello where the header should be
    ],
)
def test_v1_bad_lines_are_refused(line):
    with pytest.raises(ProxyError):
        parse(line)


def test_v1_oversized_is_refused_without_waiting_for_a_crlf():
    with pytest.raises(ProxyError, match="longer than 107"):
        parse(b"PROXY TCP4 " + b"1" * 200)


def test_v2_ipv4_ipv6_with_tlvs_skipped():
    tlv = b"\x01\x00\x02h2" + b"\x04\x00\x03abc"  # ALPN, NOOP: ignored
    data = v2(tlv=tlv) + b"GET /"
    header = parse(data)
    assert header.client == ("192.0.2.1", "5000")
    assert data[header.length :] == b"GET /"
    assert parse(v2(fam=0x21, src="2001:db8::7", dst="::1", sport=1)).client == ("2001:db8::7", "1")
    mapped = parse(v2(fam=0x21, src="::ffff:198.51.100.9", dst="::1"))
    assert mapped.client == ("198.51.100.9", "5000")


def test_v2_local_unspec_and_unix_keep_the_peer():
    assert parse(v2(cmd=0, fam=0x11)).client is None  # a health check
    assert parse(v2(fam=0x00)).client is None
    assert parse(v2(fam=0x31)).client is None


def test_v2_truncated_waits_for_more():
    data = v2(tlv=b"\x04\x00\x10" + b"x" * 16)
    for cut in range(len(data)):
        assert parse(data[:cut]) is None, cut
    assert parse(data) is not None


@pytest.mark.parametrize(
    "data, why",
    [
        (SIGNATURE_V2 + b"\x11\x11\x00\x0c" + b"\0" * 12, "version 1"),
        (SIGNATURE_V2 + b"\x22\x11\x00\x0c" + b"\0" * 12, "command 2"),
        (SIGNATURE_V2 + b"\x21\x41\x00\x0c" + b"\0" * 12, "family"),
        (SIGNATURE_V2 + b"\x21\x13\x00\x0c" + b"\0" * 12, "family"),
        (SIGNATURE_V2 + b"\x21\x11\x00\x04" + b"\0" * 4, "shorter than the addresses"),
        (SIGNATURE_V2 + b"\x21\x21\x00\x0c" + b"\0" * 12, "shorter than the addresses"),
        (SIGNATURE_V2 + b"\x21\x11\xff\xff", "at most"),
        (b"\r\n\r\n\x00\r\nQUIX\n", "did not start"),
    ],
)
def test_v2_bad_versions_lengths_and_families(data, why):
    with pytest.raises(ProxyError, match=why):
        parse(data)


def test_v2_oversized_is_refused_before_its_body_arrives():
    body_len = MAX_V2 - 16 + 1
    with pytest.raises(ProxyError):
        parse(SIGNATURE_V2 + b"\x21\x11" + struct.pack("!H", body_len))
    # the largest allowed is read
    assert parse(
        v2(tlv=b"\x04" + struct.pack("!H", MAX_V2 - 16 - 12 - 3) + b"\0" * (MAX_V2 - 31))
    ).client
