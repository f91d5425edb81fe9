"""uWSGI's user locks (``locks = N``; ``uwsgi.lock(n)``): shared by every process of a master.

Theory of operation
-------------------
The master makes one anonymous file (``memfd``) before it forks; lock ``n`` is a
POSIX record lock on byte ``n`` of it. Record locks belong to a process and the
kernel drops them when the process dies, so a worker killed while holding a lock
(harakiri, SIGKILL, a segfault) never leaves the others waiting forever: the
robustness uWSGI gets from robust mutexes. Threads of one process are kept apart
by a ``threading.Lock`` per lock taken before the record lock, because record
locks do not separate threads of the same process.

uWSGI always has lock 0 (``locks`` adds user locks after it): ``lock()`` with no
argument is lock 0, and ``locks = N`` gives locks 0..N.

Must not know: who calls (the ``uwsgi`` module's face), workers, the config.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading

__all__ = ["Locks", "LockError"]

# struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
_FLOCK = struct.Struct("hhqqi4x")


class LockError(ValueError):
    """A lock number that does not exist."""


class Locks:
    """``count`` locks (numbered 0..count-1) shared across fork."""

    def __init__(self, count: int, fd: int | None = None) -> None:
        self.count = max(1, count)
        self.fd = fd if fd is not None else os.memfd_create("procmaster-locks", 0)
        os.ftruncate(self.fd, self.count)
        self._local = [threading.Lock() for _ in range(self.count)]

    def after_fork(self) -> None:
        """In the child: locks held by threads of the parent are not ours."""
        self._local = [threading.Lock() for _ in range(self.count)]

    def _check(self, n: int) -> int:
        if not isinstance(n, int) or not 0 <= n < self.count:
            raise LockError(
                f"lock {n!r} does not exist: this instance has locks 0..{self.count - 1}"
                " (set 'locks = N' for more)"
            )
        return n

    def lock(self, n: int = 0) -> None:
        """Wait for lock ``n`` and take it."""
        self._local[self._check(n)].acquire()
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, n, os.SEEK_SET)
        except BaseException:
            self._local[n].release()
            raise

    def unlock(self, n: int = 0) -> None:
        """Give lock ``n`` back (a lock this process does not hold: nothing happens)."""
        local = self._local[self._check(n)]
        if not local.locked():
            return
        fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, n, os.SEEK_SET)
        local.release()

    def is_locked(self, n: int = 0) -> bool:
        """Whether anyone (this process included) holds lock ``n`` now."""
        if self._local[self._check(n)].locked():
            return True
        probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, n, 1, 0)
        answer = fcntl.fcntl(self.fd, fcntl.F_GETLK, probe)
        return _FLOCK.unpack(answer)[0] != fcntl.F_UNLCK
