"""One line per request: uWSGI's default line, ``log-format`` and which requests
are logged.

Theory of operation
-------------------
``RequestLogger`` is built once per worker. ``compile_format`` turns a
``log-format`` into a ``str.format`` template and the names of its ``%(var)``
variables, so a line costs one ``format`` call and one lookup per variable.
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


def compile_format(fmt: str) -> tuple[str, tuple[str, ...]]:
    """``%(method) %(uri)`` -> (``"{0} {1}"``, ("method", "uri"))."""
    names: list[str] = []

    def repl(match: re.Match) -> str:
        names.append(match.group(1))
        return "{" + str(len(names) - 1) + "}"

    template = _VAR.sub(repl, fmt.replace("{", "{{").replace("}", "}}"))
    return template, tuple(names)


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
        self.template, self.names = compile_format(fmt)
        # the values of a line in one generated call (see compile_values)
        self.values = compile_values(self.names)
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
        values = self.values(
            self, environ, status, rsize, hsize, nheaders, start, end, reqnum, total
        )
        if self.memory_report:
            vsz, rss = _memory("vsz"), _memory("rss")
            return (
                f"{{address space usage: {vsz} bytes/{vsz >> 20}MB}} "
                f"{{rss usage: {rss} bytes/{rss >> 20}MB}} " + self.template.format(*values) + "\n"
            )
        return self.template.format(*values) + "\n"

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
            return time.ctime(start)
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


def _vars(environ: dict) -> int:
    """uWSGI's ``vars``: how many CGI variables (the upper-case keys)."""
    return sum(map(str.isupper, environ))


def _pktsize(environ: dict) -> int:
    """uWSGI's ``pktsize``, approximated: the bytes of the CGI variables (the
    upper-case keys with text values). Counted without a Python-level loop when
    every such value is text, as the server puts them."""
    keys = list(filter(str.isupper, environ))
    values = list(map(environ.__getitem__, keys))
    if set(map(type, values)) <= {str}:
        return sum(map(len, keys)) + sum(map(len, values))
    return sum(len(k) + len(v) for k, v in zip(keys, values, strict=True) if type(v) is str)


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
    "ctime": "ctime(t0)",
    "user": 'e.get("REMOTE_USER", "")',
    "vars": "_vars(e)",
    "pktsize": "_pktsize(e)",
    "switches": "1",
    "core": "0",
}
_ARGS = "s, e, st, rs, hs, nh, t0, t1, rq, tot"


def _uri(e: dict) -> str:
    uri = e.get("SCRIPT_NAME", "") + e.get("PATH_INFO", "")
    if e.get("QUERY_STRING"):
        uri += "?" + e["QUERY_STRING"]
    return uri


def compile_values(names: tuple[str, ...]):
    """One function returning the values of ``names`` for a line: the common
    variables as inline expressions of a generated function (a line costs one
    call, not one per variable), any other through its getter. The generated
    text is made only of this module's fixed expressions and indices: nothing a
    ``log-format`` says is ever part of it."""
    getters = tuple(None if name in _INLINE else _by_name(name) for name in names)
    exprs = [_INLINE.get(name) or f"g[{i}]({_ARGS})" for i, name in enumerate(names)]
    source = f"def values({_ARGS}):\n    return ({', '.join(exprs)}{',' if exprs else ''})\n"
    namespace = {"g": getters, "ctime": time.ctime, "_vars": _vars, "_pktsize": _pktsize}
    namespace["_uri"] = _uri
    exec(compile(source, "<log-format>", "exec"), namespace)  # noqa: S102
    return namespace["values"]


def _memory(which: str) -> int:
    try:
        with open("/proc/self/statm") as fh:
            vsz, rss = fh.read().split()[:2]
    except OSError:
        return 0
    page = os.sysconf("SC_PAGE_SIZE")
    return int(rss if which == "rss" else vsz) * page
