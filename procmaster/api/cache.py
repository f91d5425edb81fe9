"""uWSGI's cache (``cache2 = name=...,items=N``; ``cache = N``): shared memory for every process.

Theory of operation
-------------------
One ``Cache`` is one shared mapping, made by the master before it forks (a
``memfd``, or the ``store`` file), so every worker sees the same items without a
server process. Its layout, all little-endian::

    header     magic, geometry, free-stack top, hits, misses, full, LRU clock, count
    hash table hashsize x int32: 0 = empty, else an item number (linear probing,
               deletion by backward shift: no tombstones to pile up)
    free stack items x int32: the unused item numbers
    items      items x 32 bytes: key length, value length, key hash, expiry, last use
    keys       items x keysize
    values     items x blocksize

Item 0 is never used, as in uWSGI: ``items = N`` holds N - 1 keys. Every
operation takes the cache's lock: a ``threading.Lock`` for this process's
threads and a record lock on the mapping's file for other processes (the kernel
drops it if the holder dies, so a killed worker never wedges the cache).

Keys and values are bytes (``str`` is encoded as UTF-8); ``expires`` is seconds
from now (0: never). An expired item is gone at the next look at it, at the
master's sweep (``cache-expire-freq``), or when a full cache needs room.
``purge_lru`` makes a full cache drop its least recently used item instead of
refusing the new one. Numbers (``inc``/``dec``/``mul``/``div``) are 64-bit
signed integers stored as 8 bytes; a shorter value reads as zero-padded.

Across a graceful reload the master hands the memory to its next image
(``export``/``adopt``), so the items survive; with ``store`` they survive a
restart too (the file is the mapping).

Must not know: who asks (the ``uwsgi`` module's face), workers, sockets.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import stat
import struct
import threading
import time
import zlib

from .cache_spec import CacheSpec

__all__ = ["Cache"]

MAGIC = 0x50434331  # "PCC1"
_HEAD = struct.Struct("<IIIIIiqqqqq")
HEAD_SIZE = 128
_ITEM = struct.Struct("<HHIIIdQ")  # keylen, -, vallen, hash, -, expires, lru
ITEM_SIZE = 32
_NUM = struct.Struct("<q")
_OFF_TOP, _OFF_HITS, _OFF_MISSES, _OFF_FULL, _OFF_CLOCK, _OFF_COUNT = 20, 24, 32, 40, 48, 56
_Q = struct.Struct("<q")
_I = struct.Struct("<i")
INT64 = (1 << 63) - 1


def _hashsize(items: int) -> int:
    size = 8
    while size < items * 2:
        size *= 2
    return size


def _as_bytes(what: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"a bytes-like object is required for the {what}, not {type(value).__name__!r}")


class Cache:
    """One shared cache (see the module docstring)."""

    def __init__(self, spec: CacheSpec, fd: int | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        n, bs, ks = spec.items, spec.blocksize, spec.keysize
        self.nitems, self.blocksize, self.keysize = n, bs, ks
        self.hashsize = _hashsize(n)
        self.off_hash = HEAD_SIZE
        self.off_free = self.off_hash + 4 * self.hashsize
        self.off_items = self.off_free + 4 * n
        self.off_keys = self.off_items + ITEM_SIZE * n
        self.off_values = self.off_keys + ks * n
        self.size = self.off_values + bs * n
        fresh = False
        if fd is None and spec.store:
            fd, fresh = self._open_store(spec.store)
        elif fd is None:
            fd = os.memfd_create(f"procmaster-cache-{spec.name}", os.MFD_CLOEXEC)
            fresh = True
        else:
            os.set_inheritable(fd, False)
        if os.fstat(fd).st_size != self.size:
            os.ftruncate(fd, self.size)
            fresh = True
        self.fd = fd
        self.mem = mmap.mmap(fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        view = memoryview(self.mem)
        self.table = view[self.off_hash : self.off_free].cast("i")
        self.free = view[self.off_free : self.off_items].cast("i")
        self.local = threading.Lock()
        if fresh or not self._geometry_matches():
            self._format()

    @staticmethod
    def fits(spec: CacheSpec, fd: int) -> bool:
        """Whether the memory behind ``fd`` is a cache of ``spec``'s geometry (so the
        old workers of a reload and the new ones can share it as it is)."""
        try:
            head = os.pread(fd, _HEAD.size, 0)
        except OSError:
            return False
        if len(head) < _HEAD.size:
            return False
        geometry = _HEAD.unpack(head)[:5]
        return geometry == (MAGIC, spec.items, spec.blocksize, spec.keysize, _hashsize(spec.items))

    def _open_store(self, path: str) -> tuple[int, bool]:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)
            raise OSError(f"cache store {path!r} is not a regular file owned by this user")
        if st.st_size and not self.fits(self.spec, fd):
            # another geometry: a new file (workers of the previous image keep the old one)
            os.close(fd)
            os.unlink(path)
            fd = os.open(path, flags | os.O_EXCL, 0o600)
            return fd, True
        return fd, st.st_size == 0

    def _geometry_matches(self) -> bool:
        head = _HEAD.unpack_from(self.mem, 0)
        return head[:5] == (MAGIC, self.nitems, self.blocksize, self.keysize, self.hashsize)

    def _format(self) -> None:
        self.mem[: self.off_keys] = bytes(self.off_keys)
        free = self.free
        for i, item in enumerate(range(self.nitems - 1, 0, -1)):
            free[i] = item
        _HEAD.pack_into(
            self.mem,
            0,
            MAGIC,
            self.nitems,
            self.blocksize,
            self.keysize,
            self.hashsize,
            self.nitems - 1,
            0,
            0,
            0,
            0,
            0,
        )

    # -- the lock ----------------------------------------------------------------

    def __enter__(self) -> Cache:
        self.local.acquire()
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, 0, os.SEEK_SET)
        except BaseException:
            self.local.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, 0, os.SEEK_SET)
        self.local.release()

    # -- inside the lock ---------------------------------------------------------

    def _count(self, off: int, delta: int = 1) -> None:
        _Q.pack_into(self.mem, off, _Q.unpack_from(self.mem, off)[0] + delta)

    def _tick(self) -> int:
        clock = _Q.unpack_from(self.mem, _OFF_CLOCK)[0] + 1
        _Q.pack_into(self.mem, _OFF_CLOCK, clock)
        return clock

    def _find(self, key: bytes, crc: int, now: float) -> tuple[int, int]:
        """(hash position, item): the item holding ``key`` (0: none, and the
        position is where it would go). An expired item found is removed."""
        mask = self.hashsize - 1
        pos = crc & mask
        table, mem, klen = self.table, self.mem, len(key)
        while True:
            item = table[pos]
            if item == 0:
                return pos, 0
            ilen, _, _, icrc, _, expires, _ = _ITEM.unpack_from(
                mem, self.off_items + item * ITEM_SIZE
            )
            if icrc == crc and ilen == klen:
                koff = self.off_keys + item * self.keysize
                if mem[koff : koff + klen] == key:
                    if expires and expires <= now:
                        self._remove(pos, item)
                        return self._find(key, crc, now)
                    return pos, item
            pos = (pos + 1) & mask

    def _remove(self, pos: int, item: int) -> None:
        table, mask = self.table, self.hashsize - 1
        hole = pos
        j = pos
        while True:
            j = (j + 1) & mask
            other = table[j]
            if other == 0:
                break
            home = _ITEM.unpack_from(self.mem, self.off_items + other * ITEM_SIZE)[3] & mask
            # leave ``other`` where it is when its home lies cyclically in (hole, j]
            if (hole < j and hole < home <= j) or (hole > j and (home > hole or home <= j)):
                continue
            table[hole] = other
            hole = j
        table[hole] = 0
        _ITEM.pack_into(self.mem, self.off_items + item * ITEM_SIZE, 0, 0, 0, 0, 0, 0.0, 0)
        top = _I.unpack_from(self.mem, _OFF_TOP)[0]
        self.free[top] = item
        _I.pack_into(self.mem, _OFF_TOP, top + 1)
        self._count(_OFF_COUNT, -1)

    def _take_item(self, now: float) -> int:
        """A free item number, after sweeping or (purge_lru) evicting; 0: full."""
        top = _I.unpack_from(self.mem, _OFF_TOP)[0]
        if top == 0:
            self._sweep(now)
            top = _I.unpack_from(self.mem, _OFF_TOP)[0]
        if top == 0 and self.spec.purge_lru:
            self._evict_lru()
            top = _I.unpack_from(self.mem, _OFF_TOP)[0]
        if top == 0:
            self._count(_OFF_FULL)
            return 0
        _I.pack_into(self.mem, _OFF_TOP, top - 1)
        return self.free[top - 1]

    def _used(self):
        mem, base = self.mem, self.off_items
        for item in range(1, self.nitems):
            fields = _ITEM.unpack_from(mem, base + item * ITEM_SIZE)
            if fields[0]:
                yield item, fields

    def _position(self, item: int, crc: int) -> int:
        mask = self.hashsize - 1
        pos = crc & mask
        while self.table[pos] != item:
            pos = (pos + 1) & mask
        return pos

    def _evict_lru(self) -> None:
        oldest = min(self._used(), key=lambda pair: pair[1][6], default=None)
        if oldest is not None:
            item, fields = oldest
            self._remove(self._position(item, fields[3]), item)

    def _sweep(self, now: float) -> int:
        expired = [(i, f[3]) for i, f in self._used() if f[5] and f[5] <= now]
        for item, crc in expired:
            self._remove(self._position(item, crc), item)
        return len(expired)

    def _value(self, item: int) -> bytes:
        vlen = _ITEM.unpack_from(self.mem, self.off_items + item * ITEM_SIZE)[2]
        off = self.off_values + item * self.blocksize
        return self.mem[off : off + vlen]

    def _store(
        self,
        pos: int,
        item: int,
        new: bool,
        key: bytes,
        crc: int,
        value: bytes,
        expires: int,
        now: float,
    ) -> None:
        self.mem[
            self.off_values + item * self.blocksize : self.off_values
            + item * self.blocksize
            + len(value)
        ] = value
        if new:
            koff = self.off_keys + item * self.keysize
            self.mem[koff : koff + len(key)] = key
            self.table[pos] = item
            self._count(_OFF_COUNT)
        _ITEM.pack_into(
            self.mem,
            self.off_items + item * ITEM_SIZE,
            len(key),
            0,
            len(value),
            crc,
            0,
            now + expires if expires > 0 else 0.0,
            self._tick(),
        )

    # -- the operations (each takes the lock) -------------------------------------

    def _key(self, key: object) -> bytes | None:
        raw = _as_bytes("key", key)
        return raw if 0 < len(raw) <= self.keysize else None

    def get(self, key: object) -> bytes | None:
        raw = self._key(key)
        if raw is None:
            return None
        crc = zlib.crc32(raw)
        with self:
            _, item = self._find(raw, crc, time.time())
            if not item:
                self._count(_OFF_MISSES)
                return None
            self._count(_OFF_HITS)
            off = self.off_items + item * ITEM_SIZE
            _Q.pack_into(self.mem, off + 24, self._tick())
            return self._value(item)

    def exists(self, key: object) -> bool:
        raw = self._key(key)
        if raw is None:
            return False
        with self:
            return self._find(raw, zlib.crc32(raw), time.time())[1] != 0

    def set(self, key: object, value: object, expires: int = 0, update: bool = False) -> bool:
        """Store ``value``; without ``update`` an existing key is left alone (False)."""
        raw, data = self._key(key), _as_bytes("value", value)
        if raw is None or not data or len(data) > self.blocksize:
            return False
        crc = zlib.crc32(raw)
        now = time.time()
        with self:
            pos, item = self._find(raw, crc, now)
            if item and not update:
                return False
            new = not item
            if new:
                item = self._take_item(now)
                if not item:
                    return False
                pos = self._find(raw, crc, now)[0]  # a sweep may have moved things
            self._store(pos, item, new, raw, crc, data, int(expires or 0), now)
            return True

    def delete(self, key: object) -> bool:
        raw = self._key(key)
        if raw is None:
            return False
        with self:
            pos, item = self._find(raw, zlib.crc32(raw), time.time())
            if item:
                self._remove(pos, item)
            return bool(item)

    def math(self, key: object, op: str, amount: int, expires: int = 0) -> bool:
        """``inc``/``dec``/``mul``/``div`` on the 64-bit number at ``key`` (0 when absent)."""
        raw = self._key(key)
        if raw is None or self.blocksize < 8:
            return False
        crc = zlib.crc32(raw)
        now = time.time()
        with self:
            pos, item = self._find(raw, crc, now)
            current = _NUM.unpack(self._value(item)[:8].ljust(8, b"\0"))[0] if item else 0
            if op == "inc":
                result = current + amount
            elif op == "dec":
                result = current - amount
            elif op == "mul":
                result = current * amount
            else:
                quotient = abs(current) // abs(amount) if amount else 0
                result = (
                    (quotient if (current < 0) == (amount < 0) else -quotient)
                    if amount
                    else current
                )
            result = (result + (1 << 63)) % (1 << 64) - (1 << 63)  # wraps as int64_t
            new = not item
            if new:
                item = self._take_item(now)
                if not item:
                    return False
                pos = self._find(raw, crc, now)[0]
            self._store(pos, item, new, raw, crc, _NUM.pack(result), int(expires or 0), now)
            return True

    def num(self, key: object) -> int:
        value = self.get(key)
        return _NUM.unpack(value[:8].ljust(8, b"\0"))[0] if value else 0

    def keys(self) -> list[bytes]:
        with self:
            now = time.time()
            out = []
            for item, fields in self._used():
                if fields[5] and fields[5] <= now:
                    continue
                koff = self.off_keys + item * self.keysize
                out.append(self.mem[koff : koff + fields[0]])
            return out

    def clear(self) -> None:
        with self:
            self._format()

    def sweep(self) -> int:
        """Remove expired items; how many."""
        with self:
            return self._sweep(time.time())

    def stats(self) -> dict[str, int | str]:
        with self:
            head = _HEAD.unpack_from(self.mem, 0)
        return {
            "name": self.name,
            "items": head[10],
            "max_items": self.nitems - 1,
            "hits": head[6],
            "misses": head[7],
            "full": head[8],
            "blocksize": self.blocksize,
            "keysize": self.keysize,
            "hashsize": self.hashsize,
        }

    def sync(self) -> None:
        """Flush a ``store`` cache to its file."""
        self.mem.flush()

    def inheritable(self) -> int:
        os.set_inheritable(self.fd, True)
        return self.fd
