"""The protocol's sink: what a connection does with a request's head, body and end.

Theory of operation
-------------------
``RequestSink`` is the part of ``connection.Connection`` the protocol calls back
while ``feed()`` runs: the head starts the body's deadline and is checked against
``limit-post``; the body is stored as it arrives (``wsgi.Body``: memory, then a
temporary file), and a body that cannot be stored (no descriptor, a full or
missing spool directory) is a 500, never a dying worker; the end queues the
complete request in ``ready``. A refusal is recorded in ``refused`` (the
connection handles it once ``feed()`` returned) and the protocol's further
events for that request are ignored.

Must not know: sockets, the write queue, the app.
"""

from __future__ import annotations

import tempfile

from ..protocols import ProtocolError, Request
from ..wsgi import Body

__all__ = ["RequestSink"]


class RequestSink:
    """Mixed into ``Connection`` (uses its ``worker``, ``refused``, ``ready``,
    ``receiving``, ``got_head`` and ``deadline``)."""

    __slots__ = ()

    def on_head(self, req: Request) -> None:
        if self.refused is not None:
            return
        worker = self.worker
        self.got_head = True  # the header deadline is met; the body gets its own
        self.deadline = worker.now + worker.socket_timeout
        limit = worker.limit_post
        if limit and req.content_length is not None and req.content_length > limit:
            self.refused = ProtocolError(
                f"request body of {req.content_length} bytes over limit-post", 413
            )
            return
        if req.content_length != 0:
            req.body = Body(worker.spool_threshold)
            self.receiving = req

    def on_body(self, req: Request, data: bytes) -> None:
        if self.refused is not None:
            return
        body = req.body
        if body is None:
            body = req.body = Body(self.worker.spool_threshold)
            self.receiving = req
        try:
            body.write(data)
        except OSError as exc:  # no descriptor, or the spool directory full, missing or not ours
            self.spool_failed(body, exc)
            return
        # socket-timeout between body bytes, not for the whole body
        self.deadline = self.worker.now + self.worker.socket_timeout
        limit = self.worker.limit_post
        if limit and body.size > limit:
            self.refused = ProtocolError(f"request body over limit-post ({limit} bytes)", 413)
            body.close()

    def on_end(self, req: Request) -> None:
        self.receiving = None
        self.got_head = False  # the next bytes are the next request's head
        if self.refused is None:
            body = req.body
            if body is not None:
                try:
                    body.finish()
                except OSError as exc:
                    self.spool_failed(body, exc)
                    return
            self.ready.append(req)

    def spool_failed(self, body: Body, exc: OSError) -> None:
        """The body could not be written to its temporary file: a 500, logged."""
        where = tempfile.gettempdir()
        self.refused = ProtocolError(
            f"cannot spool the request body to {where}: {exc.strerror or exc}", 500
        )
        body.close()
