"""Files a procmaster process writes whole or not at all: pidfiles.

A pidfile is written to an unpredictable temporary name in its own directory,
created with ``O_EXCL | O_NOFOLLOW`` (a planted file or symlink there is never
followed or overwritten), then renamed over the target. It is removed at exit
only while it still names this process.

Must not know: which process writes it, or why.
"""

from __future__ import annotations

import os

__all__ = ["remove_pidfile", "write_atomically", "write_pidfile"]


def _token() -> str:
    """64 random bits for a temporary's name (``secrets.token_hex(8)`` without
    importing ``secrets``, whose ``hmac``/``hashlib`` every start would pay for)."""
    return os.urandom(8).hex()


def write_atomically(path: str, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` by a file holding ``data``. Raises ``OSError``."""
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(16):
        tmp = os.path.join(directory, f".{base}.{_token()}.tmp")
        try:
            fd = os.open(tmp, flags, mode)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 16 collisions of 64 random bits
        raise FileExistsError(f"cannot create a temporary file beside {path}")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_pidfile(path: str, pid: int | None = None) -> None:
    """Write ``pid`` (this process by default) to ``path``. Raises ``OSError``."""
    write_atomically(path, b"%d\n" % (os.getpid() if pid is None else pid))


def remove_pidfile(path: str, pid: int | None = None) -> bool:
    """Remove ``path`` if it names ``pid`` (this process by default); True if removed."""
    pid = os.getpid() if pid is None else pid
    try:
        with open(path, "rb") as fh:
            if fh.read(32).strip() != str(pid).encode():
                return False
        os.unlink(path)
        return True
    except OSError:
        return False
