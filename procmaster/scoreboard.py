"""Per-worker slots in shared memory: the one home of every fact about a worker.

A slot is written only by its worker (pid, request count, exceptions, when the
current request started, status, bytes sent, time spent in requests, responses
by status class, a request-duration histogram) and read by the master and the
stats server: no pipes, no polling files, and nothing on the request path but a
few stores into typed views of the memory (only its worker writes a slot's
counters, so it adds to them in place). The memory is a ``memfd`` mapping, so a
master that re-executes itself for a reload can hand it to its next image.

After the slots come the *cores*: ``cores`` entries per slot, one per app thread
of a worker (``threads``), each the start time of that thread's request (0.0 =
idle) and a short description of it ("GET /uri", written only when harakiri asks
for it), so the master can end a stuck request and name it. A worker without
threads keeps its start time in the slot itself (``request_start``) and uses
core 0 only for the description. In a threaded worker the slot's ``status`` is
approximate (the last thread to start or the loop to finish wins); ``busy()``
is exact.

The master writes a slot when it forks its worker (``claim``: the pid, the
spawn time and the harakiri count that worker id carries across respawns), when
harakiri kills it (``count_harakiri``) and when it is reaped (``release``). Across
a reload's exec the next image of the master maps the same memory
(``Scoreboard(nslots, fd=..., cores=...)``), so the old workers keep their slots
and harakiri still watches them while they drain.

Must not know: anything but the slot layout.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from bisect import bisect_left

__all__ = ["BUCKETS", "STATUS_NAMES", "Scoreboard", "Slot"]

# pid, status, requests, exceptions, request_start (0.0 = idle), spawned_at, harakiri,
# tx (bytes sent), rt (microseconds spent in requests), responses 1xx..5xx,
# then one counter per request-duration bucket (upper bounds in BUCKETS, the last +Inf)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_NBUCKETS = len(BUCKETS) + 1
_SLOT = struct.Struct(f"=iiqqddqqq5q{_NBUCKETS}q")
SLOT_SIZE = 256
_WID = struct.Struct("=i")  # the worker id the master gave the slot's worker (after _SLOT)
_OFF_WID = (_SLOT.size + 7) // 8 * 8
assert _OFF_WID + _WID.size <= SLOT_SIZE
_OFF_INFLIGHT = _OFF_WID + _WID.size  # requests in flight (an ASGI worker runs many at once)
assert _OFF_INFLIGHT + 4 <= SLOT_SIZE
_HEADER = struct.Struct("=q")  # total requests of the instance
HEADER_SIZE = 64

STATUS_FREE, STATUS_STARTING, STATUS_IDLE, STATUS_BUSY, STATUS_STOPPING = range(5)
STATUS_NAMES = {
    STATUS_FREE: "free",
    STATUS_STARTING: "starting",
    STATUS_IDLE: "idle",
    STATUS_BUSY: "busy",
    STATUS_STOPPING: "pause",
}

_DOUBLE = struct.Struct("=d")
_QUAD = struct.Struct("=q")
_OFF_STATUS = 4
_OFF_REQUESTS = 8
_OFF_EXC = 16
_OFF_START = 24
_OFF_HARAKIRI = 40
assert (_OFF_REQUESTS, _OFF_EXC, _OFF_START) == (
    _OFF_STATUS + 4,
    _OFF_STATUS + 12,
    _OFF_STATUS + 20,
)
# a core: request_start (double), description length (uint16), description
_CORE = struct.Struct("=dH")
CORE_SIZE = 128
DESC_MAX = CORE_SIZE - _CORE.size
_OFF_TX = 48  # tx, rt
_OFF_CLASSES = 64  # five counters: 1xx .. 5xx
_OFF_BUCKETS = 104
# The request path writes single fields through typed views of the memory
# (``Scoreboard.q`` and ``.d``: 8-byte fields, ``.i``: 4-byte ones), indexed by
# offset // field size; a slot starts at 8-byte field ``index * _SLOT_Q + _HEADER_Q``,
# which is 4-byte field twice that. Each slot's part of those views
# (``slot_q``, ``slot_d``, ``slot_i``) is indexed from the slot's start by the
# ``_Q_*`` and ``_I_*`` numbers below. Every field sits at a multiple of its size.
_SLOT_Q, _HEADER_Q = SLOT_SIZE >> 3, HEADER_SIZE >> 3
_Q_REQUESTS, _Q_EXC, _Q_START = _OFF_REQUESTS >> 3, _OFF_EXC >> 3, _OFF_START >> 3
_Q_TX, _Q_RT = _OFF_TX >> 3, (_OFF_TX >> 3) + 1
_Q_CLASSES, _Q_BUCKETS = _OFF_CLASSES >> 3, _OFF_BUCKETS >> 3
_I_PID, _I_STATUS, _I_INFLIGHT = 0, _OFF_STATUS >> 2, _OFF_INFLIGHT >> 2
_FIRST = BUCKETS[0]
assert HEADER_SIZE % 8 == 0 and SLOT_SIZE % 8 == 0 and CORE_SIZE % 8 == 0
assert all(o % 8 == 0 for o in (_OFF_REQUESTS, _OFF_EXC, _OFF_START, _OFF_TX, _OFF_CLASSES))
assert _OFF_BUCKETS % 8 == 0 and _OFF_INFLIGHT % 4 == 0 and _OFF_STATUS % 4 == 0


class Slot:
    """A snapshot of one slot, for the master and stats."""

    __slots__ = (
        "index",
        "pid",
        "status",
        "requests",
        "exceptions",
        "request_start",
        "spawned_at",
        "harakiri",
        "tx",
        "rt_us",
        "classes",
        "buckets",
        "inflight",
    )

    def __init__(self, index: int, values: tuple, inflight: int = 0) -> None:
        self.index = index
        self.inflight = inflight  # requests in flight (more than one in an ASGI worker)
        (
            self.pid,
            self.status,
            self.requests,
            self.exceptions,
            self.request_start,
            self.spawned_at,
            self.harakiri,
            self.tx,
            self.rt_us,
        ) = values[:9]
        self.classes = values[9:14]  # responses 1xx, 2xx, 3xx, 4xx, 5xx
        self.buckets = values[14:]  # per bucket (not cumulative); the last is +Inf


class Scoreboard:
    """The slots; with ``fd``, the memory of a previous image of the master."""

    def __init__(self, nslots: int, fd: int | None = None, cores: int = 1) -> None:
        self.cores = max(int(cores), 1)
        self.cores_base = HEADER_SIZE + SLOT_SIZE * nslots
        size = self.cores_base + CORE_SIZE * self.cores * nslots
        if fd is None:
            fd = os.memfd_create("procmaster-scoreboard", os.MFD_CLOEXEC)
            os.ftruncate(fd, size)
        else:
            os.set_inheritable(fd, False)
        self.fd = fd
        self.nslots = nslots
        self.mem = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        # the same memory as 4-byte ints, 8-byte ints and doubles, in this
        # machine's byte order as the formats above ("="): one store per field
        view = memoryview(self.mem)
        self.i, self.q, self.d = view.cast("i"), view.cast("q"), view.cast("d")
        # each slot's part of them, indexed from the slot's start (a worker's
        # per-request stores: no offset arithmetic on the way)
        at = [index * _SLOT_Q + _HEADER_Q for index in range(nslots)]
        self.slot_q = [self.q[a : a + _SLOT_Q] for a in at]
        self.slot_d = [self.d[a : a + _SLOT_Q] for a in at]
        self.slot_i = [self.i[a + a : a + a + _SLOT_Q + _SLOT_Q] for a in at]

    # -- written by the master ------------------------------------------------------

    def claim(self, index: int, pid: int = 0, harakiri: int = 0, wid: int = 0) -> None:
        _WID.pack_into(self.mem, HEADER_SIZE + index * SLOT_SIZE + _OFF_WID, wid)
        self.inflight(index, 0)
        _SLOT.pack_into(
            self.mem,
            HEADER_SIZE + index * SLOT_SIZE,
            pid,
            STATUS_STARTING,
            0,
            0,
            0.0,
            time.time(),
            harakiri,
            0,
            0,
            *([0] * (5 + _NBUCKETS)),
        )

    def set_pid(self, index: int, pid: int) -> None:
        """The pid of a claimed slot's worker, once forked (the rest of the slot may
        already be the worker's: it can serve before the master runs again)."""
        self.slot_i[index][_I_PID] = pid

    def release(self, index: int) -> None:
        self.mem[HEADER_SIZE + index * SLOT_SIZE : HEADER_SIZE + (index + 1) * SLOT_SIZE] = bytes(
            SLOT_SIZE
        )
        base = self._core(index, 0)
        self.mem[base : base + CORE_SIZE * self.cores] = bytes(CORE_SIZE * self.cores)

    def free_slot(self) -> int:
        """A free slot's index, or -1 when every slot is taken."""
        for index in range(self.nslots):
            if self.read(index).status == STATUS_FREE:
                return index
        return -1

    def count_harakiri(self, index: int) -> None:
        """Harakiri killed the worker of slot ``index``."""
        base = HEADER_SIZE + index * SLOT_SIZE + _OFF_HARAKIRI
        (count,) = _QUAD.unpack_from(self.mem, base)
        _QUAD.pack_into(self.mem, base, count + 1)

    def inheritable(self) -> int:
        """The memory's fd, made inheritable for the next image of the master."""
        os.set_inheritable(self.fd, True)
        return self.fd

    # -- written by a worker ----------------------------------------------------------

    def worker_ready(self, index: int, pid: int) -> None:
        fields = self.slot_i[index]
        fields[_I_PID] = pid
        fields[_I_STATUS] = STATUS_IDLE

    def request_start(self, index: int, when: float) -> None:
        """Busy since ``when``: the start time first, then the status, so that a
        reader that sees the worker busy sees since when."""
        self.slot_d[index][_Q_START] = when
        self.slot_i[index][_I_STATUS] = STATUS_BUSY

    def request_done(self, index: int, status: int, tx: int, seconds: float) -> None:
        """Count a finished request: bytes sent, time taken, status class and
        histogram first, the request count and the idle status last, so that a
        reader (stats, metrics) that sees the request counted sees its class and its
        bucket too. (The instance's total is the sum of the slots, each written by
        one writer: a shared counter would lose counts between workers.) One
        store per field that changes, added to in place (only this worker writes
        its counters)."""
        q = self.slot_q[index]
        q[_Q_TX] += tx
        q[_Q_RT] += int(seconds * 1e6)
        cls = status // 100 - 1
        if 0 <= cls < 5:
            q[_Q_CLASSES + cls] += 1
        q[_Q_BUCKETS + (0 if seconds <= _FIRST else bisect_left(BUCKETS, seconds))] += 1
        q[_Q_REQUESTS] += 1
        self.slot_d[index][_Q_START] = 0.0
        self.slot_i[index][_I_STATUS] = STATUS_IDLE

    def inflight(self, index: int, count: int) -> None:
        """How many requests the worker has in flight now (an ASGI worker's tasks),
        written when the status does not say it: more than one while busy, or any
        count while pausing or stopping (``read`` takes idle as 0, busy as 1 or more)."""
        self.slot_i[index][_I_INFLIGHT] = count

    def inflight_of(self, index: int) -> int:
        return self.slot_i[index][_I_INFLIGHT]

    def exception(self, index: int) -> None:
        self.slot_q[index][_Q_EXC] += 1

    def _core(self, index: int, core: int) -> int:
        return self.cores_base + (index * self.cores + core) * CORE_SIZE

    def request_desc(self, index: int, desc: bytes, core: int = 0) -> None:
        """What the current request of ``core`` is (harakiri names it in the log)."""
        desc = desc[:DESC_MAX]
        base = self._core(index, core)
        struct.pack_into("=H", self.mem, base + 8, len(desc))
        self.mem[base + _CORE.size : base + _CORE.size + len(desc)] = desc

    def core_start(self, index: int, core: int, when: float) -> None:
        """A worker thread (``core``) started a request: its start time and a busy slot."""
        self.d[self._core(index, core) >> 3] = when
        self.slot_i[index][_I_STATUS] = STATUS_BUSY

    def core_end(self, index: int, core: int) -> None:
        self.d[self._core(index, core) >> 3] = 0.0

    def stopping(self, index: int) -> None:
        self.slot_i[index][_I_STATUS] = STATUS_STOPPING

    # -- read by anyone -----------------------------------------------------------------

    def read(self, index: int) -> Slot:
        base = HEADER_SIZE + index * SLOT_SIZE
        values = _SLOT.unpack_from(self.mem, base)
        inflight = self.slot_i[index][_I_INFLIGHT]
        # a worker writes the count only when it says more than its status (see
        # ``inflight``): idle is none in flight, busy at least one
        status = values[1]
        if status == STATUS_IDLE:
            inflight = 0
        elif status == STATUS_BUSY:
            inflight = max(inflight, 1)
        return Slot(index, values, inflight)

    def busy(self, index: int) -> list[tuple[int, float, str]]:
        """The requests in progress in slot ``index``: (core, start time, description)."""
        out = []
        (start,) = _DOUBLE.unpack_from(self.mem, HEADER_SIZE + index * SLOT_SIZE + _OFF_START)
        if start:
            out.append((0, start, self.desc(index, 0)))
        for core in range(self.cores):
            (start,) = _DOUBLE.unpack_from(self.mem, self._core(index, core))
            if start:
                out.append((core, start, self.desc(index, core)))
        return out

    def desc(self, index: int, core: int = 0) -> str:
        base = self._core(index, core)
        _, length = _CORE.unpack_from(self.mem, base)
        raw = self.mem[base + _CORE.size : base + _CORE.size + min(length, DESC_MAX)]
        return raw.decode("latin-1")

    def wid(self, index: int) -> int:
        """The worker id of slot ``index``'s worker (0: none recorded)."""
        return _WID.unpack_from(self.mem, HEADER_SIZE + index * SLOT_SIZE + _OFF_WID)[0]

    def total(self) -> int:
        """The requests of every slot (a strided view of their counters, summed in C)."""
        at = _HEADER_Q + _Q_REQUESTS
        return sum(self.q[at : at + self.nslots * _SLOT_Q : _SLOT_Q])
