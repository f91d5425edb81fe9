"""Syslog and rsyslog loggers: the datagrams as uWSGI's plugins write them."""

from __future__ import annotations

import re
import socket

import pytest

from procmaster.logs.sinks import LoggerError, parse_logger
from procmaster.logs.syslog import RsyslogSink, SyslogSink, parse_rsyslog, parse_syslog, stamp

STAMP = r"[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d"


@pytest.fixture
def unix_receiver(tmp_path):
    path = str(tmp_path / "log.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


@pytest.fixture
def udp_receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock.getsockname()[1], sock
    sock.close()


def test_stamp_is_rfc3164():
    assert re.fullmatch(STAMP, stamp(0)), stamp(0)
    assert re.fullmatch(STAMP, stamp())


def test_syslog_defaults_and_facility(unix_receiver):
    path, sock = unix_receiver
    notes: list[str] = []
    SyslogSink("", notes.append, path).write(b"hello\n")
    assert re.fullmatch(rb"<30>" + STAMP.encode() + rb" uwsgi: hello\n", sock.recv(4096))
    SyslogSink("myapp,local3", notes.append, path).write(b"x\n")
    assert re.fullmatch(rb"<158>" + STAMP.encode() + rb" myapp: x\n", sock.recv(4096))
    assert notes == []


def test_syslog_bad_facility_is_a_config_error():
    with pytest.raises(ValueError, match="local9"):
        parse_syslog("app,local9")
    with pytest.raises(LoggerError, match="unknown syslog facility"):
        parse_logger("syslog:app,nope")


def test_syslog_without_a_daemon_says_so_once_and_never_raises(tmp_path):
    notes: list[str] = []
    sink = SyslogSink("", notes.append, str(tmp_path / "absent"))
    for _ in range(3):
        sink.write(b"lost\n")
    assert len(notes) == 1 and "dropped" in notes[0]


def test_syslog_full_queue_drops_instead_of_blocking(unix_receiver):
    path, sock = unix_receiver
    notes: list[str] = []
    sink = SyslogSink("", notes.append, path)
    for _ in range(5000):  # nobody reads: the queue fills, the writer must not block
        sink.write(b"x" * 200 + b"\n")
    assert len(notes) == 1


def test_rsyslog_udp_as_uwsgi(udp_receiver):
    port, sock = udp_receiver
    RsyslogSink(f"127.0.0.1:{port}", print).write(b"line one\n")
    host = socket.gethostname().encode()
    got = sock.recv(4096)
    assert re.fullmatch(
        rb"<29>" + STAMP.encode() + rb" " + re.escape(host) + rb" uwsgi: line one", got
    )
    RsyslogSink(f"127.0.0.1:{port},web,134", print).write(b"two\n")
    assert re.fullmatch(rb"<134>" + STAMP.encode() + rb" web: two", sock.recv(4096))


def test_rsyslog_packet_size_cut_or_split(udp_receiver):
    port, sock = udp_receiver
    line = bytes(range(65, 91)) * 100  # 2600 bytes
    RsyslogSink(f"127.0.0.1:{port},t", print).write(line + b"\n")
    first = sock.recv(65536)
    assert len(first) <= 1024 and first.endswith(line[: len(first) - first.index(b"t: ") - 3])
    RsyslogSink(f"127.0.0.1:{port},t", print, packet_size=512, split=True).write(line)
    parts = []
    while sum(len(p) for p in parts) < len(line):
        packet = sock.recv(65536)
        assert len(packet) <= 512
        parts.append(packet.split(b" t: ", 1)[1])
    assert b"".join(parts) == line


def test_rsyslog_unix_socket(unix_receiver):
    path, sock = unix_receiver
    RsyslogSink(f"{path},app", print).write(b"via unix\n")
    assert sock.recv(4096).endswith(b" app: via unix")


@pytest.mark.parametrize(
    "arg", ["", ",tag", "host:99999", "host:port", "127.0.0.1:514,t,999", "127.0.0.1:514,t,x"]
)
def test_rsyslog_bad_values(arg):
    with pytest.raises(ValueError):
        parse_rsyslog(arg)
    with pytest.raises(LoggerError):
        parse_logger(f"rsyslog:{arg}")


def test_rsyslog_parse_forms():
    assert parse_rsyslog("10.0.0.1") == (("10.0.0.1", 514), None, 29)
    assert parse_rsyslog("[::1]:5140,a b,13") == (("::1", 5140), "a b", 13)
    assert parse_rsyslog("/run/log.sock") == ("/run/log.sock", None, 29)
