"""``threads = N``: a worker's pool of app threads.

Theory of operation
-------------------
The worker's event loop stays in the main thread and keeps doing all the
socket work. When a request is complete, the loop hands a ``Job`` (the request's
environ, the app, its ``Response``) to the pool instead of calling the app. A
pool thread calls the app, collects the whole response body (the iterable, or
what ``write()`` was given) and closes the iterable, then puts the job on the
done queue and writes to an ``eventfd`` the loop waits on; the loop sends the
response. So the app runs in N threads at once while no socket is ever touched
by two threads. The price: a response body is collected in memory before it is
sent (no streaming back-pressure in threaded mode).

Each thread is one scoreboard *core*: it writes its request's start time (and
description, when harakiri is on) there, so harakiri sees every thread.

Must not know: protocols, sockets, connections (a job's ``owner`` is opaque).
"""

from __future__ import annotations

import os
import queue
import threading
import time
import traceback
from collections import deque

__all__ = ["AppThreads", "Job"]


class Job:
    __slots__ = ("owner", "app", "environ", "resp", "desc", "chunks", "error")

    def __init__(self, owner, app, environ: dict, resp, desc: bytes) -> None:
        self.owner = owner
        self.app = app
        self.environ = environ
        self.resp = resp
        self.desc = desc
        self.chunks: list[bytes] = []
        self.error: str | None = None  # the traceback when the app raised

    def write(self, resp, data: bytes) -> None:
        if data:
            self.chunks.append(data)


class AppThreads:
    def __init__(self, count: int, scoreboard, slot: int) -> None:
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.done: deque[Job] = deque()
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
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
        job.resp.writer = job.write
        self.jobs.put(job)

    def finished(self) -> list[Job]:
        """The jobs done since the last call (the loop calls this when the eventfd fires)."""
        try:
            os.eventfd_read(self.efd)
        except BlockingIOError:
            pass
        out = []
        done = self.done
        while done:
            out.append(done.popleft())
        return out

    def _run(self, core: int) -> None:
        scoreboard = self.scoreboard
        slot = self.slot
        while True:
            job = self.jobs.get()
            if job.desc:
                scoreboard.request_desc(slot, job.desc, core)
            scoreboard.core_start(slot, core, time.time())
            result = None
            try:
                result = job.app(job.environ, job.resp.start_response)
                if type(result) is list or type(result) is tuple:
                    job.chunks.extend(result)
                else:
                    for chunk in result:
                        if job.resp.status is None:
                            raise RuntimeError(
                                "the app yielded body data before calling start_response()"
                            )
                        if chunk:
                            job.chunks.append(chunk)
                if job.resp.status is None:
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
                scoreboard.core_end(slot, core)
            self.done.append(job)
            os.eventfd_write(self.efd, 1)
