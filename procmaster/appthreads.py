"""``threads = N``: a worker's pool of app threads.

Theory of operation
-------------------
The worker's event loop stays in the main thread and keeps doing all the
socket work. When a request is complete, the loop hands a ``Job`` (the request's
environ, the app, its ``Response``) to the pool instead of calling the app. A
pool thread calls the app and hands what it produces to the loop, which alone
touches the socket; so the app runs in N threads at once while no socket is
ever touched by two threads.

A response streams as it does without threads: each chunk the thread gets
(from the iterable, or from ``write()``) goes to the job's inbox and the loop
is woken (an ``eventfd``) when the job has news, unless it is awake and will
look at the pool's ``news`` before it waits again: the loop arms the pool before
each ``poll`` (``loop_sleeps``, which also tells it whether news already waits)
and disarms it when ``poll`` returns (``loop_woke``); a thread writes the
eventfd only when armed, read after its news was appended, so a busy loop
takes news with no system call on either side. The loop takes the inbox only
while the client's socket keeps up; while the inbox holds more than
``high_water`` bytes, the thread waits (back-pressure): a slow client holds its
thread and a bounded buffer, never the loop and never unbounded memory. A
connection that goes away cancels its job: the thread's next chunk (or
``write()``) raises ``OSError`` and the iterable is closed. A list or tuple
is handed over whole, and a ``wsgi.file_wrapper`` over a real file is handed
to the loop unread (it sends it with ``sendfile``, without holding the thread).

Each thread is one scoreboard *core*: it writes its request's start time (and
description, when harakiri is on) there, so harakiri sees every thread.

Must not know: protocols, sockets, connections (a job's ``owner`` is opaque).
"""

from __future__ import annotations

import errno
import os
import queue
import threading
import time
import traceback
from collections import deque

from .wsgi import FileWrapper

__all__ = ["AppThreads", "Job"]


class Job:
    """One request handed to the pool. The thread and the loop share the
    inbox fields (``chunks``, ``inbox``, ``done``, ``cancelled``, ``flagged``)
    under the pool's lock."""

    __slots__ = (
        "owner",
        "app",
        "environ",
        "resp",
        "desc",
        "chunks",
        "error",
        "pool",
        "inbox",
        "done",
        "cancelled",
        "flagged",
        "file",
        "streamed",
    )

    def __init__(self, owner, app, environ: dict, resp, desc: bytes) -> None:
        self.owner = owner
        self.app = app
        self.environ = environ
        self.resp = resp
        self.desc = desc
        self.chunks: list[bytes] = []
        self.error: str | None = None  # the traceback when the app raised
        self.pool: AppThreads | None = None
        self.inbox = 0  # bytes in chunks
        self.done = False  # the app returned (or raised): chunks are the last ones
        self.cancelled = False  # the connection is gone
        self.flagged = False  # in the pool's news (the loop will look at it)
        self.file = None  # a wsgi.file_wrapper for the loop to send
        self.streamed = False  # a chunk went through the inbox (write(), an iterator)

    def write(self, resp, data: bytes) -> None:
        """PEP 3333 ``write()`` in a thread: the data goes out like a chunk."""
        if data:
            self.pool.put(self, data)


class AppThreads:
    def __init__(self, count: int, scoreboard, slot: int, high_water: int = 256 * 1024) -> None:
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.news: deque[Job] = deque()  # jobs with chunks to take, or done
        self.cond = threading.Condition(threading.Lock())
        self.high_water = high_water
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        # False while the loop is awake and will look at ``news`` before it
        # sleeps again (see the module docstring); always True for a reader
        # that does not take part (the WebSocket threads' own eventfd reader)
        self.armed = True
        self.scoreboard = scoreboard
        self.slot = slot
        self.threads = [
            threading.Thread(target=self._run, args=(core,), daemon=True, name=f"app-{core}")
            for core in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def fileno(self) -> int:
        return self.efd

    def submit(self, job: Job) -> None:
        job.pool = self
        job.resp.writer = job.write
        self.jobs.put(job)

    # -- the loop's side ------------------------------------------------------------

    def loop_sleeps(self) -> bool:
        """The loop is about to wait in ``poll``: True if it may (no news is
        waiting; from now on news writes the eventfd), False if it must not."""
        self.armed = True
        return not self.news  # read after arming: news put before is seen here

    def loop_woke(self) -> None:
        """The loop's ``poll`` returned: until it sleeps again, news is found
        in ``news`` without a wake-up."""
        self.armed = False

    def finished(self, fired: bool = True) -> list[Job]:
        """The jobs with news since the last call (the loop calls this when the
        eventfd fired, or when ``news`` is not empty); the loop then ``take``s
        what each has."""
        if fired:
            try:
                os.eventfd_read(self.efd)
            except BlockingIOError:
                pass
        with self.cond:
            out = list(self.news)
            self.news.clear()
        return out

    def take(self, job: Job) -> tuple[list[bytes], bool]:
        """The chunks of ``job`` so far (the loop sends them; its thread may go
        on), and whether they are the last. Until this is called again the job
        is not reported as news."""
        with self.cond:
            chunks = job.chunks
            if chunks:
                job.chunks = []
                job.inbox = 0
                self.cond.notify_all()
            job.flagged = False
            return chunks, job.done

    def hold(self, job: Job) -> None:
        """The loop leaves the chunks for now (the client is behind) and will
        ``take`` them once its socket drained: no need to report news."""
        with self.cond:
            job.flagged = True

    def cancel(self, job: Job) -> None:
        """The connection is gone: the thread stops at its next chunk."""
        with self.cond:
            job.cancelled = True
            if job.flagged and job not in self.news:
                job.flagged = False  # held by the loop: its end must be reported
            self.cond.notify_all()

    # -- the threads' side ---------------------------------------------------------------

    def put(self, job: Job, data: bytes) -> None:
        """A chunk of the response: to the inbox; wait while the inbox is full."""
        if type(data) is not bytes and not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"a response body chunk must be bytes, not {type(data).__name__}")
        cond = self.cond
        with cond:
            if job.cancelled:
                raise OSError(errno.EPIPE, "the client connection is gone")
            job.chunks.append(data)
            job.inbox += len(data)
            job.streamed = True
            wake = not job.flagged
            if wake:
                job.flagged = True
                self.news.append(job)
        if wake and self.armed:  # (armed is read after news was appended)
            os.eventfd_write(self.efd, 1)
        if job.inbox > self.high_water:
            with cond:
                while job.inbox > self.high_water and not job.cancelled:
                    cond.wait()
            if job.cancelled:
                raise OSError(errno.EPIPE, "the client connection is gone")

    def _end(self, job: Job) -> None:
        with self.cond:
            job.done = True
            wake = not job.flagged
            if wake:
                job.flagged = True
                self.news.append(job)
        if wake and self.armed:  # (armed is read after news was appended)
            os.eventfd_write(self.efd, 1)

    def _run(self, core: int) -> None:
        while True:
            self.run_job(self.jobs.get(), core)

    def run_job(self, job: Job, core: int | None) -> None:
        """Call the app for ``job`` in this thread and hand the loop what it
        produces; ``core`` is this thread's scoreboard core (None: none, a
        WebSocket's own thread)."""
        scoreboard = self.scoreboard
        slot = self.slot
        if core is not None:
            if job.desc:
                scoreboard.request_desc(slot, job.desc, core)
            scoreboard.core_start(slot, core, time.time())
        result = None
        try:
            resp = job.resp
            result = job.app(job.environ, resp.start_response)
            if type(result) is list or type(result) is tuple:
                if job.streamed:  # after write(): in order, through the inbox
                    for chunk in result:
                        if chunk:
                            self.put(job, chunk)
                else:  # handed over whole: nothing was put, the loop waits for done
                    job.chunks.extend(result)
            elif (
                isinstance(result, FileWrapper)
                and resp.status is not None
                and not job.streamed
                and result.fileno() is not None
            ):
                # wsgi.file_wrapper over a real file: the loop sends it
                job.file, result = result, None
            else:
                for chunk in result:
                    if resp.status is None:
                        raise RuntimeError(
                            "the app yielded body data before calling start_response()"
                        )
                    if chunk:
                        self.put(job, chunk)
            if resp.status is None:
                raise RuntimeError("the app returned without calling start_response()")
        except Exception:
            job.error = traceback.format_exc().rstrip()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    job.error = job.error or traceback.format_exc().rstrip()
            if core is not None:
                scoreboard.core_end(slot, core)
        self._end(job)
