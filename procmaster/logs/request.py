"""One line per request: uWSGI's default line, ``log-format`` and which requests
are logged.

Theory of operation
-------------------
``RequestLogger`` is built once per worker. ``compile_format`` splits a
``log-format`` into its literal text and the names of its ``%(var)`` variables;
``compile_line`` makes one function that builds the whole line from them (an
f-string of the values between the literal pieces), so a line costs one call.
``every`` is true unless ``disable-logging``; then ``wanted`` says whether this
request is one of those uWSGI logs anyway: ``log-zero`` (no body), ``log-slow``
(at least MS milliseconds), ``log-4xx``, ``log-5xx``, ``log-big`` (a body of at
least BYTES), ``log-sendfile`` (sent with sendfile), ``log-ioerror`` (the client
went away during the response). The worker asks ``wanted`` only when ``every``
is false, so a plain logged request pays nothing for the conditions.

A name that is none of uWSGI's variables (nor ``var.X``) is a logvar, as in
uWSGI: the value the app gave it with ``uwsgi.set_logvar`` (kept in the environ
under ``uwsgi.logvars``), ``-`` when it did not (as uWSGI 2.0.31 writes it).
Only a format naming one gets a getter that looks there.

``%(ftime)`` is ``%(ltime)`` unless ``logformat-strftime`` is set and ``log-date``
holds a strftime format: then that format (uWSGI 2.0's meaning of
``logformat-strftime``).

Must not know: HTTP, WSGI, where the line is written (``Log.write_request``).
"""

from __future__ import annotations

import os
import re
import time

__all__ = ["DEFAULT_FORMAT", "LOGVARS", "RequestLogger", "compile_format", "request_logger"]


_VAR = re.compile(r"%\(([a-zA-Z0-9_.\-]+)\)")

# uWSGI's default request line (logging/logging.c, "[pid: ...|app: ...|req: ...]")
DEFAULT_FORMAT = (
    "[pid: %(pid)|app: 0|req: %(reqnum)/%(total)] %(addr) (%(user)) "
    "{%(vars) vars in %(pktsize) bytes} [%(ctime)] %(method) %(uri) => "
    "generated %(rsize) bytes in %(msecs) msecs (%(proto) %(status)) "
    "%(headers) headers in %(hsize) bytes (%(switches) switches on core %(core))"
)


def compile_format(fmt: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``[%(method) %(uri)]`` -> (``("[", " ", "]")``, ``("method", "uri")``): the
    literal text around the variables (one piece more than the names)."""
    pieces = _VAR.split(fmt)  # text, name, text, name, ..., text
    return tuple(pieces[0::2]), tuple(pieces[1::2])


def request_logger(cfg, wid: int) -> RequestLogger | None:
    """The worker's request logger, or None when no request is ever logged."""
    if cfg.disable_logging and not (
        cfg.log_4xx
        or cfg.log_5xx
        or cfg.log_zero
        or cfg.log_slow
        or cfg.log_big
        or cfg.log_sendfile
        or cfg.log_ioerror
    ):
        return None
    return RequestLogger(cfg, wid)


class RequestLogger:
    """Formats one line per request; the worker passes what it measured."""

    def __init__(self, cfg, wid: int) -> None:
        fmt = cfg.get("log-format") or DEFAULT_FORMAT
        literals, self.names = compile_format(fmt)
        # the whole line in one generated call (see compile_line)
        self.compose = compile_line(literals, self.names)
        self.needs_total = "total" in self.names  # a sum over every worker's slot
        self.wid = wid
        self.pid = os.getpid()
        self.x_forwarded_for = cfg.log_x_forwarded_for
        self.memory_report = cfg.memory_report
        self.every = not cfg.disable_logging
        self.log_4xx = cfg.log_4xx
        self.log_5xx = cfg.log_5xx
        self.log_zero = cfg.log_zero
        self.slow = cfg.log_slow  # milliseconds, 0: off
        self.big = cfg.log_big  # bytes, 0: off
        self.sendfile = cfg.log_sendfile
        self.ioerror = cfg.log_ioerror
        date = cfg.log_date
        self.ftime = date if cfg.logformat_strftime and isinstance(date, str) else None

    def wanted(self, code: str, rsize: int, seconds: float, sendfile: bool) -> bool:
        """Under ``disable-logging``: is this request logged anyway (uWSGI's
        conditional logging)? ``code`` is the status's three digits."""
        if self.log_zero and rsize == 0:
            return True
        if self.slow and seconds * 1000 >= self.slow:
            return True
        if self.log_4xx and code[:1] == "4":
            return True
        if self.log_5xx and code[:1] == "5":
            return True
        if self.big and rsize >= self.big:
            return True
        return self.sendfile and sendfile

    def line(
        self,
        environ: dict,
        status: str,
        rsize: int,
        hsize: int,
        nheaders: int,
        start: float,
        end: float,
        reqnum: int,
        total: int,
    ) -> str:
        line = self.compose(
            self, environ, status, rsize, hsize, nheaders, start, end, reqnum, total
        )
        if self.memory_report:
            vsz, rss = _memory("vsz"), _memory("rss")
            return (
                f"{{address space usage: {vsz} bytes/{vsz >> 20}MB}} "
                f"{{rss usage: {rss} bytes/{rss >> 20}MB}} " + line
            )
        return line

    def _value(self, name, environ, status, rsize, hsize, nheaders, start, end, reqnum, total):
        if name == "addr":
            if self.x_forwarded_for and environ.get("HTTP_X_FORWARDED_FOR"):
                return environ["HTTP_X_FORWARDED_FOR"]
            return environ.get("REMOTE_ADDR", "")
        if name == "method":
            return environ.get("REQUEST_METHOD", "")
        if name == "uri":
            uri = environ.get("REQUEST_URI")
            if uri is None:
                uri = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
                if environ.get("QUERY_STRING"):
                    uri += "?" + environ["QUERY_STRING"]
            return uri
        if name == "proto":
            return environ.get("SERVER_PROTOCOL", "")
        if name == "status":
            return status[:3]
        if name in ("size", "rsize"):
            return rsize
        if name == "hsize":
            return hsize
        if name == "headers":
            return nheaders
        if name == "msecs":
            return int((end - start) * 1000)
        if name == "micros":
            return int((end - start) * 1000000)
        if name == "pid":
            return self.pid
        if name == "wid":
            return self.wid
        if name == "reqnum":
            return reqnum
        if name == "total":
            return total
        if name == "ctime":
            return _ctime(start)
        if name == "ltime":
            return time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(start))
        if name == "ftime":
            fmt = self.ftime or "%d/%b/%Y:%H:%M:%S %z"
            return time.strftime(fmt, time.localtime(start))
        if name == "secs":
            return f"{end - start:.6f}"
        if name == "time" or name == "epoch":
            return int(start)
        if name == "tmsecs":
            return int(start * 1000)
        if name == "tmicros":
            return int(start * 1000000)
        if name == "uagent":
            return environ.get("HTTP_USER_AGENT", "")
        if name == "referer":
            return environ.get("HTTP_REFERER", "")
        if name == "host":
            return environ.get("HTTP_HOST", "")
        if name == "user":
            return environ.get("REMOTE_USER", "")
        if name == "cl":
            return environ.get("CONTENT_LENGTH", "") or 0
        if name == "vars":
            return _vars(environ)
        if name == "pktsize":
            return _pktsize(environ)
        if name == "switches":
            return 1
        if name == "core":
            return 0
        if name == "rss" or name == "vsz":
            return _memory(name)
        if name.startswith("var."):
            return environ.get(name[4:], "")
        return "-"


# the names _value knows: any other name in a log-format is a logvar
_KNOWN = frozenset(
    "addr method uri proto status size rsize hsize headers msecs micros pid wid reqnum "
    "total ctime ltime ftime secs time epoch tmsecs tmicros uagent referer host user cl "
    "vars pktsize switches core rss vsz".split()
)
LOGVARS = "uwsgi.logvars"  # the environ key uwsgi.set_logvar fills (api.logvars)


# The CGI variables (the upper-case keys) of the environs seen, by their keys in
# order, with the bytes of those names: a worker's requests nearly all have the
# same keys in the same order, so a line finds them with one lookup instead of
# testing every key (bounded: environs that never repeat fill it, and it starts
# again).
_SHAPES: dict[tuple, tuple[tuple[str, ...], int]] = {}
_SHAPES_MAX = 64


def _cgi_keys(environ: dict) -> tuple[tuple[str, ...], int]:
    """The upper-case keys of ``environ`` in order, and the sum of their lengths."""
    keys = tuple(environ)
    try:
        return _SHAPES[keys]
    except KeyError:
        pass
    cgi = tuple(filter(str.isupper, keys))
    found = cgi, sum(map(len, cgi))
    if len(_SHAPES) >= _SHAPES_MAX:
        _SHAPES.clear()
    _SHAPES[keys] = found
    return found


def _vars(environ: dict, shape: tuple | None = None) -> int:
    """uWSGI's ``vars``: how many CGI variables (the upper-case keys)."""
    return len((shape or _cgi_keys(environ))[0])


def _pktsize(environ: dict, shape: tuple | None = None) -> int:
    """uWSGI's ``pktsize``, approximated: the bytes of the CGI variables (the
    upper-case keys with text values). Counted without a Python-level loop when
    every such value is text, as the server puts them."""
    keys, size = shape or _cgi_keys(environ)
    values = list(map(environ.__getitem__, keys))
    try:
        return size + len("".join(values))  # (in C; str subclasses are text too)
    except TypeError:  # a value that is not text (an app put it there): not counted
        return sum(len(k) + len(v) for k, v in zip(keys, values, strict=True) if isinstance(v, str))


_last_ctime: tuple[int, str] = (-1, "")  # the second last formatted by _ctime, and its text


def _ctime(when: float) -> str:
    """``time.ctime(when)`` (whole seconds), formatted once per second (the pair is
    replaced whole, so a reader never sees one second's text under another's)."""
    global _last_ctime
    second = int(when)
    last = _last_ctime
    if last[0] != second:
        last = _last_ctime = (second, time.ctime(second))
    return last[1]


def _by_name(name: str):
    """The slow path for a variable without its own getter (``var.NAME``, a logvar)."""
    if name not in _KNOWN and not name.startswith("var."):

        def logvar(self, environ, status, rsize, hsize, nheaders, start, end, reqnum, total):
            found = environ.get(LOGVARS)
            return found.get(name, "-") if found else "-"

        return logvar

    def get(self, environ, status, rsize, hsize, nheaders, start, end, reqnum, total):
        return self._value(name, environ, status, rsize, hsize, nheaders, start, end, reqnum, total)

    return get


# the variables of the default line (and the common ones) as expressions over the
# arguments of RequestLogger.line (s: the logger, e: the environ, st: the status,
# rs/hs: body and head bytes, nh: headers, t0/t1: start and end, rq/tot: the
# worker's and the instance's request counts)
_INLINE = {
    "addr": '(e["HTTP_X_FORWARDED_FOR"] if s.x_forwarded_for and e.get("HTTP_X_FORWARDED_FOR") '
    'else e.get("REMOTE_ADDR", ""))',
    "uri": '(e["REQUEST_URI"] if "REQUEST_URI" in e else _uri(e))',
    "method": 'e.get("REQUEST_METHOD", "")',
    "proto": 'e.get("SERVER_PROTOCOL", "")',
    "status": "st[:3]",
    "size": "rs",
    "rsize": "rs",
    "hsize": "hs",
    "headers": "nh",
    "msecs": "int((t1 - t0) * 1000)",
    "micros": "int((t1 - t0) * 1000000)",
    "pid": "s.pid",
    "wid": "s.wid",
    "reqnum": "rq",
    "total": "tot",
    "ctime": "_ctime(t0)",
    "user": 'e.get("REMOTE_USER", "")',
    "vars": "_vars(e, c)",
    "pktsize": "_pktsize(e, c)",
    "switches": "1",
    "core": "0",
}
_ARGS = "s, e, st, rs, hs, nh, t0, t1, rq, tot"


def _uri(e: dict) -> str:
    uri = e.get("SCRIPT_NAME", "") + e.get("PATH_INFO", "")
    if e.get("QUERY_STRING"):
        uri += "?" + e["QUERY_STRING"]
    return uri


def compile_line(literals: tuple[str, ...], names: tuple[str, ...]):
    """One function returning a whole line (its newline included): the literal pieces
    and the values of ``names`` in turn, as one f-string; the common variables
    as inline expressions of the generated function, any other through its
    getter. The generated text is made only of this module's fixed expressions
    and indices: the literal pieces are read from a tuple (``L[i]``), so nothing
    a ``log-format`` says is ever part of it."""
    getters = tuple(None if name in _INLINE else _by_name(name) for name in names)
    exprs = [_INLINE.get(name) or f"g[{i}]({_ARGS})" for i, name in enumerate(names)]
    parts = [f"{{L[{i}]}}{{{expr}}}" for i, expr in enumerate(exprs)]
    # vars and pktsize share one look at the environ's keys (``c``)
    shape = "    c = _cgi_keys(e)\n" if {"vars", "pktsize"} & set(names) else ""
    source = f"def line({_ARGS}):\n{shape}    return f'''{''.join(parts)}{{L[{len(exprs)}]}}'''\n"
    namespace = {"g": getters, "L": (*literals[:-1], literals[-1] + "\n"), "_ctime": _ctime}
    namespace.update(_vars=_vars, _pktsize=_pktsize, _uri=_uri, _cgi_keys=_cgi_keys)
    exec(compile(source, "<log-format>", "exec"), namespace)  # noqa: S102
    return namespace["line"]


def _memory(which: str) -> int:
    try:
        with open("/proc/self/statm") as fh:
            vsz, rss = fh.read().split()[:2]
    except OSError:
        return 0
    page = os.sysconf("SC_PAGE_SIZE")
    return int(rss if which == "rss" else vsz) * page
