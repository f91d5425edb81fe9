"""On-demand vassals (socket activation): the Emperor binds a vassal's socket and
starts the vassal only when the first connection arrives.

Theory of operation
-------------------
As uWSGI 2.0's emperor, a vassal file has an on-demand socket when one of these
names one (the first configured wins, in this order):

* ``emperor-on-demand-extension = EXT``: the file ``VASSAL_PATH + EXT`` holds the
  socket's name (its first line; an empty or missing file: not on demand);
* ``emperor-on-demand-directory = DIR``: ``DIR/NAME.socket``, NAME the vassal's
  file name up to its last dot (``app.ini`` -> ``DIR/app.socket``);
* ``emperor-on-demand-exec = CMD``: the first line CMD prints when run (by the
  shell) with the vassal's path as its one argument.

A name with a ``:`` is TCP (``host:port``, ``:port`` for every address), else a
unix socket path (a stale file there is removed first). The loop watches the
bound socket; on its first readable event it stops watching and starts the
vassal with the socket as its stdin (fd 0): the vassal serves it (``sockets``
takes a listening fd 0 as an inherited socket), so the connection that woke it
is its first request. When the vassal exits, the socket is watched again (after
the usual back-off when it died early); the Emperor closes and removes it when
the file goes or the Emperor stops.

Must not know: protocols, WSGI, what the vassal does with the socket.
"""

from __future__ import annotations

import os
import socket
import subprocess

__all__ = ["OnDemand", "bind_on_demand", "socket_name"]

BACKLOG = 128


class OnDemand:
    """Which of uWSGI's three ways names on-demand sockets (None: none)."""

    def __init__(self, directory: str | None, extension: str | None, command: str | None) -> None:
        self.directory = directory
        self.extension = extension
        self.command = command

    def __bool__(self) -> bool:
        return bool(self.directory or self.extension or self.command)


def _first_line(text: str) -> str | None:
    """Up to the first control character (uWSGI's reading), None when empty."""
    for i, ch in enumerate(text):
        if ch < " ":
            text = text[:i]
            break
    return text or None


def socket_name(vassal_path: str, how: OnDemand) -> str | None:
    """The on-demand socket of the vassal file at ``vassal_path``, or None."""
    if how.extension:
        try:
            with open(vassal_path + how.extension, encoding="utf-8", errors="replace") as fh:
                return _first_line(fh.read(4096))
        except OSError:
            return None
    if how.directory:
        base = os.path.basename(vassal_path)
        stem, dot, _ = base.rpartition(".")
        if not dot:
            return None
        return os.path.join(how.directory, stem + ".socket")
    if how.command:
        try:
            done = subprocess.run(
                f'{how.command} "{vassal_path}"',
                shell=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return _first_line(done.stdout.decode("utf-8", "replace"))
    return None


def bind_on_demand(name: str) -> socket.socket:
    """Bind and listen on ``name`` (``host:port`` or a unix path). Raises ``OSError``."""
    host, colon, port = name.rpartition(":")
    if colon and port.isdigit():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, int(port)))
            sock.listen(BACKLOG)
        except BaseException:
            sock.close()
            raise
    else:
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(name)
            sock.listen(BACKLOG)
        except BaseException:
            sock.close()
            raise
    sock.set_inheritable(False)
    return sock


def close_on_demand(sock: socket.socket) -> None:
    """Close an on-demand socket and remove its unix path."""
    path = sock.getsockname() if sock.family == socket.AF_UNIX else None
    sock.close()
    if isinstance(path, str) and path and not path.startswith("\0"):
        try:
            os.unlink(path)
        except OSError:
            pass
