"""Log lines: the master's messages and one line per request.

Theory of operation
-------------------
Lines go to the plain log: stderr, or ``logto``/the first unnamed
``logger = file:...``/``daemonize = PATH`` (``logto2``: once privileges are
dropped, ``open_logto2``), opened for appending, made the
process's stderr (so the app's ``print`` and tracebacks land there too) and
reopened on request; rotation at ``log-maxsize`` (or the file logger's
``maxsize``) to ``log-backupname`` or ``LOG.<epoch>``. Each line is one
``os.write`` of a whole line on an ``O_APPEND`` descriptor, so the master's and
every worker's lines never interleave.

When more is configured (other loggers, named loggers with ``log-route``,
``log-encoder``; for request lines ``req-logger``, ``log-req-route``,
``log-req-encoder``), a ``sinks.Pipeline`` decides per line as uWSGI's log
master does; without any, a line is written directly (the request path pays
one attribute test). The pipeline runs in the process that writes the line;
with ``log-master`` the children's own stdout/stderr are pipes the master reads
(``capture``) and runs through it line by line, else those bytes go to the plain
log file as they are (not encoded or routed).

``log-date`` prefixes the lines procmaster writes (``ctime - `` or
``FORMAT - ``, uWSGI's prefix), never request lines: uWSGI 2.0 writes request
lines (``uwsgi_logit_simple``/``uwsgi_logit_lf``) without the date either; use
``%(ltime)``/``%(ftime)`` in ``log-format`` for a dated request line.

Rotation with no line lost: after each write a process compares its file's size
with the limit; past it, it takes an ``flock`` on the file, renames it only if
the path still names that same file (else another process rotated already), and
reopens the path (``sinks.rotate_shared``). A process still holding the old file
writes at most one more line there (into the backup, not lost) before it
notices and reopens.

Must not know: HTTP, WSGI, workers beyond the numbers it is given.
"""

from __future__ import annotations

import os
import socket
import sys
import time

from .encoders import parse_encoders
from .request import DEFAULT_FORMAT, RequestLogger, compile_format, request_logger
from .sinks import (
    PLUGINS,
    FdSink,
    FileSink,
    LoggerError,
    Pipeline,
    backup_name,
    move_aside,
    open_append,
    parse_logger,
    parse_route,
    rotate_shared,
)
from .syslog import RsyslogSink, SyslogSink

__all__ = [
    "DEFAULT_FORMAT",
    "Log",
    "RequestLogger",
    "compile_format",
    "log",
    "request_logger",
    "udp_address",
]


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
        self.maxsize = 0
        self.backupname: str | None = None
        self.pipeline: Pipeline | None = None  # all lines, when loggers/routes/encoders
        self.req_pipeline: Pipeline | None = None  # request lines, with req-logger & co
        self.sinks: list = []  # what the pipelines opened (closed when reconfigured)
        self.stderr_taken = False  # fd 2 is a log-master pipe (this is a child)
        self.rsyslog = (1024, False)  # rsyslog-packet-size, rsyslog-split-messages

    def configure(self, cfg) -> None:
        value = cfg.log_date
        self.date = value is not False
        self.date_format = value if isinstance(value, str) and "%" in value else None
        self.maxsize = cfg.log_maxsize
        self.backupname = cfg.log_backupname
        problems: list[str] = []
        loggers = _specs(cfg.logger, "logger", problems)
        req_loggers = _specs(cfg.req_logger, "req-logger", problems)
        main = next((s for s in loggers if s.name is None and s.plugin == "file"), None)
        # logto2 is opened later, once privileges are dropped (``open_logto2``)
        late = cfg.logto2 if not cfg.get("logto") else None
        path = cfg.get("logto") or (self.path if late and self.path == late else None)
        path = path or (None if late else (main.path if main else None))
        path = path or (None if late else cfg.get("daemonize")) or None
        if main is not None and path == main.path and main.maxsize:
            self.maxsize, self.backupname = main.maxsize, main.backupname
        if path and path != self.path:
            self.path = path
            self.reopen()
        for sink in self.sinks:
            if isinstance(sink, FileSink):
                os.close(sink.fd)
            elif isinstance(sink, (SyslogSink, RsyslogSink)):
                sink.close()
        self.rsyslog = (cfg.rsyslog_packet_size, cfg.rsyslog_split_messages)
        self.sinks = []
        self.pipeline = self.req_pipeline = None
        if main is not None and path != main.path:
            main = None  # logto wins the plain log; that file logger is one more
        named = {s.name: self._sink(s) for s in loggers if s.name is not None}
        unnamed = [self._sink(s) for s in loggers if s.name is None and s is not main]
        if main is not None:
            unnamed.insert(0, _Plain(self))
        routes = _routes(cfg.log_route, named, "log-route", problems)
        encoders = parse_encoders(cfg.log_encoder)
        if len(unnamed) > 1 or routes or encoders or (unnamed and main is None):
            self.pipeline = Pipeline(unnamed, routes, encoders, self.write_raw)
        req_routes = _routes(cfg.log_req_route, named, "log-req-route", problems)
        req_encoders = parse_encoders(cfg.log_req_encoder)
        if req_loggers or req_routes or req_encoders:
            req_unnamed = [self._sink(s) for s in req_loggers if s.name is None]
            self.req_pipeline = Pipeline(req_unnamed, req_routes, req_encoders, self.write_raw)
        for problem in problems:
            self(f"warning: {problem}")

    def _sink(self, spec):
        if spec.plugin == "file":
            sink = FileSink(spec, self.notice)
        elif spec.plugin == "fd":
            sink = FdSink(int(spec.arg))
        elif spec.plugin == "syslog":
            sink = SyslogSink(spec.arg, self.notice)
        elif spec.plugin == "rsyslog":
            sink = RsyslogSink(spec.arg, self.notice, *self.rsyslog)
        else:  # stdio: stderr as the process got it
            sink = FdSink(self.notice_fd)
        self.sinks.append(sink)
        return sink

    def open_logto2(self, cfg) -> None:
        """``logto2``: the log file opened after privileges are dropped (as uWSGI),
        so it is created by, and belongs to, the user the processes run as."""
        path = cfg.logto2
        if path and not cfg.get("logto") and path != self.path:
            self.path = path
            self.reopen()

    def reopen(self) -> None:
        """Reopen ``logto`` (after an external rotation), and the loggers' files."""
        for sink in self.sinks:
            sink.reopen()
        if not self.path:
            return
        fd = open_log(self.path)
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
        # the app's print() and tracebacks go there too (unless log-master reads them)
        if not self.stderr_taken:
            os.dup2(self.fd, 2)
        os.set_inheritable(self.fd, False)

    def reopen_if_moved(self) -> None:
        """A process whose loop starts now (a new worker) reopens ``logto`` when
        the path no longer names the file it holds: a rotation done while it was
        starting, before it could act on the master's reopen request, must not
        leave it writing into the rotated file. Never fatal."""
        if not self.path or self.fd < 0:
            return
        try:
            held, named = os.fstat(self.fd), os.stat(self.path)
            if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
                return
        except OSError:
            pass  # gone from its path (renamed, not yet reopened): open it anew
        try:
            self.reopen()
        except OSError:
            pass

    def backup_path(self) -> str:
        """Where ``log-maxsize`` rotation moves the full file."""
        return backup_name(self.path or "", self.backupname)

    def rotate(self) -> str:
        """A rotation asked for (``touch-logrotate``, master FIFO ``L``), as uWSGI's
        ``uwsgi_log_do_rotate``: the file is renamed to ``log-backupname`` (a fixed
        name is replaced, as uWSGI), else to ``LOG.<epoch>``, after the line
        ``logsize: N, triggering rotation to NAME...`` is written to it. The
        ``<epoch>`` backup is made with ``link``, so it never replaces an earlier
        one (``.1``, ``.2`` … within one second). Returns the backup's name; the
        caller reopens. Raises ``OSError`` (also when there is no file)."""
        if not self.path:
            raise FileNotFoundError("no logto file to rotate")
        if self.backupname:
            self._say_rotation(self.backupname)
            os.replace(self.path, self.backupname)
            return self.backupname
        return move_aside(self.path, self._say_rotation)

    def _say_rotation(self, backup: str) -> None:
        """uWSGI's last line in a rotated file (when ``fd`` is that file)."""
        try:
            st, path = os.fstat(self.fd), os.stat(self.path or "")
            if (st.st_dev, st.st_ino) == (path.st_dev, path.st_ino):
                os.write(
                    self.fd, f"logsize: {st.st_size}, triggering rotation to {backup}...\n".encode()
                )
        except OSError:
            pass

    def rotate_if_full(self) -> None:
        """``log-maxsize``: rotate (once across all processes) and reopen."""
        try:
            if rotate_shared(self.fd, self.path or "", self.backupname, self.maxsize):
                sinks, self.sinks = self.sinks, []
                try:
                    self.reopen()
                finally:
                    self.sinks = sinks
        except OSError as exc:
            if not self.failed:
                self.failed = True
                try:
                    os.write(2, f"procmaster: cannot rotate the log: {exc.strerror}\n".encode())
                except OSError:
                    pass

    def write_request(self, text: str) -> None:
        """A request line: through the request pipeline when there is one, else
        as any other line (without the date, as uWSGI)."""
        pipeline = self.req_pipeline or self.pipeline
        if pipeline is None:
            self.write_raw(text.encode("utf-8", "backslashreplace"))
        else:
            pipeline.emit(text.encode("utf-8", "backslashreplace"))

    def prefix(self) -> str:
        if not self.date:
            return ""
        if self.date_format:
            return time.strftime(self.date_format) + " - "
        return time.ctime() + " - "

    def write(self, text: str) -> None:
        """Write whole lines (through the pipeline when there is one)."""
        if self.pipeline is None:
            self.write_raw(text.encode("utf-8", "backslashreplace"))
        else:
            self.pipeline.emit(text.encode("utf-8", "backslashreplace"))

    def write_app(self, line: bytes) -> None:
        """A whole line a child wrote on its stdout/stderr (log-master): through
        the pipeline when there is one, as uWSGI's log master does."""
        if self.pipeline is None:
            self.write_raw(line)
        else:
            self.pipeline.emit(line)

    def detach_stderr(self) -> None:
        """In a child whose fd 1 and 2 are about to become a log-master pipe: the
        lines procmaster writes itself keep going where they went."""
        self.stderr_taken = True
        try:
            if self.fd == 2:
                self.fd = os.dup(2)
                os.set_inheritable(self.fd, False)
            if self.notice_fd == 2:
                self.notice_fd = os.dup(2)
                os.set_inheritable(self.notice_fd, False)
        except OSError:
            pass

    def write_raw(self, data: bytes) -> None:
        """To the plain log; a log that cannot grow (full disk) is said once on
        stderr and then skipped, never fatal."""
        try:
            os.write(self.fd, data)
        except OSError as exc:
            if not self.failed:
                self.failed = True
                self.notice(f"cannot write the log: {exc.strerror}; serving goes on")
        else:
            self.failed = False
            if self.maxsize and self.path and udp_address(self.path) is None:
                self.rotate_if_full()

    def notice(self, message: str) -> None:
        """Said on stderr as the process got it (the log itself may be the problem)."""
        try:
            os.write(self.notice_fd, f"procmaster (pid {os.getpid()}): {message}\n".encode())
        except OSError:
            pass

    def __call__(self, message: str) -> None:
        self.write(f"{self.prefix()}{message}\n")


def udp_address(path: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (no ``/``), which uWSGI's ``logto``/``logto2``/``daemonize``
    read as a UDP address, one datagram per line; else None (a file)."""
    host, sep, port = path.rpartition(":")
    if sep and host and "/" not in path and port.isdigit() and 0 < int(port) < 65536:
        return host, int(port)
    return None


def open_log(path: str) -> int:
    """The plain log's descriptor: a file opened for appending, or a UDP socket
    connected to ``HOST:PORT`` (each ``write`` of a line is one datagram)."""
    address = udp_address(path)
    if address is None:
        return open_append(path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock.detach()


class _Plain:
    """The plain log as a pipeline's logger (the first unnamed file logger)."""

    def __init__(self, owner: Log) -> None:
        self.write = owner.write_raw

    def reopen(self) -> None:
        pass


log = Log()


def _specs(values: list[str], option: str, problems: list[str]) -> list:
    """The loggers procmaster has (file, fd, stdio); others are reported in
    ``problems`` and skipped."""
    specs = []
    for value in values:
        try:
            spec = parse_logger(value)
        except LoggerError as exc:
            problems.append(f"{option}: {exc}; ignored")
            continue
        if spec.plugin in PLUGINS:
            specs.append(spec)
        else:
            problems.append(
                f"{option} = {value}: the {spec.plugin!r} logger does not exist in "
                f"procmaster ({', '.join(PLUGINS)}); ignored"
            )
    return specs


def _routes(values: list[str], named: dict, option: str, problems: list[str]) -> list:
    routes = []
    for value in values:
        try:
            name, regex = parse_route(value)
        except LoggerError as exc:
            problems.append(f"{option}: {exc}; ignored")
            continue
        if name not in named:
            problems.append(f"{option} = {value}: no logger is named {name!r}; ignored")
            continue
        routes.append((regex, named[name], name))
    return routes


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
