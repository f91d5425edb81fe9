"""The option table: every procmaster option, declared once, as data.

Theory of operation
-------------------
Each ``Option`` says what one uWSGI-style option is called (name, long aliases,
one-letter command-line short), what its value looks like (``type``, checked by
the converter of the same name in ``TYPES``), what it is when not given
(``default``) or given without a value (``bare``), whether it repeats
(``multi``: values append to a list) and how much of uWSGI 2.0's meaning procmaster
gives it (``status``):

``full``         behaves as in uWSGI 2.0.
``partial``      works, with the difference said in ``note``.
``accepted``     read and validated, no effect; ``note`` says why nothing is lost.
``unsupported``  not honoured; ``note`` says what to do instead. Using it gives a
                 warning ("ignored"), or an error when ``blocking`` is true because
                 ignoring it would change what the deployment does (sockets,
                 privileges, daemonizing, config logic, APIs the app calls).

The config reader (``procmaster.config``), ``--help`` and ``docs/options.md``
(``procmaster.helpdoc``) are all driven from this table: an option's meaning lives
here and nowhere else. Whoever implements a feature flips its ``status`` in the
same commit.

Rules for this module: pure data and pure functions on strings. It must not know
about files, sockets or processes: ``parse_address`` checks the *shape* of an
address and never resolves or binds it.
"""

from __future__ import annotations

import re

FULL = "full"
PARTIAL = "partial"
ACCEPTED = "accepted"
UNSUPPORTED = "unsupported"
STATUSES = (FULL, PARTIAL, ACCEPTED, UNSUPPORTED)

NOT_YET = "not implemented yet"

_MISSING = object()


class Option:
    """One option. See the module docstring for what each field means."""

    __slots__ = (
        "name",
        "type",
        "default",
        "aliases",
        "short",
        "multi",
        "help",
        "status",
        "note",
        "group",
        "bare",
        "blocking",
        "prefixes",
        "store",
        "cli_only",
        "min",
        "request_vars",
        "protocol",
        "watch",
    )

    def __init__(
        self,
        name: str,
        type: str,
        help: str,
        *,
        default: object = None,
        aliases: tuple[str, ...] = (),
        short: str | None = None,
        multi: bool = False,
        status: str = FULL,
        note: str = "",
        group: str = "",
        bare: object = _MISSING,
        blocking: bool = False,
        prefixes: tuple[str, ...] = (),
        store: str | None = None,
        cli_only: bool = False,
        min: float | None = None,
        request_vars: bool = False,
        protocol: str | None = None,
        watch: str | None = None,
    ) -> None:
        self.name = name
        self.type = type
        self.help = help
        self.default = [] if multi else default
        self.aliases = aliases
        self.short = short
        self.multi = multi
        self.status = status
        self.note = note
        self.group = group
        self.bare = True if (bare is _MISSING and type == "bool") else bare
        self.blocking = blocking
        self.prefixes = prefixes
        # another option whose value this one sets (uWSGI: same variable)
        self.store = store
        self.cli_only = cli_only
        self.min = min
        # the value holds %(var) request-log variables: unresolved %(...) is expected
        self.request_vars = request_vars
        # a socket option: the wire protocol spoken on the sockets it declares
        self.protocol = protocol
        # a watched-path option: what a change of the path asks the master for
        # (a reload kind of procmaster.master.reload, or ``logrotate``/``logreopen``)
        self.watch = watch

    @property
    def takes_value(self) -> bool:
        """False for flags (bool): on the command line they take no separate value."""
        return self.type != "bool"

    @property
    def value_optional(self) -> bool:
        """True when the option may be given with no value at all."""
        return self.bare is not _MISSING

    @property
    def attr(self) -> str | None:
        """The ``Config`` attribute name, or None for option families (``hook-*``)."""
        if "*" in self.name:
            return None
        return self.name.replace("-", "_")

    def __repr__(self) -> str:
        return f"Option({self.name!r}, {self.type!r}, status={self.status!r})"


# ---------------------------------------------------------------------------
# Value types. Each converter takes the (already placeholder-expanded) string and
# returns the Python value, or raises ValueError("expected ...") naming what was
# wanted; the config reader adds file:line, option and the value it got.

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
}

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

    As in uWSGI, a value with a ``:`` is TCP (the last ``:`` separates the port),
    one starting with ``@`` is a Linux abstract socket, anything else a unix path.
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
        import ipaddress  # only for the rare bracketed form

        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError("expected [ipv6]:port with a valid IPv6 address") from None
        return Address("tcp", text, host=host, port=_port(port_text), ipv6=True)
    host, _, port_text = text.rpartition(":")
    host, port_text = host.strip(), port_text.strip()  # uWSGI reads "http = : 5000" too
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
}


def convert(opt: Option, value: str) -> object:
    """Turn one string value into the option's Python value, or raise ValueError."""
    result = TYPES[opt.type](value)
    if opt.min is not None and isinstance(result, (int, float)) and not isinstance(result, bool):
        if result < opt.min:
            raise ValueError(f"expected a number of at least {opt.min:g}")
    return result


# ---------------------------------------------------------------------------
# The table. Groups are the sections of --help and docs/options.md, in order.

GROUPS = (
    "Configuration",
    "Sockets",
    "Processes",
    "Application",
    "Requests",
    "Logging",
    "Process names",
    "Reloading and limits",
    "Static files",
    "Master, control and stats",
    "Daemons and background work",
    "Privileges and daemonizing",
    "Other uWSGI subsystems",
    "Command line",
)

_O = Option
# fmt: off
_CONF, _SOCK, _PROC, _APP, _REQ, _LOG, _NAME, _RELOAD, _STATIC, _MASTER, _BG, _PRIV, _OTHER, _CLI = GROUPS

_PROCNAME_NOTE = ("sets the kernel's process name (ps -o comm, top, pstree: 15 characters), "
                  "not the whole command line")
_CONVERT_TO_INI = "only INI configuration is read; convert this file to INI"
_NO_LOGIC = "config logic (if-*/for/endif) is not supported; write one INI per case and pick it with --ini FILE:section"

OPTIONS: tuple[Option, ...] = (
    # -- Configuration ---------------------------------------------------------
    _O("ini", "ini", "load config from an INI file: FILE[:section] ([uwsgi] by default; "
       "':section' alone reads another section of the same file). Inside an INI, relative "
       "to that file", multi=True, group=_CONF),
    _O("inherit", "ini", "read another INI file as a base for this one", multi=True,
       group=_CONF, status=PARTIAL,
       note="read at the line where it appears, like ini (uWSGI 2.0 applies it after the "
       "rest of the config); INI only"),
    _O("include", "ini", "include another config file at this point", multi=True, group=_CONF,
       status=PARTIAL, note="INI files only"),
    _O("set", "keyval", "set an option or a placeholder: set = NAME=VALUE", short="S",
       multi=True, group=_CONF),
    _O("set-placeholder", "keyval", "set a placeholder (a custom key for %(NAME)), also "
       "allowed in strict mode: set-placeholder = NAME=VALUE", aliases=("set-ph",),
       multi=True, group=_CONF),
    _O("strict", "bool", "make unknown and ignored options fatal (custom keys must be "
       "declared with set-placeholder)", default=False, group=_CONF),
    _O("xml", "ini", "load config from an XML file", aliases=("xmlconfig",), short="x",
       group=_CONF, status=UNSUPPORTED, blocking=True, note=_CONVERT_TO_INI),
    _O("yaml", "ini", "load config from a YAML file", aliases=("yml",), short="y",
       group=_CONF, status=UNSUPPORTED, blocking=True, note=_CONVERT_TO_INI),
    _O("json", "ini", "load config from a JSON file", aliases=("js",), short="j",
       group=_CONF, status=UNSUPPORTED, blocking=True, note=_CONVERT_TO_INI),
    _O("config", "ini", "load config using the pluggable system", group=_CONF,
       status=UNSUPPORTED, blocking=True, note=_CONVERT_TO_INI),
    _O("declare-option", "str", "declare a new custom option", aliases=("declare-option2",),
       group=_CONF, status=UNSUPPORTED, blocking=True,
       note="write the options it stands for; use placeholders for shared values"),
    _O("if-*", "text", "config logic (if-env, if-exists, if-file, if-dir, if-opt, for, "
       "for-glob, endif, endfor and the rest)", prefixes=("if-", "for-"),
       aliases=("ifenv", "ifexists", "ifdir", "ifplugin", "for", "endif", "end-if",
                "endfor", "end-for"),
       bare="", group=_CONF, status=UNSUPPORTED, blocking=True, note=_NO_LOGIC),
    # -- Sockets ---------------------------------------------------------------
    _O("socket", "address", "bind to the specified UNIX/TCP socket using the default "
       "protocol (uwsgi)", short="s", multi=True, group=_SOCK, protocol="uwsgi"),
    _O("uwsgi-socket", "address", "bind to the specified UNIX/TCP socket using the uwsgi "
       "protocol", multi=True, group=_SOCK, protocol="uwsgi"),
    _O("http-socket", "address", "bind to the specified UNIX/TCP socket using HTTP "
       "(served by the workers directly)", multi=True, group=_SOCK, protocol="http"),
    _O("fastcgi-socket", "address", "bind to the specified UNIX/TCP socket using FastCGI",
       multi=True, group=_SOCK, protocol="fastcgi"),
    _O("scgi-socket", "address", "bind to the specified UNIX/TCP socket using SCGI",
       multi=True, group=_SOCK, protocol="scgi"),
    _O("http", "address", "add an HTTP router/server on the specified address", multi=True,
       group=_SOCK, status=PARTIAL,
       note="served by procmaster's workers directly, as http-socket (uWSGI starts a separate "
       "HTTP router process in front of the workers); said once at start-up", protocol="http"),
    _O("https", "str", "add an HTTPS router/server", multi=True, group=_SOCK,
       aliases=("https-socket", "ssl-socket", "suwsgi-socket", "https2"),
       status=UNSUPPORTED, blocking=True,
       note="TLS is not implemented; terminate TLS in a proxy (nginx) in front"),
    _O("http11-socket", "address", "bind an HTTP/1.1 keep-alive socket", multi=True,
       group=_SOCK, status=UNSUPPORTED, blocking=True,
       note=NOT_YET + "; use http-socket with http-keepalive"),
    _O("raw-socket", "address", "bind a socket using the RAW protocol", multi=True,
       aliases=("puwsgi-socket", "fastcgi-nph-socket", "scgi-nph-socket", "shared-socket",
                "undeferred-shared-socket"),
       group=_SOCK, status=UNSUPPORTED, blocking=True,
       note=NOT_YET + "; use uwsgi-socket, http-socket or fastcgi-socket"),
    _O("protocol", "str", "force the protocol of sockets declared with 'socket'",
       aliases=("socket-protocol",), group=_SOCK, status=UNSUPPORTED, blocking=True,
       note=NOT_YET + "; declare the socket with http-socket, uwsgi-socket or fastcgi-socket"),
    _O("listen", "int", "set the socket listen queue size (backlog)", short="l", default=100,
       min=1, group=_SOCK),
    _O("chmod-socket", "mode", "chmod unix sockets (bare: 666)", aliases=("chmod",),
       short="C", bare=0o666, group=_SOCK),
    _O("chown-socket", "str", "chown unix sockets (user[:group])", group=_SOCK,
       note="applied when the socket is bound, before uid/gid are dropped"),
    _O("vacuum", "bool", "remove the unix sockets and pidfile procmaster created, on exit",
       default=False, group=_SOCK),
    _O("socket-timeout", "seconds", "set the timeout of client socket operations",
       short="z", default=4, group=_SOCK),
    _O("http-keepalive", "int", "HTTP/1.1 keep-alive on http-socket: 0 off, 1 on, more "
       "than 1 is the idle timeout in seconds", default=0, bare=1, group=_SOCK),
    # -- Processes -------------------------------------------------------------
    _O("master", "bool", "enable the master process", short="M", default=False,
       group=_PROC, note="procmaster always runs a master; the option is accepted either way"),
    _O("processes", "int", "spawn the specified number of workers", aliases=("workers",),
       short="p", default=1, min=1, group=_PROC),
    _O("threads", "int", "run each worker with the specified number of threads", default=1,
       min=1, group=_PROC, status=PARTIAL,
       note="the app runs in N threads per worker while the event loop does the socket "
       "work; a response body is collected in the thread before it is sent (no streaming "
       "back-pressure with threads)"),
    _O("enable-threads", "bool", "enable Python threads", short="T", default=False,
       group=_PROC, status=ACCEPTED,
       note="Python threads always work in procmaster; there is nothing to enable"),
    _O("offload-threads", "int", "set the number of offload threads per worker", default=0,
       group=_PROC, status=ACCEPTED,
       note="the worker's event loop already writes responses and files without "
       "holding an app thread"),
    _O("single-interpreter", "bool", "do not use multiple interpreters", short="i",
       default=False, group=_PROC, status=ACCEPTED,
       note="procmaster always runs one interpreter per process"),
    _O("thunder-lock", "bool", "serialize accept() usage", default=False, group=_PROC,
       status=ACCEPTED, note="procmaster does not need an accept lock"),
    _O("no-orphans", "bool", "kill workers if the master dies", default=False, group=_PROC,
       status=ACCEPTED, note="procmaster workers always exit when their master dies"),
    _O("lazy-apps", "bool", "load the app in each worker instead of the master",
       default=False, group=_PROC),
    _O("lazy", "bool", "load the app in each worker instead of the master (older "
       "spelling)", store="lazy-apps", group=_PROC,
       note="same as lazy-apps in procmaster"),
    _O("cheaper", "int", "set cheaper mode (adaptive process spawning): the minimum number "
       "of workers", default=0, group=_PROC,
       note="processes/workers is the maximum"),
    _O("cheaper-initial", "int", "the number of workers to spawn at start in cheaper mode",
       default=0, group=_PROC),
    _O("cheaper-step", "int", "the number of workers to spawn at each overload", default=1,
       group=_PROC),
    _O("cheaper-algo", "str", "the algorithm for adaptive process spawning", group=_PROC,
       status=PARTIAL, note="only 'spare' (uWSGI's default); another name is a warning"),
    _O("cheaper-overload", "seconds", "spawn more workers after this overload", default=3,
       group=_PROC, note="also how long workers must stay idle before one is stopped"),
    _O("max-fd", "int", "set the maximum number of file descriptors (raising the hard "
       "limit needs root)", min=1, group=_PROC),
    _O("locks", "int", "create the specified number of shared locks", default=0,
       group=_PROC, status=ACCEPTED,
       note="uWSGI's lock API (uwsgi.lock) does not exist in procmaster; use "
       "multiprocessing or file locks in the app"),
    _O("gevent", "text", "run the gevent loop engine with the specified number of async "
       "cores", group=_PROC, prefixes=("gevent-",), status=UNSUPPORTED,
       note="no gevent loop and no threads instead: each worker's event loop reads many "
       "connections at once and calls the app for one complete request at a time; raise "
       "processes for concurrency (do not monkey-patch)"),
    # -- Application -------------------------------------------------------------
    _O("module", "str", "load a WSGI module (module[:callable])", aliases=("wsgi",),
       short="w", group=_APP),
    _O("callable", "str", "set the default WSGI callable name", default="application",
       group=_APP),
    _O("wsgi-file", "path", "load a .wsgi/.py file", aliases=("file",), group=_APP),
    _O("chdir", "path", "chdir to the specified directory before loading the app",
       group=_APP),
    _O("pythonpath", "path", "add a directory to the Python path",
       aliases=("python-path", "pp"), multi=True, group=_APP),
    _O("virtualenv", "path", "set the virtualenv (PYTHONHOME)",
       aliases=("home", "venv", "pyhome"), short="H", group=_APP),
    _O("env", "keyval", "set an environment variable: env = NAME=VALUE", multi=True,
       group=_APP),
    _O("mount", "mapping", "load an app under a mountpoint: mount = /path=module:callable "
       "or /path=file.py", multi=True, group=_APP),
    _O("manage-script-name", "bool", "rewrite SCRIPT_NAME and PATH_INFO from the mountpoint",
       default=False, group=_APP),
    _O("need-app", "bool", "exit if no app can be loaded", default=True, group=_APP,
       note="true by default, as in uWSGI 2.1 (2.0: false); need-app = false keeps the "
       "server up without an app"),
    _O("plugins", "str", "load uWSGI plugins (comma-separated)", aliases=("plugin",),
       multi=True, group=_APP, status=ACCEPTED,
       note="Python is built in; python plugins are accepted silently, others give a warning"),
    _O("py-autoreload", "seconds", "reload when a Python module changes (check interval)",
       aliases=("python-autoreload", "py-auto-reload", "python-auto-reload"), default=0,
       group=_APP, status=PARTIAL,
       note="changes are seen at once through inotify (the interval is accepted); files of the app's modules are watched, not the standard library or installed packages"),
    # -- Requests ----------------------------------------------------------------
    _O("buffer-size", "size", "set the buffer size for request headers (uwsgi packet size)",
       short="b", default=4096, min=1, group=_REQ),
    _O("post-buffering", "size", "buffer request bodies larger than this to disk",
       default=0, bare=1, group=_REQ),
    _O("limit-post", "size", "limit request bodies to this many bytes (0: no limit)",
       default=0, group=_REQ),
    _O("route", "str", "add a routing rule (route, route-host, final-route, error-route, "
       "response-route and the rest)", multi=True, group=_REQ,
       prefixes=("route-", "final-route", "error-route", "response-route"),
       status=UNSUPPORTED, blocking=True, note=NOT_YET + "; route in the proxy in front"),
    # -- Logging -----------------------------------------------------------------
    _O("disable-logging", "bool", "disable request logging", short="L", default=False,
       group=_LOG),
    _O("log-format", "text", "set the request log format, with %(var) request variables",
       aliases=("logformat",), group=_LOG, request_vars=True),
    _O("log-date", "bool-or-str", "prefix logs with the date, or with a strftime format "
       "(write %% for % in INI files)", aliases=("logdate",), default=False, bare=True,
       group=_LOG),
    _O("logto", "str", "log to the specified file", group=_LOG),
    _O("logto2", "str", "log to the specified file after privileges drop", group=_LOG,
       status=PARTIAL, note="the same as logto: procmaster does not drop privileges"),
    _O("log-maxsize", "size", "rotate the log file at this size", default=0, group=_LOG,
       note="every process checks after each line; the file is renamed once (under a "
       "lock) and every process reopens, so no line is lost"),
    _O("log-backupname", "path", "the name of the rotated log file", group=_LOG,
       note="without it the rotated file is LOG.<timestamp>"),
    _O("log-reopen", "bool", "reopen the log on reload", default=False, group=_LOG,
       note="procmaster reopens the log on every reload"),
    _O("log-x-forwarded-for", "bool", "use the X-Forwarded-For header as the client "
       "address in request logs", default=False, group=_LOG),
    _O("req-logger", "str", "set/append a request logger", multi=True, group=_LOG,
       status=PARTIAL, note="file:PATH only (request lines go to that file); other "
       "logger plugins are reported and ignored"),
    _O("logger", "str", "set/append a logger", multi=True, group=_LOG,
       status=PARTIAL, note="file:PATH only (the same as logto); other logger plugins "
       "are reported and ignored"),
    _O("touch-logrotate", "path", "rotate the log when the file is touched", multi=True,
       group=_LOG, status=PARTIAL,
       note="the log is renamed to log-backupname or LOG.<timestamp>, then reopened", watch="logrotate"),
    _O("touch-logreopen", "path", "reopen the log when the file is touched", multi=True,
       group=_LOG, status=FULL, watch="logreopen"),
    _O("memory-report", "bool", "add memory usage to request logs", short="m",
       default=False, group=_LOG,
       note="the worker's address space and RSS before each request line, as uWSGI"),
    # -- Process names -------------------------------------------------------------
    _O("procname-prefix", "text", "add a prefix to the process names", group=_NAME,
       status=PARTIAL, note=_PROCNAME_NOTE),
    _O("procname-prefix-spaced", "spaced-text", "add a prefix and a space to the process "
       "names", store="procname-prefix", group=_NAME, status=PARTIAL,
       note="sets procname-prefix to the value plus a space, as uWSGI; " + _PROCNAME_NOTE),
    _O("auto-procname", "bool", "name processes after their role (master, worker N)",
       default=False, group=_NAME, status=PARTIAL, note=_PROCNAME_NOTE),
    _O("procname", "str", "set the process names", group=_NAME, status=PARTIAL,
       note=_PROCNAME_NOTE),
    _O("procname-master", "str", "set the master process name", group=_NAME,
       status=PARTIAL, note=_PROCNAME_NOTE),
    _O("procname-append", "str", "append a string to process names", group=_NAME,
       status=UNSUPPORTED, note=NOT_YET),
    # -- Reloading and limits ------------------------------------------------------
    _O("reload-mercy", "seconds", "the maximum time to wait for workers and other "
       "processes to die during reload/shutdown", default=60, group=_RELOAD),
    _O("worker-reload-mercy", "seconds", "the maximum time a worker can take to "
       "reload/shutdown", default=60, group=_RELOAD),
    _O("harakiri", "seconds", "kill a worker whose request takes longer than this",
       short="t", default=0, group=_RELOAD,
       note="checked by the master from the scoreboard, per thread; the worker is "
       "SIGKILLed and replaced"),
    _O("harakiri-verbose", "bool", "log more when harakiri kills a worker", default=False,
       group=_RELOAD, note="the stuck worker's Python stacks (all threads) are logged "
       "before it is killed"),
    _O("max-requests", "int", "reload a worker after this many requests", short="R",
       default=0, group=_RELOAD, note="the worker finishes its requests, then is replaced"),
    _O("max-requests-delta", "int", "add (worker id × delta) to max-requests", default=0,
       group=_RELOAD),
    _O("max-worker-lifetime", "seconds", "reload a worker after this many seconds",
       default=0, group=_RELOAD, note="checked by the worker once a second"),
    _O("max-worker-lifetime-delta", "seconds", "add (worker id × delta) seconds to "
       "max-worker-lifetime", default=0, group=_RELOAD),
    _O("reload-on-rss", "megabytes", "reload a worker whose RSS is above this many MB",
       default=0, group=_RELOAD, note="measured with psutil after each request"),
    _O("reload-on-as", "megabytes", "reload a worker whose address space is above this "
       "many MB", default=0, group=_RELOAD, note="measured with psutil after each request"),
    _O("evil-reload-on-rss", "megabytes", "have the master reload a worker whose RSS is "
       "above this many MB", default=0, group=_RELOAD,
       note="the master measures every second and SIGKILLs the worker"),
    _O("evil-reload-on-as", "megabytes", "have the master reload a worker whose address "
       "space is above this many MB", default=0, group=_RELOAD,
       note="the master measures every second and SIGKILLs the worker"),
    _O("touch-reload", "path", "reload gracefully when the file is modified/touched",
       multi=True, group=_RELOAD, status=FULL, watch="reload"),
    _O("touch-chain-reload", "path", "chain-reload the workers when the file is "
       "modified/touched", multi=True, group=_RELOAD, status=FULL,
       note="new code needs lazy-apps, as in uWSGI", watch="chain"),
    _O("touch-workers-reload", "path", "reload only the workers when the file is "
       "modified/touched", multi=True, group=_RELOAD, status=FULL, watch="workers"),
    _O("fs-reload", "path", "reload gracefully when the filesystem object changes",
       multi=True, group=_RELOAD, status=FULL, watch="reload"),
    # -- Static files --------------------------------------------------------------
    _O("static-map", "mapping", "map a URL prefix to a static directory or file: "
       "static-map = /static=/srv/static", multi=True, group=_STATIC,
       note="served by the worker with sendfile before the app is called; a missing file "
       "falls through to the app"),
    _O("static-map2", "mapping", "like static-map, appending the whole requested path to "
       "the directory", multi=True, group=_STATIC),
    _O("static-check", "path", "look for static files in the specified directory",
       aliases=("check-static",), multi=True, group=_STATIC),
    _O("static-index", "str", "the file to serve when a static directory is requested",
       multi=True, group=_STATIC),
    _O("static-safe", "path", "allow static files under this path even outside the "
       "mapped directory", multi=True, group=_STATIC),
    # -- Master, control and stats ---------------------------------------------------
    _O("pidfile", "path", "write the master's pid to this file", group=_MASTER),
    _O("pidfile2", "path", "write the pidfile after privileges drop", group=_MASTER,
       note="procmaster never drops privileges, so it is written when pidfile is (atomically)"),
    _O("safe-pidfile", "path", "write the pidfile atomically",
       aliases=("safe-pidfile2",), group=_MASTER,
       note="every pidfile procmaster writes is written atomically (rename)"),
    _O("die-on-term", "bool", "exit (instead of reloading) on SIGTERM", default=False,
       group=_MASTER, status=ACCEPTED,
       note="SIGTERM is always a graceful stop in procmaster, as in uWSGI 2.1"),
    _O("master-fifo", "path", "enable the master FIFO (the first one is active): the "
       "letters r R c w W q Q l L + - s p", multi=True, group=_MASTER,
       status=PARTIAL, note="the first FIFO is served; uWSGI's other letters (such as "
       "0-9, switching to another FIFO) are logged and ignored"),
    _O("stats", "address", "enable the stats server on the specified address",
       aliases=("stats-server",), group=_MASTER, status=PARTIAL,
       note="uWSGI's JSON keys and types, served by the master; listen_queue is "
       "reported for TCP sockets (0 for unix sockets), listen_queue_errors is always 0"),
    _O("stats-http", "bool", "serve the stats with HTTP headers; GET /metrics answers "
       "the Prometheus text format (a procmaster extension)", default=False,
       group=_MASTER),
    # -- Daemons and background work -----------------------------------------------
    _O("attach-daemon", "str", "run a command alongside the workers (it must stay in the "
       "foreground)", multi=True, group=_BG,
       note="started by the master (through /bin/sh), restarted when it exits, stopped "
       "with SIGTERM (then SIGKILL) when procmaster stops"),
    _O("smart-attach-daemon", "str", "run a command that writes a pidfile: "
       "pidfile command", multi=True, group=_BG,
       note="the pid in the pidfile is watched; the command runs again when that "
       "process is gone; stopped with procmaster"),
    _O("cron", "str", "add a cron task: minute hour day month weekday command",
       multi=True, group=_BG,
       note="uWSGI's syntax: -1 is any, -N is every N; checked by the master each minute; "
       "a run still going when its next time comes is not started twice"),
    _O("mule", "text", "add a mule (a process for background work)", multi=True, bare="",
       prefixes=("mule-",), aliases=("mules", "farm"), group=_BG, status=UNSUPPORTED,
       blocking=True, note=NOT_YET + "; run background work as its own service"),
    _O("spooler", "path", "run a spooler on the specified directory", short="Q",
       multi=True, prefixes=("spooler-",), group=_BG, status=UNSUPPORTED, blocking=True,
       note=NOT_YET + "; use a task queue (e.g. Celery, RQ)"),
    _O("hook-*", "str", "run hooks at a phase (hook-asap, hook-pre-app, hook-as-root and "
       "the rest)",
       prefixes=("hook-", "exec-", "call-", "mount-", "umount-"), multi=True, group=_BG,
       status=UNSUPPORTED, blocking=True,
       note=NOT_YET + "; run the commands before starting procmaster (ExecStartPre)"),
    # -- Privileges and daemonizing ----------------------------------------------------
    _O("uid", "str", "setuid to the specified user/uid", group=_PRIV,
       note="dropped after binding the sockets, before the app is loaded; running as "
       "root without uid is a warning"),
    _O("gid", "str", "setgid to the specified group/gid", group=_PRIV,
       note="with uid given by name, the user's supplementary groups are set too"),
    _O("daemonize", "path", "daemonize, logging to the specified file", short="d",
       aliases=("daemonize2",), group=_PRIV, status=PARTIAL,
       note="detaches (the command returns once the master runs; pidfile holds the "
       "master) and logs to the file; under systemd or supervisord prefer the foreground"),
    _O("chroot", "path", "chroot to the specified directory", group=_PRIV,
       aliases=("pivot-root", "jail", "unshare", "cap", "namespace", "ns",
                "immediate-uid", "immediate-gid"),
       status=UNSUPPORTED, blocking=True, note=NOT_YET + "; use systemd sandboxing or a "
       "container"),
    # -- Other uWSGI subsystems ----------------------------------------------------------
    _O("emperor", "str", "run the Emperor: one master (vassal) per *.ini in a directory, "
       "or per file matching a glob (repeatable)", multi=True, group=_OTHER, status=PARTIAL,
       note="INI vassals only (no .xml/.yml/.json, no zmq:// or other monitor schemes); "
       "watched with inotify; a vassal's %d and %n are those of the INI file symlinks "
       "point to"),
    _O("emperor-throttle", "int", "the Emperor's throttle (milliseconds) for vassals that "
       "keep dying: the first back-off step", default=1000, group=_OTHER),
    _O("emperor-max-throttle", "int", "the longest back-off (milliseconds) before a dying "
       "vassal is started again", default=180000, group=_OTHER),
    _O("vassals-include", "ini", "include this INI in every vassal's config, after the "
       "vassal's own lines (its values win)", multi=True, group=_OTHER),
    _O("vassals-inherit", "ini", "read this INI as a base for every vassal, before the "
       "vassal's own lines (the vassal's values win)", multi=True, group=_OTHER),
    _O("vassal-set", "keyval", "set an option for every vassal: vassal-set = NAME=VALUE",
       aliases=("vassals-set",), multi=True, group=_OTHER),
    _O("emperor-pidfile", "path", "write the Emperor's pid to this file", group=_OTHER),
    _O("emperor-stats", "address", "serve the Emperor's stats (JSON: each vassal's INI, "
       "pid, state, restarts, last start) on this address", aliases=("emperor-stats-server",),
       group=_OTHER),
    _O("emperor-tyrant", "bool", "when the Emperor runs as root, run each vassal as the "
       "owner (uid and gid) of its INI file; root-owned vassals are refused", default=False,
       group=_OTHER),
    _O("emperor-tyrant-allow-root", "bool", "with emperor-tyrant, let root-owned vassal "
       "files run as root (a procmaster extension)", default=False, group=_OTHER),
    _O("emperor-on-demand-directory", "path", "bind vassal sockets in the Emperor and start "
       "a vassal on its first connection", aliases=("emperor-on-demand-dir",), group=_OTHER,
       status=UNSUPPORTED, note=NOT_YET + "; every vassal starts at once"),
    _O("emperor-*", "str", "other Emperor and vassal options (emperor-freq, "
       "emperor-broodlord, vassals-include-before and the rest)",
       prefixes=("emperor-", "vassals-", "vassal-"), multi=True, group=_OTHER,
       status=UNSUPPORTED, blocking=True, note=NOT_YET + "; the options above are supported"),
    _O("cache2", "str", "create a shared cache (keyval syntax)", multi=True,
       prefixes=("cache-",), group=_OTHER, status=UNSUPPORTED, blocking=True,
       note=NOT_YET + "; the uwsgi.cache_* API does not exist: use Redis or memcached"),
    _O("cache", "int", "create a shared cache with this many items", group=_OTHER,
       status=UNSUPPORTED, blocking=True,
       note=NOT_YET + "; the uwsgi.cache_* API does not exist: use Redis or memcached"),
    # -- Command line ---------------------------------------------------------------------
    _O("help", "bool", "show this help and exit", aliases=("usage",), short="h",
       default=False, cli_only=True, group=_CLI),
    _O("version", "bool", "print the procmaster version and exit", default=False,
       cli_only=True, group=_CLI),
    _O("check", "ini", "read FILE[:section] like --ini, report errors and warnings, and "
       "exit without starting (a procmaster extension)", cli_only=True, group=_CLI),
    _O("reload", "path", "send a graceful reload (SIGHUP) to the master named in the "
       "pidfile, and exit", cli_only=True, group=_CLI),
    _O("stop", "path", "send a graceful stop (SIGTERM) to the master named in the "
       "pidfile, and exit", cli_only=True, group=_CLI,
       note="procmaster's SIGTERM is a graceful stop (uWSGI 2.0's --stop sends SIGINT)"),
    _O("chain-reload", "path", "send a chain reload (SIGURG) to the master named in the "
       "pidfile, and exit (a procmaster extension)", cli_only=True, group=_CLI),
    _O("print", "text", "print the value when the configuration is read", multi=True,
       group=_CLI),
    _O("show-config", "bool", "show the resolved configuration as INI at start",
       default=False, group=_CLI),
)
# fmt: on


# ---------------------------------------------------------------------------
# Look-ups.

BY_NAME: dict[str, Option] = {}
BY_SHORT: dict[str, Option] = {}
_FAMILIES: list[tuple[str, Option]] = []


def _norm(key: str) -> str:
    return key.replace("_", "-")


def _index() -> None:
    for opt in OPTIONS:
        names = (opt.name, *opt.aliases) if "*" not in opt.name else opt.aliases
        for n in names:
            if n in BY_NAME:
                raise RuntimeError(f"option name {n!r} declared twice")
            BY_NAME[n] = opt
        if opt.short:
            if opt.short in BY_SHORT:
                raise RuntimeError(f"short option -{opt.short} declared twice")
            BY_SHORT[opt.short] = opt
        for p in opt.prefixes:
            _FAMILIES.append((p, opt))


_index()


def lookup(key: str) -> Option | None:
    """The option called ``key`` (a name or long alias; ``-`` and ``_`` alike), or None.

    One-letter command-line shorts are not names: see ``lookup_short``.
    """
    key = _norm(key.strip())
    opt = BY_NAME.get(key)
    if opt is not None:
        return opt
    # families (hook-*, route-*, ...) only cover real uWSGI names, so that a custom
    # key such as cache_dir stays a custom key
    for prefix, fam in _FAMILIES:
        if key.startswith(prefix) and is_uwsgi_option(key):
            return fam
    return None


def lookup_short(letter: str) -> Option | None:
    """The option of a one-letter command-line flag such as ``p`` in ``-p 4``."""
    return BY_SHORT.get(letter)


def socket_options() -> dict[str, str]:
    """Socket option name -> the protocol its sockets speak, in table order."""
    return {o.name: o.protocol for o in OPTIONS if o.protocol}


def watch_options() -> dict[str, str]:
    """Watched-path option name -> what a change asks for, in table order."""
    return {o.name: o.watch for o in OPTIONS if o.watch}


def all_names() -> list[str]:
    """Every name and long alias procmaster declares (for suggestions)."""
    return [n for n in BY_NAME]


def suggest(key: str) -> str | None:
    """The declared option name closest to a mistyped ``key`` (difflib), or None."""
    import difflib

    low = _norm(key.strip()).lower()
    if low in BY_NAME:
        return low
    found = difflib.get_close_matches(low, all_names(), n=1, cutoff=0.75)
    if not found:
        return None
    opt = BY_NAME[found[0]]
    # suggest the alias the user was close to when it is the closer spelling
    return found[0] if found[0] in opt.aliases else opt.name


def did_you_mean(key: str) -> str:
    """`` (did you mean 'x'?)`` or the empty string."""
    s = suggest(key)
    return f" (did you mean '{s}'?)" if s else ""


_uwsgi_names: frozenset[str] | None = None


def is_uwsgi_option(key: str) -> bool:
    """True if uWSGI 2.0 (core or any bundled plugin) has an option of this name."""
    global _uwsgi_names
    if _uwsgi_names is None:
        _uwsgi_names = frozenset(_UWSGI_2_0_NAMES.split())
    return _norm(key) in _uwsgi_names


# uWSGI's one-letter flags that procmaster does not declare, for a clear message.
UWSGI_SHORTS = {
    "A": "sharedarea",
    "a": "abstract-socket",
    "c": "cgi-mode",
    "r": "reaper",
    "v": "max-vars",
    "J": "test",
    "O": "optimize",
}

# Every option name of uWSGI 2.0 (core and the plugins in its tree), so that an
# option procmaster does not declare is reported as "not supported", not "unknown".
_UWSGI_2_0_NAMES = """
abstract-socket add-cache-item add-gid add-header after-request-call after-request-hook
alarm alarm-backlog alarm-cheap alarm-fd alarm-freq alarm-list alarm-listen-queue alarm-log
alarm-lq alarm-metric alarm-msg-size alarm-segfault alarms-list allowed-modifiers async
asyncio attach-control-daemon attach-daemon attach-daemon2 auto-procname auto-weight
autoload backlog-alarm backtrace-depth binary-append-data binary-path binsh blacklist
body-read-warning brutal-reload-on-fd buffer-size build-plugin cache cache-blocksize
cache-expire-freq cache-no-expire cache-report-freed-items cache-store cache-store-sync
cache-sync cache-udp-node cache-udp-server cache-use-last-modified cache2 call-as-emperor
call-as-emperor1 call-as-emperor2 call-as-emperor4 call-as-root call-as-user
call-as-user-atexit call-as-vassal call-as-vassal1 call-as-vassal3 call-asap call-in-jail
call-post-app call-post-jail call-pre-app call-pre-jail callable cap carbon carbon-freq
carbon-hostname-dots carbon-id carbon-idle-avg carbon-max-retry carbon-name-resolve
carbon-no-workers carbon-resolve-names carbon-retry-delay carbon-root carbon-timeout
carbon-use-metrics catch-exceptions cflags cgi cgi-allowed-ext cgi-async-max-attempts
cgi-buffer-size cgi-close-stdin-on-eof cgi-do-not-kill-on-error cgi-from-docroot cgi-helper
cgi-index cgi-loadlib cgi-map-helper cgi-mode cgi-optimize cgi-optimized cgi-path-info
cgi-safe cgi-timeout cgi-unset cgroup cgroup-dir-mode cgroup-opt chdir chdir2 cheap cheaper
cheaper-algo cheaper-algo-list cheaper-algos-list cheaper-busyness-backlog-alert
cheaper-busyness-backlog-multiplier cheaper-busyness-backlog-nonzero
cheaper-busyness-backlog-step cheaper-busyness-max cheaper-busyness-min
cheaper-busyness-multiplier cheaper-busyness-penalty cheaper-busyness-verbose
cheaper-initial cheaper-list cheaper-overload cheaper-rss-limit-hard cheaper-rss-limit-soft
cheaper-step check-cache check-interval check-mount check-mountpoint check-static
check-static-docroot chmod chmod-socket chown-socket chroot chunked-input-limit
chunked-input-timeout clock clock-list clocks-list clojure-load close-on-exec close-on-exec2
collect-header command-mode config config-py connect-and-read coroae cpu-affinity cron
cron-curl cron-curl-legion cron-harakiri cron-legion cron2 curl-cron curl-cron-legion
daemonize daemonize2 daemons-honour-stdin declare-option declare-option2 del-header
die-on-idle die-on-term disable-logging disable-sendfile disable-write-exception dlopen
dot-h drop-after-apps drop-after-init dumbloop-code dumbloop-function dumbloop-modifier1
dump-options early-emperor early-envdir emperor emperor-broodlord emperor-cap
emperor-curse-tolerance emperor-extra-ext emperor-extra-extension emperor-freq
emperor-graceful-shutdown emperor-magic-exec emperor-max-throttle emperor-no-blacklist
emperor-nofollow emperor-on-demand-dir emperor-on-demand-directory emperor-on-demand-exec
emperor-on-demand-ext emperor-on-demand-extension emperor-pidfile emperor-procname
emperor-proxy-socket emperor-required-heartbeat emperor-stats emperor-stats-server
emperor-throttle emperor-tyrant emperor-tyrant-nofollow emperor-use-clone emperor-wrapper
emperor-wrapper-fallback emperor-wrapper-override enable-metrics enable-proxy-protocol
enable-threads end-blacklist end-for end-if end-whitelist endfor endif env envdir
error-page-403 error-page-404 error-page-500 error-route error-route-host error-route-if
error-route-if-not error-route-label error-route-qs error-route-referer
error-route-remote-addr error-route-remote-user error-route-run error-route-status
error-route-uri error-route-user-agent eval evil-reload-on-as evil-reload-on-rss
exception-handler exec-as-emperor exec-as-root exec-as-user exec-as-user-atexit
exec-as-vassal exec-asap exec-in-jail exec-post-app exec-post-jail exec-pre-app
exec-pre-jail exit exit-on-reload extract fallback-config farm fastcgi-modifier1
fastcgi-modifier2 fastcgi-nph-socket fastcgi-socket fastrouter fastrouter-buffer-size
fastrouter-cheap fastrouter-events fastrouter-fallback fastrouter-fallback-on-no-key
fastrouter-gid fastrouter-gracetime fastrouter-harakiri fastrouter-post-buffering
fastrouter-post-buffering-dir fastrouter-processes fastrouter-quiet fastrouter-resubscribe
fastrouter-resubscribe-bind fastrouter-ss fastrouter-stats fastrouter-stats-server
fastrouter-subscription-fallback-key fastrouter-subscription-server
fastrouter-subscription-slot fastrouter-timeout fastrouter-to fastrouter-uid
fastrouter-use-base fastrouter-use-cache fastrouter-use-code-string fastrouter-use-pattern
fastrouter-use-socket fastrouter-workers fastrouter-zerg fd-safe fiber file file-serve-mode
file-write fileserve-mode final-route final-route-host final-route-if final-route-if-not
final-route-label final-route-qs final-route-referer final-route-remote-addr
final-route-remote-user final-route-run final-route-status final-route-uri
final-route-user-agent flock flock-wait flock-wait2 flock2 for for-glob for-readline
for-times force-cwd force-gateway forkbomb-delay forkpty-router forkpty-router-cmd
forkpty-router-command forkpty-urouter forkptyrouter forkptyrouter-cheap forkptyrouter-cmd
forkptyrouter-cols forkptyrouter-command forkptyrouter-events forkptyrouter-fallback
forkptyrouter-harakiri forkptyrouter-processes forkptyrouter-rows forkptyrouter-ss
forkptyrouter-stats forkptyrouter-stats-server forkptyrouter-timeout forkptyrouter-workers
forkptyrouter-zerg forkptyurouter freebind fs-brutal-reload fs-reload fs-signal ftok
gccgo-args gccgo-load gemset geoip-city geoip-country geoip-use-disk get gevent
gevent-early-monkey-patch gevent-monkey-patch gevent-wait-for-hub gid glusterfs-mount
glusterfs-timeout go-args go-load goroutines greenlet harakiri harakiri-graceful-signal
harakiri-graceful-timeout harakiri-no-arh harakiri-queue-threshold harakiri-verbose
heartbeat help home honour-range honour-stdin hook-accepting hook-accepting-once
hook-accepting1 hook-accepting1-once hook-as-emperor hook-as-gateway hook-as-mule
hook-as-root hook-as-user hook-as-user-atexit hook-as-vassal hook-asap hook-emperor-lost
hook-emperor-reload hook-emperor-start hook-emperor-stop hook-in-jail hook-master-start
hook-post-app hook-post-fork hook-post-jail hook-pre-app hook-pre-jail hook-touch http
http-auto-chunked http-auto-gzip http-buffer-size http-cheap http-chunked-input
http-connect-timeout http-enable-proxy-protocol http-events http-fallback http-gid
http-gracetime http-harakiri http-headers-timeout http-keepalive http-manage-expect
http-manage-rtsp http-manage-source http-modifier1 http-modifier2 http-processes http-quiet
http-raw-body http-resubscribe http-server-name-as-http-host http-socket
http-socket-modifier1 http-socket-modifier2 http-ss http-stats http-stats-server
http-stud-prefix http-subscription-fallback-key http-subscription-server http-timeout
http-to http-to-https http-uid http-use-base http-use-cache http-use-code-string
http-use-pattern http-use-socket http-var http-websockets http-workers http-zerg
http11-socket httprouter https https-export-cert https-session-context https-socket
https-socket-modifier1 https-socket-modifier2 https2 idle if-dir if-directory if-env
if-exists if-file if-hostname if-hostname-match if-not-dir if-not-env if-not-exists
if-not-file if-not-hostname if-not-hostname-match if-not-opt if-not-plugin if-not-reload
if-opt if-plugin if-reload ifdir ifenv ifexists ifplugin ignore-script-name ignore-sigpipe
ignore-write-errors immediate-gid immediate-uid imperial-monitor-list imperial-monitors-list
import include inherit ini ini-paste ini-paste-logged inject-after inject-before iprint jail
jail-attach jail-ip4 jail-ip6 jail2 jailed jid-file jidfile js json jvm-class jvm-classpath
jvm-main-class jvm-opt jwsgi ksm lazy lazy-apps ldap ldap-schema ldap-schema-ldif legion
legion-attach-daemon legion-cron legion-cron-curl legion-curl-cron legion-death
legion-death-on-lord-error legion-freq legion-join legion-lord legion-mcast legion-node
legion-node-joined legion-node-left legion-quorum legion-scroll legion-scroll-list-max-size
legion-scroll-max-size legion-setup legion-skew-tolerance legion-smart-attach-daemon
legion-smart-attach-daemon2 legion-tolerance legion-unlord libjail limit-as limit-nproc
limit-post listen listen-queue-alarm load-file-in-cache load-file-in-cache-gzip lock-engine
locks log-4xx log-5xx log-alarm log-backupname log-big log-date log-drain log-encoder
log-filter log-format log-format-strftime log-ioerror log-master log-master-bufsize
log-master-req-stream log-master-stream log-maxsize log-micros log-prefix log-reopen
log-req-encoder log-req-route log-route log-sendfile log-slow log-socket log-syslog
log-truncate log-x-forwarded-for log-zero log-zeromq logdate logfile-chmod logfile-chown
logformat logformat-strftime logger logger-list logger-req loggers-list logto logto2 loop
loop-list loops-list lq-alarm lua lua-gc-freq lua-load lua-shell luashell manage-script-name
map-socket master master-as-root master-fifo max-apps max-fd max-requests max-requests-delta
max-vars max-worker-lifetime max-worker-lifetime-delta mem-collector-freq memory-report
metric metric-alarm metric-dir metric-dir-restore metric-threshold metrics-dir
metrics-dir-restore metrics-no-cores mime-file mimefile min-worker-lifetime mode module
mongrel2 mono-app mono-assembly mono-config mono-exec mono-gc-freq mono-index mono-key
mono-version mount mount-as-emperor mount-as-root mount-as-vassal mount-asap mount-check
mount-in-jail mount-post-jail mount-pre-jail mountpoint-check mule mule-harakiri
mule-msg-size mule-reload-mercy mules multicast multicast-loop multicast-ttl nagios
namespace namespace-keep-mount namespace-net need-app need-plugin need-plugins never-swap
no-default-app no-defer-accept no-fd-passing no-harakiri-after-req-hook no-harakiri-arh
no-initgroups no-orphans no-server no-site no-threads-wait not-alarm-log not-log-alarm
notfound-log notify-socket ns ns-net offload-thread offload-threads optimize pam pam-user
paste paste-logger pause pcre-jit pecan perl-arg perl-args perl-auto-reload
perl-auto-reload-ignore perl-exec perl-exec-post-fork perl-local-lib perl-no-die-catch
perl-no-plack perl-version persistent-ipcsem php-allowed-docroot php-allowed-ext
php-allowed-script php-app php-app-bypass php-app-qs php-config php-config-append
php-constant php-docroot php-dump-config php-exec-after php-exec-before php-exec-begin
php-exec-end php-fallback php-fallback-qs php-fallback2 php-index php-ini php-ini-append
php-sapi-name php-server-software php-set php-var pidfile pidfile2 ping ping-timeout
pivot-root pivot_root plshell plshell-oneshot plugin plugin-dir plugin-list plugins
plugins-dir plugins-list post-buffering post-buffering-bufsize post-pymodule-alias pp print
print-sym print-symbol prio privileged-binary-patch privileged-binary-patch-arg processes
procname procname-append procname-master procname-prefix procname-prefix-spaced profiler
propagate-touch protocol psgi psgi-enable-psgix-io pty-connect pty-exec pty-input pty-log
pty-no-isig pty-socket pty-uconnect pull-header pump puwsgi-socket py py-auto-reload
py-auto-reload-ignore py-autoreload py-call-osafterfork py-call-uwsgi-fork-hooks
py-executable py-import py-program-name py-programname py-sharedarea py-sys-executable
py-tracebacker pyargv pyhome pyimport pymodule-alias pypy-eval pypy-eval-post-fork pypy-exec
pypy-exec-post-fork pypy-home pypy-ini-paste pypy-lib pypy-paste pypy-pp pypy-python-path
pypy-pythonpath pypy-setup pypy-wsgi pypy-wsgi-file pyrun pyshell pyshell-oneshot python
python-auto-reload python-autoreload python-import python-path python-raw python-version
python-worker-override pythonpath queue queue-blocksize queue-store queue-store-sync rack
rados-mount rados-timeout rails raw-modifier1 raw-modifier2 raw-socket rawrouter
rawrouter-buffer-size rawrouter-cheap rawrouter-events rawrouter-fallback
rawrouter-gracetime rawrouter-harakiri rawrouter-max-retries rawrouter-processes
rawrouter-quiet rawrouter-ss rawrouter-stats rawrouter-stats-server
rawrouter-subscription-server rawrouter-subscription-slot rawrouter-timeout rawrouter-to
rawrouter-use-base rawrouter-use-cache rawrouter-use-code-string rawrouter-use-pattern
rawrouter-use-socket rawrouter-workers rawrouter-xclient rawrouter-zerg rb-gc-freq rb-lib
rb-require rb-thread rb-threads rbrequire rbshell rbshell-oneshot rbthread rbthreads rbtimer
re-fork re-fork-as-root re-fork-post-jail reaper refork refork-as-root refork-post-jail
reload reload-mercy reload-on-as reload-on-exception reload-on-exception-repr
reload-on-exception-type reload-on-exception-value reload-on-fd reload-on-rss reload-os-env
rem-header remap-modifier req-logger require resolve response-header-collect
response-headers-limit response-route response-route-host response-route-if
response-route-if-not response-route-label response-route-qs response-route-referer
response-route-remote-addr response-route-remote-user response-route-run
response-route-status response-route-uri response-route-user-agent resume reuse-port
ring-app ring-load route route-host route-if route-if-not route-label route-qs route-referer
route-remote-addr route-remote-user route-run route-uri route-user-agent router-list
routers-list rpc-max rrdtool rrdtool-freq rrdtool-lib rsyslog-packet-size
rsyslog-split-messages ruby-gc-freq ruby-lib ruby-require rubyrequire rvm rvm-path safe-fd
safe-pidfile safe-pidfile2 scgi-modifier1 scgi-modifier2 scgi-nph-socket scgi-socket
segfault-alarm set set-ph set-placeholder setns setns-preopen setns-skip setns-socket
setns-socket-skip shared-import shared-py-import shared-pyimport shared-python-import
shared-rb-require shared-rbrequire shared-require shared-ruby-require shared-rubyrequire
shared-socket sharedarea show-config shutdown-sockets signal signal-bufsize signal-rbtimer
signal-timer signals-bufsize single-interpreter skip-atexit skip-atexit-teardown skip-zero
smart-attach-daemon smart-attach-daemon2 sni sni-dir sni-dir-ciphers sni-regexp snmp
snmp-community so-keepalive so-send-timeout so-write-timeout socket socket-protocol
socket-rcvbuf socket-send-timeout socket-sndbuf socket-timeout socket-write-timeout spooler
spooler-chdir spooler-external spooler-freq spooler-frequency spooler-harakiri
spooler-import spooler-max-tasks spooler-ordered spooler-processes spooler-py-import
spooler-pyimport spooler-python-import spooler-quiet sqlite sqlite3 ssl-enable-sslv3
ssl-enable-tlsv1 ssl-enable3 ssl-option ssl-session-timeout ssl-session-use-cache
ssl-sessions-timeout ssl-sessions-use-cache ssl-socket ssl-tmp-dir ssl-verbose
ssl-verify-depth sslrouter sslrouter-buffer-size sslrouter-cheap sslrouter-events
sslrouter-fallback sslrouter-gracetime sslrouter-harakiri sslrouter-max-retries
sslrouter-processes sslrouter-quiet sslrouter-session-context sslrouter-sni sslrouter-ss
sslrouter-stats sslrouter-stats-server sslrouter-subscription-server sslrouter-timeout
sslrouter-to sslrouter-use-base sslrouter-use-cache sslrouter-use-code-string
sslrouter-use-pattern sslrouter-use-socket sslrouter-workers sslrouter-zerg sslrouter2 st
stackless start-unsubscribed start_response-nodelay static-cache-paths
static-cache-paths-name static-check static-expires static-expires-mtime
static-expires-path-info static-expires-path-info-mtime static-expires-type
static-expires-type-mtime static-expires-uri static-expires-uri-mtime static-gzip
static-gzip-all static-gzip-dir static-gzip-ext static-gzip-prefix static-gzip-suffix
static-index static-map static-map2 static-safe static-skip-ext stats stats-http stats-min
stats-minified stats-no-cores stats-no-metrics stats-push stats-pusher-default-freq
stats-pushers-default-freq stats-server stop strict subscribe subscribe-freq subscribe-to
subscribe-with-modifier1 subscribe2 subscription-algo subscription-dotsplit
subscription-notify-socket subscription-tolerance subscriptions-credentials-check
subscriptions-sign-check subscriptions-sign-check-tolerance subscriptions-sign-skip-uid
subscriptions-use-credentials suspend suwsgi-socket symcall symcall-post-fork
symcall-register-rpc symcall-use-next tcp-fast-open tcp-fast-open-client tcp-fastopen
tcp-fastopen-client tcp-nodelay test thread-stack-size thread-stacksize threaded-logger
threads threads-stack-size threads-stacksize thunder-lock timer tornado touch-chain-reload
touch-exec touch-logreopen touch-logrotate touch-mules-reload touch-reload touch-signal
touch-spoolers-reload touch-workers-reload tuntap-device tuntap-device-rule tuntap-router
tuntap-router-firewall-in tuntap-router-firewall-out tuntap-router-route tuntap-router-stats
tuntap-use-credentials udp ugreen ugreen-stacksize uid umask umount-as-emperor
umount-as-root umount-as-vassal umount-asap umount-in-jail umount-post-jail umount-pre-jail
undeferred-shared-socket unenv unique-cron unique-cron-legion unique-legion-cron
unprivileged-binary-patch unprivileged-binary-patch-arg unshare unshare2
unsubscribe-on-graceful-reload upload-progress usage use-abort uwsgi-socket vacuum
vassal-cap vassal-set vassal-sos vassal-sos-backlog vassals-cap vassals-include
vassals-include-before vassals-inherit vassals-inherit-before vassals-set vassals-start-hook
vassals-stop-hook venv version vhost vhost-host virtualenv wait-for-dir wait-for-file
wait-for-fs wait-for-fs-timeout wait-for-iface wait-for-iface-timeout wait-for-interface
wait-for-interface-timeout wait-for-mountpoint wait-for-socket wait-for-socket-timeout
wait-iface wait-iface-timeout wait-interface wait-interface-timeout web3
webdav-add-collection-prop webdav-add-collection-prop-comp webdav-add-collection-prop-href
webdav-add-object-prop webdav-add-object-prop-comp webdav-add-object-prop-href
webdav-add-option webdav-add-prop webdav-add-prop-comp webdav-add-prop-href
webdav-add-rtype-collection-prop webdav-add-rtype-object-prop webdav-add-rtype-prop
webdav-class-directory webdav-css webdav-div webdav-javascript webdav-js webdav-lock-cache
webdav-mount webdav-principal-base webdav-skip-prop websocket-max-size websocket-ping-freq
websocket-pong-tolerance websockets-max-size websockets-ping-freq websockets-pong-tolerance
weight whitelist worker-exec worker-exec2 worker-mount worker-reload-mercy workers
write-errors-exception-only write-errors-tolerance wsgi wsgi-accept-buffer
wsgi-accept-buffers wsgi-disable-file-wrapper wsgi-env-behavior wsgi-env-behaviour wsgi-file
wsgi-lite wsgi-strict xml xmlconfig xslt-content-type xslt-docroot xslt-ext xslt-stylesheet
xslt-var yaml yml zabbix-template zerg zerg-fallback zerg-pool zerg-server zergpool zeromq
zeromq-socket zmq zmq-socket
"""
