"""The vassal's side of the emperor pipe: a master run by an emperor.

Theory of operation
-------------------
The emperor starts each vassal with one end of a socketpair, its fd number in
``PROCMASTER_EMPEROR_FD`` (``procmaster.ipc.EMPEROR_FD_ENV``). The master wraps
it in an ``EmperorLink``, puts ``fileno()`` in its selector, and ``read()``s the
emperor's words (``stop``, ``reload``) when it is readable; ``None`` means EOF:
the emperor is gone, and the master stops. The master ``send``\\ s ``ready`` once
its workers are ready (``ready_sent`` remembers it for this image). The words and
their line format are ``procmaster.ipc``'s.

Must not know: what the master does with a word, or anything of the emperor
beyond the pipe.
"""

from __future__ import annotations

import os
import socket

from ..ipc import EMPEROR_FD_ENV, VASSAL_READY, LineReader, decode_words, encode_word

__all__ = ["EmperorLink"]


class EmperorLink:
    """A master's end of the pipe to its Emperor (when it runs as a vassal)."""

    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(False)
        self.reader = LineReader()
        self.ready_sent = False

    @classmethod
    def from_environ(cls) -> EmperorLink | None:
        """The link named by ``PROCMASTER_EMPEROR_FD``, or None (not a vassal)."""
        raw = os.environ.get(EMPEROR_FD_ENV, "")
        if not raw.isdigit():
            return None
        fd = int(raw)
        try:
            os.fstat(fd)
        except OSError:
            return None
        return cls(fd)

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[str] | None:
        """The words that arrived, or None when the Emperor has gone (EOF)."""
        lines: list[bytes] = []
        while True:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return None
            if not data:
                return None
            lines += self.reader.feed(data)
        return decode_words(lines)

    def send(self, message: str) -> None:
        """Tell the Emperor ``message`` (``ready``); a gone Emperor is not an error."""
        if message == VASSAL_READY:
            self.ready_sent = True
        try:
            self.sock.send(encode_word(message))
        except OSError:
            pass
