"""The files the master opens before anything else (``logto``, ``logto2``,
``daemonize``, ``logger``/``req-logger = file:PATH``): ``log_problems`` says which
could not be opened, in the start's words. The start (``cli``) calls it first, so a
missing log directory is one clear line, not a traceback (and before
``daemonize`` takes the terminal away); ``--check`` reports the same lines.

It is its own module so that a start imports only this, not the whole check.

Must not know: how anything is served, what the lines are.
"""

from __future__ import annotations

import os

from . import udp_address

__all__ = ["LOG_OPTIONS", "file_problem", "log_problems", "logger_path"]

LOG_OPTIONS = ("logto", "logto2", "daemonize")


def logger_path(value: str) -> str | None:
    """The file of ``[name ]file:PATH`` or ``file:logfile=PATH,...``; None for
    other loggers (the log part reports those)."""
    head, sep, rest = value.strip().partition(" ")
    if sep and ":" not in head:
        value = rest.strip()  # a named logger
    if not value.startswith("file:"):
        return None
    path = value[5:]
    if path.startswith("logfile="):
        path = path[8:].split(",", 1)[0]
    return path or None


def file_problem(where: str, what: str, path: str) -> str | None:
    if udp_address(path) is not None:
        return None  # HOST:PORT: logged over UDP, as uWSGI
    if os.path.isdir(path):
        return f"{where}: {what} {path!r} is a directory"
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            return f"{where}: {what} {path!r} is not writable"
        return None
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"{where}: cannot create {what} {path!r}: directory {directory!r} does not exist"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"{where}: cannot create {what} {path!r}: directory {directory!r} is not writable"
    return None


def log_problems(cfg) -> list[str]:
    """Log files the master could not open (relative paths: to the directory
    procmaster starts in, as the master opens them before ``chdir``)."""
    wanted: list[tuple[str, str]] = []
    for option in LOG_OPTIONS:
        value = cfg.get(option)
        if value:
            wanted.append((f"{cfg.origin(option)}: option '{option}'", value))
    for option in ("logger", "req-logger"):
        for index, value in enumerate(cfg.get(option) or []):
            path = logger_path(value)
            if path:
                wanted.append((f"{cfg.origin(option, index)}: option '{option}'", path))
    problems = []
    for where, path in wanted:
        problem = file_problem(where, "log file", path)
        if problem and problem not in problems:
            problems.append(problem)
    return problems
