"""The vassal's end of the emperor's pipe: a master run by an emperor.

Theory of operation
-------------------
An emperor starts each vassal with ``PROCMASTER_EMPEROR_FD`` naming its end of a
socketpair. The master registers it in its selector; ``read`` gives the words
that arrived (``ipc.decode_words``: ``stop``, ``reload``), or None when the emperor
is gone (end of file); ``ready`` says ``ready`` once, when every worker of this
image accepts. A gone emperor is never an error when writing.

Must not know: what the words ask for (``procmaster.master.triggers`` maps them).
"""

from __future__ import annotations

import os
import socket

from ..ipc import EMPEROR_FD_ENV, VASSAL_READY, LineReader, read_words, send_word

__all__ = ["VassalLink"]


class VassalLink:
    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(False)
        self.lines = LineReader()
        self.ready_sent = False

    @classmethod
    def from_environ(cls) -> VassalLink | None:
        """The link named by ``PROCMASTER_EMPEROR_FD``, or None (not a vassal)."""
        raw = os.environ.get(EMPEROR_FD_ENV, "")
        if not raw.isdigit():
            return None
        try:
            os.fstat(int(raw))
        except OSError:
            return None
        return cls(int(raw))

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[str] | None:
        """The words that arrived, or None when the emperor has gone (EOF)."""
        return read_words(self.sock, self.lines)

    def ready(self) -> None:
        """Tell the emperor every worker accepts (once per image)."""
        if self.ready_sent:
            return
        self.ready_sent = True
        send_word(self.sock, VASSAL_READY)
