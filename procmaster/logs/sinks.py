"""Loggers and routes: where a log line goes when ``logger``, ``req-logger``,
``log-route``, ``log-req-route`` or an encoder is configured.

Theory of operation
-------------------
``logger = [NAME ]PLUGIN[:ARGS]`` (a NAME is the first word when it holds no
``:``, as uWSGI reads it). Plugins: ``file:PATH`` and the keyval form
``file:logfile=PATH[,maxsize=BYTES][,backupname=PATH]`` (rotated past maxsize
like ``log-maxsize``), ``fd:N``, ``stdio`` (stderr as the process got it), ``syslog[:NAME[,FACILITY]]``
and ``rsyslog:ADDRESS[,TAG[,PRI]]`` (datagrams to a syslog daemon: ``syslog``).

A ``Pipeline`` is uWSGI's log master's dispatch, run in the process that writes
the line: a line matching a route's regex goes to that route's named logger (to
every matching route), and no further; else to every unnamed logger; else to the
plain log (``logto`` or stderr). Encoders run before each write (``encoders``).
Request lines have their own pipeline when ``req-logger`` is given (with
``log-req-route`` and ``log-req-encoder``); otherwise they go through this one.
Routes name loggers of ``logger`` (not ``req-logger``), as in uWSGI.

Every process opens the files with ``O_APPEND`` and writes a whole line per
``os.write``, so lines never interleave; a file with maxsize is rotated once
across processes (``rotate_shared``).

Must not know: requests, workers, the master.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Callable

from .encoders import Encoder, encode
from .syslog import parse_rsyslog, parse_syslog

__all__ = [
    "FileSink",
    "LoggerError",
    "LoggerSpec",
    "Pipeline",
    "parse_logger",
    "parse_route",
    "rotate_shared",
]

PLUGINS = ("file", "fd", "stdio", "syslog", "rsyslog")


class LoggerError(ValueError):
    """A logger or route value that cannot be read (the message says why)."""


class LoggerSpec:
    """One ``logger``/``req-logger`` value, read."""

    __slots__ = ("name", "plugin", "arg", "path", "maxsize", "backupname")

    def __init__(self, name: str | None, plugin: str, arg: str) -> None:
        self.name, self.plugin, self.arg = name, plugin, arg
        self.path: str | None = None
        self.maxsize = 0
        self.backupname: str | None = None


def parse_logger(value: str) -> LoggerSpec:
    """``[NAME ]PLUGIN[:ARGS]``; raises ``LoggerError`` for a malformed ``file``
    keyval or a missing path. Unknown plugins are returned (the caller warns)."""
    text = value.strip()
    name = None
    head, space, rest = text.partition(" ")
    if space and ":" not in head:
        name, text = head, rest.strip()
    plugin, _, arg = text.partition(":")
    spec = LoggerSpec(name, plugin, arg)
    if plugin == "file":
        if "=" in arg:
            keys: dict[str, str] = {}
            for item in arg.split(","):
                key, eq, val = item.partition("=")
                if not eq:
                    raise LoggerError(f"{item!r} in {value!r}: expected KEY=VALUE")
                keys[key.strip()] = val
            unknown = set(keys) - {"logfile", "maxsize", "backupname"}
            if unknown:
                raise LoggerError(
                    f"{value!r}: unknown key {sorted(unknown)[0]!r} (logfile, maxsize, backupname)"
                )
            if not keys.get("logfile"):
                raise LoggerError(f"{value!r}: the logfile key is missing")
            spec.path = keys["logfile"]
            size = keys.get("maxsize", "0").strip()
            if not size.isdigit():
                raise LoggerError(f"{value!r}: maxsize must be a number of bytes")
            spec.maxsize = int(size)
            spec.backupname = keys.get("backupname") or None
        elif arg:
            spec.path = arg
        else:
            raise LoggerError(f"{value!r}: expected file:PATH or file:logfile=PATH,...")
    elif plugin == "fd" and not arg.strip().isdigit():
        raise LoggerError(f"{value!r}: expected fd:N")
    elif plugin in ("syslog", "rsyslog"):
        try:
            (parse_syslog if plugin == "syslog" else parse_rsyslog)(arg)
        except ValueError as exc:
            raise LoggerError(f"{value!r}: {exc}") from None
    return spec


def parse_route(value: str) -> tuple[str, re.Pattern]:
    """``log-route = NAME REGEX``."""
    name, _, regex = value.strip().partition(" ")
    if not name or not regex.strip():
        raise LoggerError(f"{value!r}: expected NAME REGEX")
    try:
        return name, re.compile(regex.strip().encode())
    except re.error as exc:
        raise LoggerError(f"{value!r}: bad regular expression: {exc}") from None


def backup_name(path: str, backupname: str | None) -> str:
    """Where a full file is moved: ``backupname``, else ``PATH.<epoch>`` (made
    unique when that name exists)."""
    if backupname:
        return backupname
    base = f"{path}.{int(time.time())}"
    candidate, n = base, 0
    while os.path.exists(candidate):
        n += 1
        candidate = f"{base}.{n}"
    return candidate


def rotate_shared(fd: int, path: str, backupname: str | None, maxsize: int) -> bool:
    """Past ``maxsize``: rename the file (once across every process writing it,
    under a lock on the file; only if ``path`` still names the file ``fd`` is).
    True when the caller must reopen ``path``. Raises ``OSError``.

    The lock is a POSIX record lock (``lockf``), held per process: the workers
    share the master's open file description of the log, and ``flock`` (held per
    description) would let two of them rotate at once, the second renaming the
    new file over the first one's backup. A ``PATH.<epoch>`` backup is never
    overwritten either: it is made with ``link`` (which fails on an existing name)."""
    if os.fstat(fd).st_size < maxsize:
        return False
    fcntl.lockf(fd, fcntl.LOCK_EX)
    try:
        mine = os.fstat(fd)
        try:
            there = os.stat(path)
        except FileNotFoundError:
            there = None
        if there is not None and (there.st_ino, there.st_dev) == (mine.st_ino, mine.st_dev):
            if backupname:
                os.replace(path, backupname)
            else:
                move_aside(path)
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN)
    return True


def move_aside(path: str, linked: Callable[[str], None] | None = None) -> str:
    """Rename ``path`` to a ``PATH.<epoch>[.N]`` name that does not exist yet
    (made with ``link``, so an earlier backup is never replaced) and return it;
    ``linked(name)`` runs once the name is taken, before ``path`` goes."""
    while True:
        candidate = backup_name(path, None)
        try:
            os.link(path, candidate)
        except FileExistsError:
            continue  # taken meanwhile: the next number
        if linked is not None:
            linked(candidate)
        os.unlink(path)
        return candidate


def open_append(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)


class FileSink:
    """A ``file`` logger: its own descriptor, rotated past its maxsize."""

    def __init__(self, spec: LoggerSpec, notice: Callable[[str], None]) -> None:
        self.path = spec.path or ""
        self.maxsize = spec.maxsize
        self.backupname = spec.backupname
        self.notice = notice
        self.failed = False
        self.fd = open_append(self.path)

    def reopen(self) -> None:
        fd = open_append(self.path)
        os.dup2(fd, self.fd)
        os.close(fd)
        os.set_inheritable(self.fd, False)

    def write(self, data: bytes) -> None:
        try:
            os.write(self.fd, data)
            if self.maxsize and rotate_shared(self.fd, self.path, self.backupname, self.maxsize):
                self.reopen()
        except OSError as exc:
            if not self.failed:
                self.failed = True
                self.notice(f"cannot write the log file {self.path}: {exc.strerror}")
            return
        self.failed = False


class FdSink:
    """``fd:N`` and ``stdio``: a descriptor the process already has."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def reopen(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        try:
            os.write(self.fd, data)
        except OSError:
            pass


class Pipeline:
    """Routes, unnamed loggers and encoders for one kind of line (all lines, or
    request lines); ``plain`` writes to the plain log."""

    def __init__(
        self,
        unnamed: list,
        routes: list[tuple[re.Pattern, object, str]],
        encoders: list[Encoder],
        plain: Callable[[bytes], None],
    ) -> None:
        self.unnamed = unnamed
        self.routes = routes
        self.encoders = encoders
        self.plain = plain

    def emit(self, data: bytes) -> None:
        routed = False
        for regex, sink, name in self.routes:
            if regex.search(data) is not None:
                sink.write(encode(self.encoders, name, data))
                routed = True
        if routed:
            return
        for sink in self.unnamed:
            sink.write(encode(self.encoders, None, data))
        if not self.unnamed:
            self.plain(encode(self.encoders, None, data))
