"""Log lines: the master's messages and one line per request.

Owns: where lines go (stderr, or ``logto``/``logto2``/``logger = file:PATH``/
``daemonize = PATH`` opened for appending and reopened on request; request lines to
``req-logger = file:PATH`` when given), rotation at ``log-maxsize`` (to
``log-backupname`` or ``LOG.<epoch>``), ``log-date``, uWSGI's default request line,
``log-format`` with its ``%(name)`` variables and ``memory-report``. Each line is
one ``os.write`` of a whole line on an ``O_APPEND`` descriptor, so the master's and
every worker's lines never interleave.

Rotation with no line lost: after each write a process compares its file's size
with ``log-maxsize``; past it, it takes an ``flock`` on the file, renames it only
if the path still names that same file (else another process rotated already),
and reopens the path. A process still holding the old file writes at most one
more line there (into the backup, not lost) before it notices and reopens.

Must not know: HTTP, WSGI, workers beyond the numbers it is given.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import time

__all__ = ["Log", "RequestLogger", "compile_format"]


class Log:
    """The process-wide log. ``Log.fd`` is written by master and workers alike."""

    def __init__(self, main: bool = True) -> None:
        self.fd = 2
        self.path: str | None = None
        self.date = False
        self.date_format: str | None = None
        self.failed = False
        # where "the log cannot grow" is said: stderr as it was before logto took it
        self.notice_fd = 2
        self.main = main  # the process-wide log: stderr is made to point at it
        self.maxsize = 0
        self.backupname: str | None = None
        self.requests: Log | None = None  # req-logger = file:PATH

    def configure(self, cfg) -> None:
        self.date = bool(cfg.get("log-date"))
        value = cfg.get("log-date")
        if isinstance(value, str) and "%" in value:
            self.date_format = value
        self.maxsize = cfg.log_maxsize
        self.backupname = cfg.log_backupname
        problems = []
        loggers = _file_loggers(cfg.logger, "logger", problems)
        req_loggers = _file_loggers(cfg.req_logger, "req-logger", problems)
        path = (
            cfg.get("logto")
            or cfg.logto2
            or (loggers[-1] if loggers else None)
            or cfg.get("daemonize")
            or None
        )
        if path and path != self.path:
            self.path = path
            self.reopen()
        if req_loggers and (self.requests is None or self.requests.path != req_loggers[-1]):
            self.requests = Log(main=False)
            self.requests.path = req_loggers[-1]
            self.requests.reopen()
        if self.requests is not None:
            self.requests.maxsize, self.requests.backupname = self.maxsize, None
        for problem in problems:
            self(f"warning: {problem}")

    def reopen(self) -> None:
        """Reopen ``logto`` (after an external rotation), and the request log."""
        if self.requests is not None:
            self.requests.reopen()
        if not self.path:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        if self.fd > 2:
            os.dup2(fd, self.fd)
            os.close(fd)
        else:
            self.fd = fd
        if self.main:
            if self.notice_fd == 2:
                try:
                    self.notice_fd = os.dup(2)
                    os.set_inheritable(self.notice_fd, False)
                except OSError:
                    pass
            # the app's print() and tracebacks go there too
            os.dup2(self.fd, 2)
        os.set_inheritable(self.fd, False)

    def backup_path(self) -> str:
        """Where ``log-maxsize`` rotation moves the full file."""
        if self.backupname:
            return self.backupname
        base = f"{self.path}.{int(time.time())}"
        candidate, n = base, 0
        while os.path.exists(candidate):
            n += 1
            candidate = f"{base}.{n}"
        return candidate

    def rotate(self) -> str:
        """A rotation asked for (``touch-logrotate``, master FIFO ``L``): rename the
        file to ``log-backupname``, else ``LOG.<YYYYmmdd-HHMMSS>``, and return that
        name; the caller reopens. Raises ``OSError`` (also when there is no file)."""
        if not self.path:
            raise FileNotFoundError("no logto file to rotate")
        backup = self.backupname or f"{self.path}.{time.strftime('%Y%m%d-%H%M%S')}"
        os.replace(self.path, backup)
        return backup

    def rotate_if_full(self) -> None:
        """``log-maxsize``: rotate (once across all processes) and reopen."""
        try:
            if os.fstat(self.fd).st_size < self.maxsize:
                return
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                mine = os.fstat(self.fd)
                try:
                    there = os.stat(self.path)
                except FileNotFoundError:
                    there = None
                if there is not None and (there.st_ino, there.st_dev) == (
                    mine.st_ino,
                    mine.st_dev,
                ):
                    os.replace(self.path, self.backup_path())
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            requests, self.requests = self.requests, None
            try:
                self.reopen()
            finally:
                self.requests = requests
        except OSError as exc:
            if not self.failed:
                self.failed = True
                try:
                    os.write(2, f"procmaster: cannot rotate the log: {exc.strerror}\n".encode())
                except OSError:
                    pass

    def write_request(self, text: str) -> None:
        """A request line: to ``req-logger`` when there is one, else with the rest."""
        (self.requests or self).write(text)

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
            if self.maxsize and self.path:
                self.rotate_if_full()

    def __call__(self, message: str) -> None:
        self.write(f"{self.prefix()}{message}\n")


log = Log()


def _file_loggers(values: list[str], option: str, problems: list[str]) -> list[str]:
    """The paths of ``file:PATH`` loggers (uWSGI's ``logger = [name ]file:PATH``);
    other logger plugins are reported in ``problems``."""
    paths = []
    for value in values:
        spec = value.split(" ", 1)[-1] if " " in value.strip() else value
        kind, sep, arg = spec.strip().partition(":")
        if kind == "file" and sep and arg:
            paths.append(arg)
        else:
            problems.append(
                f"{option} = {value}: only file:PATH loggers exist in procmaster; ignored"
            )
    return paths


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
        self.x_forwarded_for = cfg.log_x_forwarded_for
        self.memory_report = cfg.memory_report

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
