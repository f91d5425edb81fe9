"""Log lines: the master's messages and one line per request.

Owns: where lines go (stderr, or ``logto`` opened for appending and reopened on
request), ``log-date``, uWSGI's default request line and ``log-format`` with its
``%(name)`` variables. Each line is one ``os.write`` of a whole line on an
``O_APPEND`` descriptor, so the master's and every worker's lines never interleave.

Must not know: HTTP, WSGI, workers beyond the numbers it is given.
"""

from __future__ import annotations

import os
import re
import sys
import time

__all__ = ["Log", "RequestLogger", "compile_format"]


class Log:
    """The process-wide log. ``Log.fd`` is written by master and workers alike."""

    def __init__(self) -> None:
        self.fd = 2
        self.path: str | None = None
        self.date = False
        self.date_format: str | None = None
        self.failed = False
        # where "the log cannot grow" is said: stderr as it was before logto took it
        self.notice_fd = 2

    def configure(self, cfg) -> None:
        self.date = bool(cfg.get("log-date"))
        value = cfg.get("log-date")
        if isinstance(value, str) and "%" in value:
            self.date_format = value
        path = cfg.get("logto") or cfg.get("daemonize") or None
        if path and path != self.path:
            self.path = path
            self.reopen()

    def reopen(self) -> None:
        """Reopen ``logto`` (after an external rotation)."""
        if not self.path:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        if self.fd > 2:
            os.dup2(fd, self.fd)
            os.close(fd)
        else:
            self.fd = fd
            if self.notice_fd == 2:
                try:
                    self.notice_fd = os.dup(2)
                    os.set_inheritable(self.notice_fd, False)
                except OSError:
                    pass
        # the app's print() and tracebacks go there too
        os.dup2(self.fd, 2)
        os.set_inheritable(self.fd, False)

    def prefix(self) -> str:
        if not self.date:
            return ""
        if self.date_format:
            return time.strftime(self.date_format) + " "
        return time.strftime("%a %b %d %H:%M:%S %Y - ")

    def write(self, text: str) -> None:
        """Write whole lines; a log that cannot grow (full disk) is said once on
        stderr and then skipped, never fatal."""
        data = text.encode("utf-8", "backslashreplace")
        try:
            os.write(self.fd, data)
        except OSError as exc:
            if not self.failed:
                self.failed = True
                try:
                    os.write(
                        self.notice_fd,
                        f"procmaster (pid {os.getpid()}): cannot write the log: {exc.strerror}; "
                        "serving goes on\n".encode(),
                    )
                except OSError:
                    pass
        else:
            self.failed = False

    def __call__(self, message: str) -> None:
        self.write(f"{self.prefix()}{message}\n")


log = Log()


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


class RequestLogger:
    """Formats one line per request; the worker passes what it measured."""

    def __init__(self, cfg, wid: int) -> None:
        fmt = cfg.get("log-format") or DEFAULT_FORMAT
        self.template, self.names = compile_format(fmt)
        self.wid = wid
        self.pid = os.getpid()
        self.x_forwarded_for = bool(_option(cfg, "log-x-forwarded-for"))

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
        values = []
        for name in self.names:
            values.append(
                self._value(
                    name, environ, status, rsize, hsize, nheaders, start, end, reqnum, total
                )
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
            return sum(1 for k in environ if k.isupper())
        if name == "pktsize":
            return sum(
                len(k) + len(v) for k, v in environ.items() if k.isupper() and type(v) is str
            )
        if name == "switches":
            return 1
        if name == "core":
            return 0
        if name == "rss" or name == "vsz":
            return _memory(name)
        if name.startswith("var."):
            return environ.get(name[4:], "")
        return "-"


def _memory(which: str) -> int:
    try:
        with open("/proc/self/statm") as fh:
            vsz, rss = fh.read().split()[:2]
    except OSError:
        return 0
    page = os.sysconf("SC_PAGE_SIZE")
    return int(rss if which == "rss" else vsz) * page


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def _option(cfg, name: str):
    try:
        return cfg.get(name)
    except KeyError:
        return None
