"""uWSGI's shared areas (``sharedarea = N``; ``uwsgi.sharedarea_*``): raw memory every
process of a master reads and writes.

Theory of operation
-------------------
Each ``sharedarea`` line makes one area, numbered from 0 in the order of the
lines: ``sharedarea = N`` is N memory pages, ``sharedarea = pages=N`` or
``size=BYTES`` the keyval spelling. The master maps each one (``memfd`` +
``MAP_SHARED``) before it forks, so every worker, mule and spooler sees the same
bytes; a re-executed master adopts the memory its previous image exported
(``SHAREDAREA_FDS_ENV``) when the size is unchanged, so a graceful reload keeps
the contents as it keeps the caches.

The functions are uWSGI 2.0.31's, with its types and errors: ``read(id, pos,
len=0)`` (0: up to the end), ``write``, 8/16/32/64-bit reads (signed, native byte
order) and writes, ``inc``/``dec`` of 32 and 64 bits (wrapping), a ``memoryview``
of the whole area, and the area's read/write lock (``rlock``, ``wlock``,
``unlock``). Anything out of bounds, or an area that does not exist, is
``ValueError("error calling uwsgi_sharedarea_...()")``, never a write past the end
(uWSGI 2.0 checks ``inc64`` against 4 bytes; here it is 8).

The lock is a record lock on one byte past the area in its ``memfd`` (shared for
reads, exclusive for writes; the kernel drops it with a dead holder) plus an
``RLock`` for this process's threads, and a depth count so that an operation
inside the app's own ``wlock`` does not drop it (in uWSGI that deadlocks).

Must not know: the ``uwsgi`` module, workers, the config beyond the ``sharedarea``
lines it is given.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import struct
import threading
from collections.abc import Callable

from ..ipc import SHAREDAREA_FDS_ENV

__all__ = [
    "Area",
    "SharedAreaError",
    "area_pages",
    "export",
    "functions",
    "make_areas",
    "parse_lines",
]

PAGE = mmap.PAGESIZE
_INTS = {
    8: struct.Struct("=b"),
    16: struct.Struct("=h"),
    32: struct.Struct("=i"),
    64: struct.Struct("=q"),
}


class SharedAreaError(ValueError):
    """A ``sharedarea`` line that cannot be used."""


def area_pages(text: str) -> int:
    """The pages a ``sharedarea`` value asks for (``N``, ``pages=N`` or ``size=BYTES``)."""
    text = str(text).strip()
    if "=" not in text:
        return _positive(text, "a number of pages")
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise SharedAreaError(f"{part!r} is not key=value")
        fields[key.strip()] = value.strip()
    unsupported = set(fields) - {"pages", "size"}
    if unsupported:
        raise SharedAreaError(
            f"{', '.join(sorted(unsupported))}: only pages= and size= are supported "
            "(no file, fd or ptr areas)"
        )
    if "pages" in fields:
        return _positive(fields["pages"], "pages=")
    if "size" in fields:
        raw = fields["size"]
        size = _positive(raw[2:], "size=", 16) if raw.startswith("0x") else _positive(raw, "size=")
        return -(-size // PAGE)
    raise SharedAreaError("you need to set a size for a sharedarea (pages= or size=)")


def _positive(text: str, what: str, base: int = 10) -> int:
    try:
        value = int(text, base)
    except ValueError:
        raise SharedAreaError(f"{what} expects a positive integer, not {text!r}") from None
    if value <= 0:
        raise SharedAreaError(f"{what} expects a positive integer, not {text!r}")
    return value


class Area:
    """One shared area of ``pages`` pages."""

    def __init__(self, pages: int, fd: int | None = None) -> None:
        self.size = pages * PAGE
        if fd is None or os.fstat(fd).st_size != self.size:
            if fd is not None:
                os.close(fd)
            fd = os.memfd_create("procmaster-sharedarea", os.MFD_CLOEXEC)
            os.ftruncate(fd, self.size)
        self.fd = fd
        self.mem = mmap.mmap(fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.local = threading.RLock()
        self.depth = 0

    def after_fork(self) -> None:
        """In the child: the parent's threads' holds are not ours."""
        self.local = threading.RLock()
        self.depth = 0

    def inheritable(self) -> int:
        os.set_inheritable(self.fd, True)
        return self.fd

    # -- the lock ----------------------------------------------------------------

    def acquire(self, exclusive: bool) -> None:
        self.local.acquire()
        if self.depth == 0:
            try:
                mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
                fcntl.lockf(self.fd, mode, 1, self.size, os.SEEK_SET)
            except BaseException:
                self.local.release()
                raise
        self.depth += 1

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, self.size, os.SEEK_SET)
        self.local.release()

    # -- the operations ------------------------------------------------------------

    def read(self, pos: int, length: int) -> bytes | None:
        if pos < 0 or length < 0 or pos >= self.size or pos + length > self.size:
            return None
        end = self.size if length == 0 else pos + length
        self.acquire(False)
        try:
            return self.mem[pos:end]
        finally:
            self.release()

    def write(self, pos: int, data: bytes) -> bool:
        if pos < 0 or pos >= self.size or pos + len(data) > self.size:
            return False
        self.acquire(True)
        try:
            self.mem[pos : pos + len(data)] = data
        finally:
            self.release()
        return True

    def add(self, pos: int, bits: int, amount: int) -> bool:
        """``+= amount`` on the signed ``bits``-bit integer at ``pos``, wrapping."""
        width = bits // 8
        if pos < 0 or pos + width > self.size:
            return False
        fmt = _INTS[bits]
        half = 1 << (bits - 1)
        self.acquire(True)
        try:
            value = fmt.unpack_from(self.mem, pos)[0] + amount
            fmt.pack_into(self.mem, pos, (value + half) % (1 << bits) - half)
        finally:
            self.release()
        return True


def parse_lines(lines: list[str], origin: str = "sharedarea") -> list[int]:
    """The pages of each ``sharedarea`` line (SharedAreaError names the line)."""
    pages = []
    for text in lines:
        try:
            pages.append(area_pages(text))
        except SharedAreaError as exc:
            raise SharedAreaError(f"{origin}: sharedarea = {text}: {exc}") from None
    return pages


def make_areas(lines: list[str], origin: str = "sharedarea") -> list[Area]:
    """The instance's areas, adopting the memory a previous image exported."""
    pages = parse_lines(lines, origin)
    inherited = _inherited()
    areas = [Area(n, inherited.pop(i, None)) for i, n in enumerate(pages)]
    for fd in inherited.values():
        os.close(fd)
    return areas


def export(areas: list[Area], env: dict[str, str]) -> None:
    """Before a reload's exec: hand each area's memory to the next image."""
    if areas:
        env[SHAREDAREA_FDS_ENV] = json.dumps([a.inheritable() for a in areas])


def _inherited() -> dict[int, int]:
    raw = os.environ.pop(SHAREDAREA_FDS_ENV, None)
    if not raw:
        return {}
    try:
        fds = [int(fd) for fd in json.loads(raw)]
    except (ValueError, TypeError):
        return {}
    out = {}
    for i, fd in enumerate(fds):
        try:
            os.fstat(fd)
        except OSError:
            continue
        os.set_inheritable(fd, False)
        out[i] = fd
    return out


def functions(areas: list[Area]) -> dict[str, Callable]:
    """The ``uwsgi.sharedarea_*`` functions over ``areas``."""

    def area(num: object, call: str) -> Area:
        if type(num) is not int or not 0 <= num < len(areas):  # noqa: E721 - bool is no id
            raise ValueError(f"error calling uwsgi_sharedarea_{call}()")
        return areas[num]

    def read(num: int, pos: int, length: int = 0) -> bytes:
        out = area(num, "read").read(pos, length)
        if out is None:
            raise ValueError("error calling uwsgi_sharedarea_read()")
        return out

    def write(num: int, pos: int, data: bytes) -> None:
        if isinstance(data, str):
            data = data.encode()
        if not area(num, "write").write(pos, bytes(data)):
            raise ValueError("error calling uwsgi_sharedarea_write()")

    def reader(bits: int) -> Callable[[int, int], int]:
        def read_int(num: int, pos: int) -> int:
            raw = area(num, f"read{bits}").read(pos, bits // 8)
            if raw is None:
                raise ValueError(f"error calling uwsgi_sharedarea_read{bits}()")
            return _INTS[bits].unpack(raw)[0]

        return read_int

    def writer(bits: int, lo: int, hi: int, wrap: bool) -> Callable[[int, int, int], None]:
        def write_int(num: int, pos: int, value: int) -> None:
            if not isinstance(value, int):
                raise TypeError(f"an integer is required (got type {type(value).__name__})")
            if not wrap and not lo <= value <= hi:
                raise OverflowError(f"sharedarea_write{bits}: {value} is out of range")
            raw = (value & ((1 << bits) - 1)).to_bytes(bits // 8, "little" if _LE else "big")
            if not area(num, f"write{bits}").write(pos, raw):
                raise ValueError(f"error calling uwsgi_sharedarea_write{bits}()")

        return write_int

    def adder(bits: int, sign: int, name: str) -> Callable[..., None]:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

        def add(num: int, pos: int, value: int = 1) -> None:
            if not isinstance(value, int):
                raise TypeError(f"an integer is required (got type {type(value).__name__})")
            if not lo <= value <= hi:
                raise OverflowError(f"sharedarea_{name}: {value} is out of range")
            if not area(num, name).add(pos, bits, sign * value):
                raise ValueError(f"error calling uwsgi_sharedarea_{name}()")

        return add

    def lock(exclusive: bool, name: str) -> Callable[[int], None]:
        def take(num: int) -> None:
            area(num, name).acquire(exclusive)

        return take

    def unlock(num: int) -> None:
        try:
            area(num, "unlock").release()
        except RuntimeError:  # not held by this thread
            raise ValueError("error calling uwsgi_sharedarea_unlock()") from None

    def memoryview_of(num: int) -> memoryview:
        if type(num) is not int or not 0 <= num < len(areas):  # noqa: E721
            raise ValueError(f"cannot get a memoryview object from sharedarea {num}")
        return memoryview(areas[num].mem)

    read8, read64 = reader(8), reader(64)
    write8 = writer(8, 0, 255, False)  # uWSGI parses it as an unsigned char
    write64 = writer(64, -(1 << 63), (1 << 63) - 1, False)
    inc64 = adder(64, 1, "inc64")
    return {
        "sharedarea_read": read,
        "sharedarea_write": write,
        "sharedarea_readbyte": read8,
        "sharedarea_writebyte": write8,
        "sharedarea_read8": read8,
        "sharedarea_write8": write8,
        "sharedarea_readlong": read64,
        "sharedarea_writelong": write64,
        "sharedarea_read64": read64,
        "sharedarea_write64": write64,
        "sharedarea_read32": reader(32),
        "sharedarea_write32": writer(32, 0, 0, True),  # uWSGI: an unsigned int, masked
        "sharedarea_read16": reader(16),
        "sharedarea_write16": writer(16, 0, 0, True),
        "sharedarea_inclong": inc64,
        "sharedarea_inc64": inc64,
        "sharedarea_inc32": adder(32, 1, "inc32"),
        "sharedarea_dec64": adder(64, -1, "dec64"),
        "sharedarea_dec32": adder(32, -1, "dec32"),
        "sharedarea_rlock": lock(False, "rlock"),
        "sharedarea_wlock": lock(True, "wlock"),
        "sharedarea_unlock": unlock,
        "sharedarea_memoryview": memoryview_of,
    }


_LE = struct.pack("=h", 1) == b"\x01\x00"
