"""Spool files: uWSGI's task format, written whole or not at all, found and claimed.

Theory of operation
-------------------
A task is a dict of bytes to bytes, serialized as a uwsgi-protocol packet
(modifier1 17: a 4-byte header, then each key and value with a 16-bit
little-endian length) followed by the raw ``body`` when there is one, so spool
files left by uWSGI are read here and the other way round. The keys ``spooler``
(which spooler directory), ``priority`` (a numbered subdirectory, scanned first
when lower), ``at`` (not before this Unix time) and ``body`` steer the spooler.

``write_task`` writes a temporary name in the target directory (``O_EXCL |
O_NOFOLLOW``, random), flushes it to disk and renames it into place: a reader
sees a complete task or nothing, whatever fails in between (a full disk, a
kill). ``claim`` opens a task and takes a non-blocking ``flock`` so two spooler
processes on one directory never run the same task at once; a task whose
spooler died is claimable again (the kernel drops the lock).

Must not know: who runs the tasks, processes, the ``uwsgi`` module.
"""

from __future__ import annotations

import fcntl
import os
import socket
import stat
import struct
import time

__all__ = [
    "PREFIX",
    "SpoolError",
    "claim",
    "decode_task",
    "encode_task",
    "scan",
    "spooler_jobs",
    "write_task",
]

PREFIX = "uwsgi_spoolfile_on_"
MODIFIER = 17
_HEAD = struct.Struct("<BHB")
_LEN = struct.Struct("<H")
_counter = 0


class SpoolError(ValueError):
    """A task that cannot be spooled or a spool file that cannot be read."""


def encode_task(task: dict[bytes, bytes]) -> bytes:
    """A task dict -> the spool file's bytes (``body`` raw, after the packet)."""
    parts = []
    body = b""
    for key, value in task.items():
        if not isinstance(key, bytes) or not isinstance(value, bytes):
            raise SpoolError("spooler callable dictionary must contains only bytes")
        if key == b"body":
            body = value
            continue
        if len(key) > 0xFFFF or len(value) > 0xFFFF:
            raise SpoolError(f"spool key or value over 65535 bytes: {key[:40]!r}")
        parts += (_LEN.pack(len(key)), key, _LEN.pack(len(value)), value)
    packet = b"".join(parts)
    if len(packet) > 0xFFFF:
        raise SpoolError("a spool task's keys and values exceed 65535 bytes (put data in body)")
    return _HEAD.pack(MODIFIER, len(packet), 0) + packet + body


def decode_task(data: bytes) -> tuple[dict[bytes, bytes], bytes]:
    """The spool file's bytes -> (vars, body)."""
    if len(data) < _HEAD.size:
        raise SpoolError("shorter than a uwsgi packet header")
    modifier, size, _ = _HEAD.unpack_from(data)
    if modifier != MODIFIER or _HEAD.size + size > len(data):
        raise SpoolError("not a spool packet (modifier or size)")
    out: dict[bytes, bytes] = {}
    pos, end = _HEAD.size, _HEAD.size + size
    while pos < end:
        if pos + 2 > end:
            raise SpoolError("a key length runs past the packet")
        (klen,) = _LEN.unpack_from(data, pos)
        key = data[pos + 2 : pos + 2 + klen]
        pos += 2 + klen
        if pos + 2 > end:
            raise SpoolError("a value length runs past the packet")
        (vlen,) = _LEN.unpack_from(data, pos)
        value = data[pos + 2 : pos + 2 + vlen]
        pos += 2 + vlen
        if pos > end:
            raise SpoolError("a value runs past the packet")
        out[key] = value
    return out, data[end:]


def task_name() -> str:
    """A new task's file name, uWSGI's shape: host, pid, counter, random, time."""
    global _counter
    _counter += 1
    now = time.time()
    return (
        f"{PREFIX}{socket.gethostname()}_{os.getpid()}_{_counter}_"
        f"{int.from_bytes(os.urandom(4), 'big') >> 1}_{int(now)}_{int(now % 1 * 1e6)}"
    )


def write_task(directory: str, data: bytes) -> str:
    """Write a task into ``directory`` atomically; its path. OSError when it could not
    be written (nothing is left behind)."""
    final = os.path.join(directory, task_name())
    temp = os.path.join(directory, f".tmp-{os.urandom(8).hex()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(temp, final)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    return final


def scan(directory: str, ordered: bool) -> list[str]:
    """The task files of ``directory``: numbered priority subdirectories first (lowest
    number first), then the directory itself; by name when ``ordered``."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    out: list[str] = []
    for sub in sorted((e for e in entries if e.isdigit()), key=int):
        path = os.path.join(directory, sub)
        if os.path.isdir(path):
            out += scan(path, ordered)
    tasks = [e for e in entries if e.startswith(PREFIX)]
    if ordered:
        tasks.sort()
    return out + [os.path.join(directory, e) for e in tasks]


def claim(path: str) -> tuple[int, bytes] | None:
    """Open and lock a task for this process: (fd, contents), or None when another
    spooler holds it or it is gone. The caller closes the fd (dropping the lock)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_nlink == 0:  # done and removed by another spooler meanwhile
            os.close(fd)
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return fd, b"".join(chunks)
    except OSError:
        os.close(fd)
        return None


def spooler_jobs(directory: str) -> list[bytes]:
    """``uwsgi.spooler_jobs()``: the paths of the task files waiting in ``directory``
    (regular files this process may read and write, as uWSGI lists them)."""
    out = []
    try:
        names = os.listdir(directory)
    except OSError:
        return out
    for name in names:
        if not name.startswith(PREFIX):
            continue
        path = os.path.join(directory, name)
        try:
            if stat.S_ISREG(os.lstat(path).st_mode) and os.access(path, os.R_OK | os.W_OK):
                out.append(path.encode())
        except OSError:
            continue
    return out
