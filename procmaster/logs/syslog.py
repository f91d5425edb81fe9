"""Syslog loggers: ``logger = syslog[:NAME[,FACILITY]]`` (the local syslog socket)
and ``logger = rsyslog:ADDRESS[,TAG[,PRI]]`` (a remote syslogd over UDP, or a
unix datagram socket), as uWSGI's ``syslog`` and ``rsyslog`` plugins write them.

Theory of operation
-------------------
Both write RFC 3164 datagrams, one per line, the way uWSGI does:

* ``syslog``: what glibc's ``syslog(3)`` sends to ``/dev/log`` after
  ``openlog(NAME, 0, FACILITY)`` and ``syslog(LOG_INFO, ...)``:
  ``<PRI>Mmm dd hh:mm:ss NAME: LINE``, NAME ``uwsgi`` and facility ``daemon`` by
  default (PRI = facility * 8 + 6). The line keeps its newline, as glibc sends it.
* ``rsyslog``: ``<PRI>Mmm dd hh:mm:ss TAG: LINE`` without the newline, TAG
  ``HOSTNAME uwsgi`` by default (the daemon reads the first word as the host) and
  PRI 29 (daemon.notice) unless the third field says otherwise; ``HOST:PORT``
  (port 514 by default) is UDP, an ADDRESS starting with ``/`` a unix datagram
  socket. A packet is at most ``rsyslog-packet-size`` bytes (1024, RFC 3164's
  limit): a longer line is cut, or sent in pieces with
  ``rsyslog-split-messages``.

The time stamp is local time (``ctime`` without the weekday and year, day padded
with a space), as both of uWSGI's plugins write it.

Never blocking: the socket is non-blocking; a datagram the receiver has no room
for is dropped (a full ``/dev/log`` queue must not stall a worker), and the
first loss of an episode is said once on stderr. A local socket that refuses
(syslogd restarted) is reconnected on the next line, like glibc does.

Must not know: requests, workers, the master; which lines it gets (``sinks``).
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable

__all__ = [
    "FACILITIES",
    "DEV_LOG",
    "RsyslogSink",
    "SyslogSink",
    "parse_rsyslog",
    "parse_syslog",
    "stamp",
]

DEV_LOG = "/dev/log"
LOG_INFO = 6
RSYSLOG_PRI = 29  # daemon.notice: uWSGI's default
RSYSLOG_PORT = 514

# syslog(3)'s facility names, as uWSGI's syslog plugin knows them
FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "security": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    **{f"local{n}": 16 + n for n in range(8)},
}

_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def stamp(now: float | None = None) -> str:
    """``Mmm dd hh:mm:ss`` in local time (RFC 3164's TIMESTAMP)."""
    t = time.localtime(now)
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def parse_syslog(arg: str) -> tuple[str, int]:
    """``[NAME[,FACILITY]]`` → (ident, facility number). Raises ``ValueError``
    for an unknown facility (uWSGI silently used ``daemon``; a typo in a
    facility name is better said at start)."""
    name, comma, facility = arg.partition(",")
    if comma:
        code = FACILITIES.get(facility.strip().lower())
        if code is None:
            raise ValueError(
                f"unknown syslog facility {facility.strip()!r} ({', '.join(FACILITIES)})"
            )
    else:
        code = FACILITIES["daemon"]
    return name.strip() or "uwsgi", code


def parse_rsyslog(arg: str) -> tuple[str | tuple[str, int], str | None, int]:
    """``ADDRESS[,TAG[,PRI]]`` → (a unix path or (host, port), TAG or None for
    the default, PRI). Raises ``ValueError``."""
    address, comma, rest = arg.partition(",")
    address = address.strip()
    if not address:
        raise ValueError("expected rsyslog:HOST:PORT[,TAG[,PRI]] or rsyslog:/PATH[,...]")
    tag: str | None = None
    pri = RSYSLOG_PRI
    if comma:
        tag, comma2, pri_text = rest.partition(",")
        if comma2:
            if not pri_text.strip().isdigit() or int(pri_text) > 191:
                raise ValueError(f"the priority {pri_text.strip()!r} must be a number 0-191")
            pri = int(pri_text)
    if address.startswith("/"):
        return address, tag, pri
    host, colon, port = address.rpartition(":")
    if not colon:
        host, port = address, str(RSYSLOG_PORT)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in {address!r}")
    return (host.strip("[]") or "127.0.0.1", int(port)), tag, pri


class _Datagrams:
    """A non-blocking datagram socket to one address; losses said once."""

    def __init__(self, address: str | tuple[str, int], notice: Callable[[str], None]) -> None:
        self.address = address
        self.notice = notice
        self.sock: socket.socket | None = None
        self.lost = False

    def _open(self) -> socket.socket:
        if isinstance(self.address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        else:
            info = socket.getaddrinfo(*self.address, type=socket.SOCK_DGRAM)
            family, _, _, _, addr = info[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            self.address = addr[:2]
        sock.setblocking(False)
        return sock

    def send(self, data: bytes) -> None:
        for attempt in (1, 2):
            try:
                if self.sock is None:
                    self.sock = self._open()
                self.sock.sendto(data, self.address)
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.ENOTCONN) and attempt == 1:
                    self.close()
                    continue  # the daemon restarted: once more on a new socket
                if not self.lost:
                    self.lost = True
                    where = self.address
                    if not isinstance(where, str):
                        where = f"{where[0]}:{where[1]}"
                    self.notice(f"syslog {where}: {exc.strerror or exc}: log lines dropped")
                return
            self.lost = False
            return

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class SyslogSink:
    """``logger = syslog[:NAME[,FACILITY]]``: datagrams to the local syslog socket."""

    def __init__(self, arg: str, notice: Callable[[str], None], path: str = DEV_LOG) -> None:
        ident, facility = parse_syslog(arg)
        self.head = f"<{facility * 8 + LOG_INFO}>"
        self.tail = f" {ident}: "
        self.out = _Datagrams(path, notice)

    def write(self, data: bytes) -> None:
        self.out.send(f"{self.head}{stamp()}{self.tail}".encode() + data)

    def reopen(self) -> None:
        self.out.close()

    def close(self) -> None:
        self.out.close()


class RsyslogSink:
    """``logger = rsyslog:ADDRESS[,TAG[,PRI]]``: datagrams to a syslog daemon."""

    def __init__(
        self,
        arg: str,
        notice: Callable[[str], None],
        packet_size: int = 1024,
        split: bool = False,
    ) -> None:
        address, tag, pri = parse_rsyslog(arg)
        if tag is None:
            tag = f"{socket.gethostname()} uwsgi"
        self.head = f"<{pri}>"
        self.tail = f" {tag}: "
        self.packet_size = max(packet_size, 64)
        self.msg_size = self.packet_size - 30
        self.split = split
        self.out = _Datagrams(address, notice)

    def write(self, data: bytes) -> None:
        if data.endswith(b"\n"):
            data = data[:-1]
        head = f"{self.head}{stamp()}{self.tail}".encode()
        room = min(self.msg_size, self.packet_size - len(head))
        if room <= 0:
            return
        pos = 0
        while True:
            self.out.send(head + data[pos : pos + room])
            pos += room
            if pos >= len(data) or not self.split:
                return

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        self.out.close()
