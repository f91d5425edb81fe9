"""One request's response on its way out: the pump, back-pressure, sendfile,
the legacy ``write()``, the app's errors and the threads' hand-back.

Theory of operation
-------------------
An ``Exchange`` is created when the app is called for a request and lives until
its response is written (or the connection is gone). It is the request's
``start_response`` (``wsgi.Response``) and what the worker tracks while sending:

* an app's iterator is pulled (``pump``) while the socket keeps up: above
  ``HIGH_WATER`` unsent bytes it stops, and the connection resumes it once the
  socket drained (``resume`` on ``EPOLLOUT``);
* a ``wsgi.file_wrapper`` over a real file, on a protocol whose body framing is
  identity (``sendfile`` capability), goes out with ``os.sendfile`` as the socket
  takes it: the offset is kept here, the rest waits for ``EPOLLOUT`` like any
  other response, so one slow reader never holds the worker;
* the legacy ``write()`` of PEP 3333 returns once the client took the bytes
  above ``HIGH_WATER`` (the app expects it to block); meanwhile the loop runs
  on for the other connections (``Loop.wait_drained``), so a slow client holds
  its own app call, not the worker;
* an app error is a 500 when nothing was sent yet, else the connection is cut;
* with ``threads`` the pool reports jobs with news (``threads_done``): the
  loop takes a job's chunks while the socket keeps up (``from_thread``), so a
  threaded response streams with the same back-pressure (the thread waits
  while its inbox is full, see ``appthreads``); a response the app finished
  before the loop looked goes out in one write with its length, and a
  ``wsgi.file_wrapper`` goes out through ``sendfile`` here, not in the thread.

When a response is complete, ``finish`` closes the app's iterable and
``request_finished`` does the accounting (scoreboard, guards, request log).

Must not know: which protocol frames the bytes (it calls the protocol's
``response_*`` and reads its capabilities on the listener), the event loop's
other connections, how requests are parsed.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import time
import traceback

from ..logs import log
from ..protocols import HeadError, Request
from ..routing.rules import DONOTLOG
from ..wsgi import Response
from .roles import AppHost, Books, Client

__all__ = [
    "HIGH_WATER",
    "Exchange",
    "request_line",
    "after_exchange",
    "request_finished",
    "simple_response",
    "threads_done",
    "job_news",
]

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
HIGH_WATER = 256 * 1024  # stop pulling from an app iterator above this many unsent bytes
ERROR_BODY = b"Internal Server Error\n"
WRITING = -2  # Exchange.file_fd while the app's write() waits for the socket


def request_line(env: dict) -> str:
    """The request as ``METHOD URI``, as the logs and the scoreboard name it."""
    return f"{env.get('REQUEST_METHOD')} {env.get('REQUEST_URI') or env.get('PATH_INFO', '')}"


class Exchange(Response):
    """One request's response: its ``start_response`` (``wsgi.Response``) and what
    the worker tracks while sending it (an app iterator or a file may wait for the
    socket). One object per request, no bound methods built on the hot path."""

    __slots__ = (
        "conn",
        "req",
        "result",
        "iterator",
        "start",
        "rsize",
        "hsize",
        "app_result_closed",
        "declared",
        "file_fd",
        "file_offset",
        "file_left",
        "job",
    )

    def __init__(self, conn: Client, req: Request, start: float) -> None:
        self.status = None
        self.headers = None
        self.headers_sent = False
        self.writer = Exchange.legacy_write
        self.conn = conn
        self.req = req
        self.result = None
        self.iterator = None
        self.start = start
        self.rsize = 0
        self.hsize = 0
        self.app_result_closed = False
        # the app's Content-Length once the head is sent (-1: none; -2: end sent)
        self.declared = -1
        # a file being sent with sendfile (-1: none); file_offset/file_left set with it
        self.file_fd = -1
        self.job = None  # threads: the pool's job producing this response

    def close_result(self) -> None:
        if not self.app_result_closed:
            self.app_result_closed = True
            close = getattr(self.result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log(
                        f"error in close() of the app's iterable:\n{traceback.format_exc().rstrip()}"
                    )

    def abort(self, why: str) -> None:
        self.close_result()
        job = self.job
        if job is None:
            if self.req.body is not None:
                self.req.body.close()  # its spool file now, not at a garbage collection
        elif not job.done:
            job.pool.cancel(job)  # its thread stops at its next chunk (it reads the body)
        log(f"{why} during response to {request_line(self.req.environ)} ({self.rsize} bytes sent)")
        worker = self.conn.worker
        if worker.logging and worker.req_log.ioerror:  # log-ioerror
            line = worker.req_log.line(
                self.req.environ,
                self.status or "500",
                self.rsize,
                self.hsize,
                len(self.headers or ()),
                self.start,
                time.time(),
                worker.requests,
                worker.scoreboard.total(),
            )
            log.write_request(line)

    # -- the head and the body ---------------------------------------------------

    def send_head(self, length: int | None = None) -> None:
        self.conn.send(self.head(length))

    def head(self, length: int | None = None) -> bytes:
        """The response head, framed; from now on it counts as sent."""
        head = self.conn.proto.response_head(self.req, self.status, self.headers, length)
        for name, value in self.headers:
            if len(name) == 14 and name.lower() == "content-length" and value.isdigit():
                self.declared = int(value)
        self.headers_sent = True
        self.hsize = len(head)
        return head

    def pump(self) -> None:
        """Pull chunks from the app's iterator while the socket keeps up."""
        conn = self.conn
        proto = conn.proto
        req = self.req
        try:
            for chunk in self.iterator:
                if self.status is None:
                    raise RuntimeError("the app yielded body data before calling start_response()")
                if not chunk:
                    continue
                self.send_chunk(conn, proto, req, chunk)
                if conn.closed:
                    return
                if conn.out_size > HIGH_WATER:
                    return  # resumed from the connection's on_writable()
            if self.status is None:
                raise RuntimeError("the app returned without calling start_response()")
            if not self.headers_sent:
                self.send_head(0)
        except Exception:
            self.app_error()
            return
        if self.declared != -2:
            conn.send(proto.response_end(req))
        self.finish()

    def send_chunk(self, conn: Client, proto, req: Request, chunk: bytes) -> None:
        """One chunk of the body, framed; the first in the same write as the head."""
        head = b"" if self.headers_sent else self.head()
        data = proto.response_body(req, chunk)
        self.rsize += len(chunk)
        if 0 <= self.declared <= self.rsize:
            # the last bytes of a declared length: the end (FastCGI's
            # END_REQUEST) goes in the same write, or nginx may read the
            # body, give up on the kept-alive connection and close it
            data += proto.response_end(req)
            self.declared = -2
        conn.send(head + data if head else data)

    def resume(self) -> bool:
        """The socket took what was queued: go on with the body. True while the
        response still waits for the socket with nothing queued (a file)."""
        if self.file_fd >= 0:
            if not self.send_file():
                return True
        elif self.file_fd == WRITING:
            return False  # the app's write() waits for the socket itself
        elif self.iterator is not None:
            self.pump()
        elif self.job is not None:
            self.from_thread()  # take what the thread produced meanwhile
        else:
            return False
        conn = self.conn
        if conn.current is None and not conn.closed:
            after_exchange(conn, self.req)
        return False

    # -- files: sendfile through the loop ----------------------------------------

    def start_file(self) -> bool:
        """``wsgi.file_wrapper`` over a real file with identity framing: send it
        with ``sendfile``. False when this response cannot (the app's iterable
        is then iterated like any other)."""
        conn = self.conn
        fd = self.result.fileno()
        if fd is None or self.status is None or not conn.listener.sendfile:
            return False
        try:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
            size = os.fstat(fd).st_size - offset
        except OSError:
            return False
        length = size
        for k, v in self.headers:
            if k.lower() == "content-length":
                length = min(int(v), size)
            elif k.lower() == "transfer-encoding":
                return False
        self.send_head(length)
        if self.req.head_only or not length:
            length = 0
        self.file_fd = fd
        self.file_offset = offset
        self.file_left = length
        self.send_file()
        return True

    def send_file(self) -> bool:
        """Send what the socket takes of the file now; True once the response is
        complete. Otherwise ``EPOLLOUT`` brings us back (``resume``)."""
        conn = self.conn
        if conn.out and not conn.flush():
            return False  # the head is not out yet (EPOLLOUT is asked for), or gone
        if conn.closed:
            return False
        out_fd = conn.fd
        fd = self.file_fd
        while self.file_left > 0:
            try:
                n = os.sendfile(out_fd, fd, self.file_offset, self.file_left)
            except BlockingIOError:
                worker = conn.worker
                conn.awaiting_write = True
                conn.rearm()
                conn.deadline = worker.now + worker.socket_timeout
                return False
            except OSError:
                conn.awaiting_write = False
                conn.broken()
                return False
            if n == 0:
                break  # the file is shorter than it was
            self.file_offset += n
            self.file_left -= n
            self.rsize += n
        conn.awaiting_write = False
        self.file_fd = -1
        conn.send(conn.proto.response_end(self.req))
        self.finish()
        return True

    # -- PEP 3333 write() ---------------------------------------------------------

    def legacy_write(self, data: bytes) -> None:
        """PEP 3333 ``write()``: send the head if needed, then the data; block (on
        this connection only) when the client is slow, as the app expects."""
        conn = self.conn
        if conn.closed:
            raise OSError(errno.EPIPE, "the client connection is gone")
        if not self.headers_sent:
            self.send_head()
        if data:
            conn.send(conn.proto.response_body(self.req, data))
            self.rsize += len(data)
        if conn.out_size > HIGH_WATER:
            self.block_until_drained()

    def block_until_drained(self) -> None:
        conn = self.conn
        deadline = time.monotonic() + conn.worker.socket_timeout
        file_fd, self.file_fd = self.file_fd, WRITING
        try:
            drained = conn.worker.wait_drained(conn, deadline)
        finally:
            self.file_fd = file_fd
        if not drained and not conn.closed:
            conn.broken()
            raise OSError(errno.ETIMEDOUT, "client too slow to read the response")
        if conn.closed:
            raise OSError(errno.EPIPE, "the client connection is gone")

    # -- threads: what the app's thread produced ----------------------------------

    def from_thread(self) -> None:
        """Send what the thread of ``self`` produced so far, while the socket
        keeps up (``resume`` comes back for the rest once it drained)."""
        conn = self.conn
        job = self.job
        pool = job.pool
        if conn.out_size > HIGH_WATER:
            pool.hold(job)
            return
        chunks, done = pool.take(job)
        proto = conn.proto
        req = self.req
        if done and not self.headers_sent and job.error is None and job.file is None:
            # the whole response at once: one write, with its length
            self.app_result_closed = True  # the thread closed it
            try:
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                if type(data) is not bytes:
                    raise TypeError(f"the app's body holds {type(data).__name__}, not bytes")
            except TypeError:
                self.app_failed(conn.worker, traceback.format_exc().rstrip())
                self.failed()
                return
            head = proto.response_head(req, self.status, self.headers, len(data))
            self.headers_sent = True
            self.hsize = len(head)
            conn.send(head + proto.response_body(req, data) + proto.response_end(req))
            self.rsize = len(data)
            self.finish()
            return
        for chunk in chunks:
            if chunk:
                self.send_chunk(conn, proto, req, chunk)
                if conn.closed:
                    return
        if not done:
            return
        if job.error is not None:
            self.app_result_closed = True
            self.app_failed(conn.worker, job.error)
            self.failed()
            return
        if job.file is not None:
            # a wsgi.file_wrapper: sent from here (sendfile), not in the thread
            self.result = job.file
            if not self.start_file():
                self.iterator = iter(job.file)
                self.pump()
            return
        self.app_result_closed = True
        if not self.headers_sent:
            self.send_head(0)
        if self.declared != -2:
            conn.send(proto.response_end(req))
        self.finish()

    # -- the end ------------------------------------------------------------------

    def app_error(self) -> None:
        """The app raised (or its status or headers cannot go on the wire): 500
        if nothing was sent yet, else cut the connection. Never raises: when even
        the 500 cannot be written, the connection is closed."""
        self.app_failed(self.conn.worker, error_details())
        self.close_result()
        self.failed()

    def failed(self) -> None:
        """After the app's error: a 500 if nothing was sent yet, else cut the connection."""
        conn = self.conn
        req = self.req
        worker = conn.worker
        if conn.closed:
            request_finished(worker, self, "500 Internal Server Error")
            return
        if not self.headers_sent:
            try:
                body = self.become_500()
                self.send_head(len(body))
                conn.send(conn.proto.response_body(req, body) + conn.proto.response_end(req))
            except Exception as exc:
                log(f"cannot answer {request_line(req.environ)} with a 500 ({exc}): closing")
            else:
                self.rsize = len(body)
                self.finish()
                return
        conn.current = None
        request_finished(worker, self, self.status or "500")
        conn.close()

    def app_failed(self, worker: Books, details: str) -> None:
        """Log the app's error for this request and count it in the scoreboard."""
        log(f"error in the app for {request_line(self.req.environ)}: {details}")
        worker.scoreboard.exception(worker.slot)

    def become_500(self) -> bytes:
        """Nothing of the response was sent: make it a 500 that closes the
        connection; the body to send."""
        self.status = "500 Internal Server Error"
        self.headers = [("Content-Type", "text/plain")]
        self.req.keep_alive = False
        return ERROR_BODY

    def finish(self) -> None:
        self.conn.current = None
        self.close_result()
        request_finished(self.conn.worker, self, self.status)


def error_details() -> str:
    """What to log of the exception being handled: a head the protocol refused
    is the app's data, said in one line; anything else, the traceback."""
    exc = sys.exc_info()[1]
    if isinstance(exc, HeadError):
        return f"{exc} -> 500"
    return "\n" + traceback.format_exc().rstrip()


def simple_response(conn: Client, req: Request, status: str, body: bytes) -> None:
    """A response of the worker's own (no app): ``404 no app mounted here``."""
    proto = conn.proto
    conn.send(
        proto.response_head(req, status, [("Content-Type", "text/plain")], len(body))
        + proto.response_body(req, body)
        + proto.response_end(req)
    )


def after_exchange(conn: Client, req: Request) -> None:
    """A response that waited for the socket (or a thread) is complete: the
    connection goes on with its next request, or closes."""
    conn.request_done(req)
    if not conn.closed and not conn.out:
        if conn.ready or conn.pending:
            conn.process()
        else:
            conn.rearm()


def request_finished(worker: Books, exchange: Exchange, status: str | None) -> None:
    """The accounting of one response: scoreboard, guards, the request log."""
    scoreboard = worker.scoreboard
    end = time.time()
    code = status[:3] if status else "500"
    scoreboard.request_done(
        worker.slot,
        int(code) if code.isdigit() else 500,
        exchange.rsize + exchange.hsize,
        end - exchange.start,
    )
    if worker.guard is not None and worker.recycle_reason is None:
        worker.recycle_reason = worker.guard.after_request(worker.requests)
    if worker.logging and DONOTLOG not in exchange.req.environ:
        req_log = worker.req_log
        if req_log.every or req_log.wanted(
            code, exchange.rsize, end - exchange.start, hasattr(exchange, "file_offset")
        ):
            line = req_log.line(
                exchange.req.environ,
                status or "500",
                exchange.rsize,
                exchange.hsize,
                len(exchange.headers or ()),
                exchange.start,
                end,
                worker.requests,
                scoreboard.total() if req_log.needs_total else 0,
            )
            log.write_request(line)


def threads_done(worker: AppHost, fired: bool = True) -> None:
    """Jobs of the app threads with news: send what they produced (the loop's
    thread only; ``fired``: the pool's eventfd woke the loop)."""
    pool = worker.pool
    for job in pool.finished(fired):
        job_news(worker, pool, job)


def job_news(worker: AppHost, pool, job) -> None:
    """One job of ``pool`` has news (chunks, or its end): send them."""
    exchange = job.owner
    conn = exchange.conn
    if conn.closed or conn.current is not exchange:
        _, done = pool.take(job)  # the chunks of a gone client: dropped
        if done:
            exchange.app_result_closed = True  # the thread closed it
            if job.file is not None:
                exchange.result = job.file
                exchange.app_result_closed = False
                exchange.close_result()
            if exchange.req.body is not None:
                exchange.req.body.close()
            request_finished(worker, exchange, exchange.status or "500")
        return
    try:
        exchange.from_thread()
    except Exception:  # the app's status or headers cannot go on the wire: a 500
        exchange.app_error()
    if conn.current is None and not conn.closed:
        after_exchange(conn, exchange.req)
