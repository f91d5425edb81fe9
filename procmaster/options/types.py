"""Value types of the option table: one converter per type name, and the shape
of a socket address.

Theory of operation
-------------------
Each converter takes the (already placeholder-expanded) string and returns the
Python value, or raises ``ValueError("expected ...")`` naming what was wanted; the
config reader adds file:line, option and the value it got. ``convert`` applies an
option's converter and its ``min``. So every value leaves ``Config`` with its
type: ``int`` for int/size/megabytes, ``int`` or ``float`` for seconds (a whole
number stays an ``int``; both are used as numbers), ``bool``, ``str``.

``parse_address`` is the one address parser of procmaster: option values are
checked with it, and ``procmaster.sockets.sockaddr`` turns its result into what
``socket.bind`` takes.

Must not know: the table's rows, files, sockets or processes: ``parse_address``
checks the *shape* of an address and never resolves or binds it.
"""

from __future__ import annotations

import re

from ..logs.encoders import Encoder, EncoderError
from ..logs.sinks import LoggerError, parse_logger, parse_route
from .model import Option

TYPE_DOCS: dict[str, str] = {
    "bool": "true/false, 1/0, yes/no, on/off (any case); empty or bare means true",
    "int": "a whole number",
    "size": "bytes; a k, m or g suffix multiplies by 1024, 1024², 1024³ "
    "(a procmaster extension: uWSGI 2.0 reads '64k' as 64)",
    "megabytes": "megabytes, a whole or decimal number; stored as bytes",
    "seconds": "seconds, a whole or decimal number",
    "str": "a non-empty string",
    "text": "any string, may be empty",
    "spaced-text": "any string; a space is appended (uWSGI's *-spaced options)",
    "path": "a filesystem path (relative paths are used as given, not rebased)",
    "address": "host:port, :port, [ipv6]:port, a unix socket path or @abstract",
    "mode": "three octal digits such as 660; bare (or 1) means 666",
    "keyval": "NAME=VALUE",
    "mapping": "KEY=VALUE, e.g. /mountpoint=target",
    "ini": "FILE[:section] (an INI file, optionally naming its section)",
    "bool-or-str": "true/false, or a strftime format",
    "logger": "[NAME ]PLUGIN[:ARGS]: file:PATH, file:logfile=PATH[,maxsize=BYTES]"
    "[,backupname=PATH], fd:N, stdio",
    "log-encoder": "NAME[:LOGGER] [ARGS]: prefix, suffix, nl, format, json, gzip, compress",
    "log-route": "NAME REGEX (a logger's name, a regular expression)",
    "stats-push": "statsd:HOST:PORT[,PREFIX]",
    "host-port": "HOST:PORT (a name or address, and a port number)",
}

# the types whose values uWSGI 2.0 reads with atoi/strtoul: a word (true, on) is 0 there
NUMERIC_TYPES = frozenset(("int", "size", "megabytes", "seconds"))
BOOL_WORDS = frozenset(("true", "false", "yes", "no", "on", "off"))

_TRUE = frozenset(("true", "1", "yes", "on"))
_FALSE = frozenset(("false", "0", "no", "off"))
_INT_RE = re.compile(r"[0-9]+\Z")
_NUM_RE = re.compile(r"[0-9]+(\.[0-9]+)?\Z|\.[0-9]+\Z")
_SIZE_RE = re.compile(r"([0-9]+)([kKmMgG]?)\Z")
_MODE_RE = re.compile(r"0?[0-7]{3}\Z")
_PORT_HOST_RE = re.compile(r"[A-Za-z0-9_.*-]*\Z")
_SIZE_MULT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_bool(value: str) -> bool:
    """uWSGI booleans; anything else is an error (uWSGI would read it as true)."""
    v = value.strip().lower()
    if v == "" or v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError("expected a boolean (true/false, 1/0, yes/no, on/off)")


def _int(value: str) -> int:
    if not _INT_RE.match(value):
        raise ValueError("expected an integer")
    return int(value)


def _size(value: str) -> int:
    m = _SIZE_RE.match(value)
    if not m:
        raise ValueError("expected a size in bytes (e.g. 4096, 64k, 1m)")
    return int(m.group(1)) * _SIZE_MULT[m.group(2).lower()]


def _megabytes(value: str) -> int:
    if not _NUM_RE.match(value):
        raise ValueError("expected a number of megabytes (e.g. 512 or 1.5)")
    return int(float(value) * 1024 * 1024)


def _seconds(value: str) -> int | float:
    if not _NUM_RE.match(value):
        raise ValueError("expected a number of seconds (e.g. 30 or 0.5)")
    return int(value) if _INT_RE.match(value) else float(value)


def _str(value: str) -> str:
    if not value:
        raise ValueError("expected a value")
    return value


def _text(value: str) -> str:
    return value


def _spaced(value: str) -> str:
    return value + " "


def _path(value: str) -> str:
    if not value:
        raise ValueError("expected a path")
    if "\0" in value:
        raise ValueError("expected a path (without NUL bytes)")
    return value


def _mode(value: str) -> int:
    if value in ("", "1"):
        return 0o666
    if not _MODE_RE.match(value):
        raise ValueError("expected an octal mode like 660 (or nothing for 666)")
    return int(value, 8)


def _keyval(value: str) -> str:
    name, sep, _ = value.partition("=")
    if not sep or not name.strip():
        raise ValueError("expected NAME=VALUE")
    return value


def _mapping(value: str) -> str:
    key, sep, target = value.partition("=")
    if not sep or not target:
        raise ValueError("expected KEY=VALUE (e.g. /mountpoint=target)")
    return value


def _ini(value: str) -> str:
    if not value:
        raise ValueError("expected an INI file (FILE[:section])")
    return value


def _bool_or_str(value: str) -> bool | str:
    v = value.strip().lower()
    if v == "" or v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return value


def _logger(value: str) -> str:
    """The shape of a logger; a plugin procmaster lacks is warned about at start."""
    try:
        parse_logger(value)
    except LoggerError as exc:
        raise ValueError(str(exc)) from None
    return value


def _log_encoder(value: str) -> str:
    try:
        Encoder(value)
    except EncoderError as exc:
        raise ValueError(str(exc)) from None
    return value


def _log_route(value: str) -> str:
    try:
        parse_route(value)
    except LoggerError as exc:
        raise ValueError(str(exc)) from None
    return value


class Address:
    """The shape of a socket address. ``kind`` is ``tcp``, ``unix`` or ``abstract``.

    tcp: ``host`` ('' means every interface, as uWSGI's ``:port``) and ``port``;
    ``ipv6`` is true for the bracketed form. unix: ``path``. abstract: ``path`` is
    the name without the leading ``@``.
    """

    __slots__ = ("kind", "host", "port", "path", "ipv6", "text")

    def __init__(
        self,
        kind: str,
        text: str,
        host: str = "",
        port: int = 0,
        path: str = "",
        ipv6: bool = False,
    ) -> None:
        self.kind = kind
        self.text = text
        self.host = host
        self.port = port
        self.path = path
        self.ipv6 = ipv6

    def __repr__(self) -> str:
        return f"Address({self.kind!r}, {self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Address) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


UNIX_PATH_MAX = 107  # sun_path is 108 bytes with the terminating NUL


def parse_address(text: str) -> Address:
    """Check the shape of a uWSGI socket address and split it. Never binds or resolves.

    The rules are uWSGI 2.0's (``uwsgi_bind_sockets`` and ``bind_to_unix`` in
    core/socket.c): a value containing ``:`` is TCP, the last ``:`` separating the
    port, and ``[...]:port`` is IPv6; a value without ``:`` is a unix socket path,
    or, starting with ``@``, a Linux abstract socket name. So a unix path cannot
    contain ``:`` (uWSGI would try it as host:port): that is an error here, said
    as such. One leniency: ``@name`` is abstract even when the name contains
    ``:`` (uWSGI 2.0 tries it as a host and fails to bind).
    """
    if not text:
        raise ValueError(
            "expected an address (host:port, :port, [ipv6]:port, a unix path or @name)"
        )
    if text[0] == "@":
        name = text[1:]
        if not name:
            raise ValueError("expected an abstract socket name after '@'")
        if len(name.encode()) > UNIX_PATH_MAX - 1:
            raise ValueError(
                f"expected an abstract socket name of at most {UNIX_PATH_MAX - 1} bytes"
            )
        return Address("abstract", text, path=name)
    if ":" not in text:
        if len(text.encode()) > UNIX_PATH_MAX:
            raise ValueError(f"expected a unix socket path of at most {UNIX_PATH_MAX} bytes")
        return Address("unix", text, path=text)
    if text[0] == "[":
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise ValueError("expected [ipv6]:port")
        host = text[1:end]
        port_text = text[end + 2 :]
        import ipaddress  # lazily: only the rare bracketed form needs it (config loads at every start)

        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError("expected [ipv6]:port with a valid IPv6 address") from None
        return Address("tcp", text, host=host, port=_port(port_text), ipv6=True)
    host, _, port_text = text.rpartition(":")
    host, port_text = host.strip(), port_text.strip()  # uWSGI reads "http = : 5000" too
    if "/" in host:
        raise ValueError(
            "expected host:port; a unix socket path cannot contain ':' (as in uWSGI, "
            "an address with ':' is host:port)"
        )
    if ":" in host:
        raise ValueError("expected [ipv6]:port (an IPv6 address needs brackets)")
    if not _PORT_HOST_RE.match(host):
        raise ValueError("expected host:port")
    return Address("tcp", text, host=host, port=_port(port_text))


def _port(text: str) -> int:
    if not _INT_RE.match(text) or int(text) > 65535:
        raise ValueError("expected a port number from 0 to 65535")
    return int(text)


def _address(value: str) -> str:
    parse_address(value)
    return value


def _host_port(value: str) -> str:
    host, colon, port = value.strip().rpartition(":")
    if not colon or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT")
    return value.strip()


def _stats_push(value: str) -> str:
    """uWSGI's ``stats-push = PUSHER:ARGS``; procmaster has the statsd pusher."""
    kind, colon, arg = value.strip().partition(":")
    host, sep, port = arg.partition(",")[0].strip().rpartition(":")
    if kind != "statsd" or not sep or not host.strip("[]") or not port.isdigit():
        raise ValueError("expected statsd:HOST:PORT[,PREFIX]")
    if not 0 < int(port) < 65536:
        raise ValueError(f"port {port} out of range")
    return value.strip()


TYPES = {
    "bool": parse_bool,
    "int": _int,
    "size": _size,
    "megabytes": _megabytes,
    "seconds": _seconds,
    "str": _str,
    "text": _text,
    "spaced-text": _spaced,
    "path": _path,
    "address": _address,
    "mode": _mode,
    "keyval": _keyval,
    "mapping": _mapping,
    "ini": _ini,
    "bool-or-str": _bool_or_str,
    "logger": _logger,
    "log-encoder": _log_encoder,
    "log-route": _log_route,
    "stats-push": _stats_push,
    "host-port": _host_port,
}


def convert(opt: Option, value: str) -> object:
    """Turn one string value into the option's Python value, or raise ValueError."""
    result = TYPES[opt.type](value)
    if opt.min is not None and isinstance(result, (int, float)) and not isinstance(result, bool):
        if result < opt.min:
            raise ValueError(f"expected a number of at least {opt.min:g}")
    return result
