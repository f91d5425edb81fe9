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
* the legacy ``write()`` of PEP 3333 blocks, on this connection only, while the
  client is slow (the app expects it to);
* an app error is a 500 when nothing was sent yet, else the connection is cut;
* with ``threads`` the pool hands finished jobs back (``threads_done``) and the
  loop sends each whole response.

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
import time
import traceback

from ..logs import log
from ..protocols import Request
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
]

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
HIGH_WATER = 256 * 1024  # stop pulling from an app iterator above this many unsent bytes
ERROR_BODY = b"Internal Server Error\n"


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
        log(f"{why} during response to {request_line(self.req.environ)} ({self.rsize} bytes sent)")

    # -- the head and the body ---------------------------------------------------

    def send_head(self, length: int | None = None) -> None:
        conn = self.conn
        head = conn.proto.response_head(self.req, self.status, self.headers, length)
        for name, value in self.headers:
            if len(name) == 14 and name.lower() == "content-length" and value.isdigit():
                self.declared = int(value)
        self.headers_sent = True
        self.hsize = len(head)
        conn.send(head)

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
                if not self.headers_sent:
                    self.send_head()
                data = proto.response_body(req, chunk)
                self.rsize += len(chunk)
                if 0 <= self.declared <= self.rsize:
                    # the last bytes of a declared length: the end (FastCGI's
                    # END_REQUEST) goes in the same write, or nginx may read the
                    # body, give up on the kept-alive connection and close it
                    data += proto.response_end(req)
                    self.declared = -2
                conn.send(data)
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

    def resume(self) -> bool:
        """The socket took what was queued: go on with the body. True while the
        response still waits for the socket with nothing queued (a file)."""
        if self.file_fd >= 0:
            if not self.send_file():
                return True
        elif self.iterator is not None:
            self.pump()
        else:
            return False  # threads: the pool is still producing
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
                worker.modify(out_fd, EPOLLOUT)
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
        poller = select.poll()
        poller.register(conn.fd, select.POLLOUT)
        while conn.out and not conn.closed:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                conn.broken()
                raise OSError(errno.ETIMEDOUT, "client too slow to read the response")
            conn.flush()
        if conn.closed:
            raise OSError(errno.EPIPE, "the client connection is gone")

    # -- the end ------------------------------------------------------------------

    def app_error(self) -> None:
        """The app raised: 500 if nothing was sent yet, else cut the connection."""
        conn = self.conn
        req = self.req
        worker = conn.worker
        self.app_failed(worker, traceback.format_exc().rstrip())
        self.close_result()
        if conn.closed:
            request_finished(worker, self, "500 Internal Server Error")
            return
        if self.headers_sent:
            conn.current = None
            request_finished(worker, self, self.status or "500")
            conn.close()
            return
        body = self.become_500()
        self.send_head(len(body))
        conn.send(conn.proto.response_body(req, body) + conn.proto.response_end(req))
        self.rsize = len(body)
        self.finish()

    def app_failed(self, worker: Books, details: str) -> None:
        """Log the app's error for this request and count it in the scoreboard."""
        log(f"error in the app for {request_line(self.req.environ)}:\n{details}")
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
        conn.worker.modify(conn.fd, EPOLLIN if conn.reading else 0)
        if conn.ready:
            conn.process()


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
    if worker.logging:
        line = worker.req_log.line(
            exchange.req.environ,
            status or "500",
            exchange.rsize,
            exchange.hsize,
            len(exchange.headers or ()),
            exchange.start,
            end,
            worker.requests,
            scoreboard.total(),
        )
        log.write_request(line)


def threads_done(worker: AppHost) -> None:
    """Responses the app threads finished: send them (the loop's thread only)."""
    for job in worker.pool.finished():
        exchange = job.owner
        exchange.app_result_closed = True  # the thread closed it
        conn = exchange.conn
        req = exchange.req
        if conn.closed or conn.current is not exchange:
            request_finished(worker, exchange, exchange.status or "500")
            continue
        proto = conn.proto
        if job.error is not None:
            exchange.app_failed(worker, job.error)
            data = exchange.become_500()
        else:
            data = b"".join(job.chunks)
        head = proto.response_head(req, exchange.status, exchange.headers, len(data))
        exchange.headers_sent = True
        exchange.hsize = len(head)
        conn.send(head + proto.response_body(req, data) + proto.response_end(req))
        exchange.rsize = len(data)
        exchange.finish()
        if not conn.closed:
            after_exchange(conn, req)
