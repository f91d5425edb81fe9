"""FastCGI 1.0, responder role, as nginx's ``fastcgi_pass`` speaks it: the request machine.

Theory of operation
-------------------
The wire format (record header, types, the records we produce, name-value
pairs) is ``fastcgi_records.py``'s. This module is the machine over records,
never over bytes::

    header --> content (streamed: STDIN, PARAMS, skipped; or gathered: the small
               BEGIN_REQUEST / ABORT_REQUEST / management records) --> padding

Only a partial 8-byte header is ever kept between ``feed()`` calls; STDIN
content goes to ``sink.on_body`` as it arrives (a record split across reads is
delivered in pieces), never gathered.

One request at a time per connection (``FCGI_MPXS_CONNS`` is 0). The request
id ``R`` is *active* from its BEGIN_REQUEST until we produce its END_REQUEST, and
the active request goes through three phases::

    PARAMS --(empty PARAMS: on_head)--> STDIN --(empty STDIN: on_end)--> DONE

END_REQUEST is produced exactly once per request: by ``response_end()``, or by
``feed()`` when the web server aborts a request that has not reached DONE.
Then ``R`` is inactive and, as the spec says, records for an inactive id are
ignored (e.g. the rest of STDIN when the app answered without reading its body),
which keeps an ``fastcgi_keep_conn`` connection usable for the next request.

Web server records, and what happens to them:

- BEGIN_REQUEST: role RESPONDER starts a request, ``req.keep_alive`` = the
  FCGI_KEEP_CONN flag; another role is answered (by ``feed()``) with
  END_REQUEST/FCGI_UNKNOWN_ROLE; a *different* id while a request is active is
  answered with END_REQUEST/FCGI_CANT_MPX_CONN and its records are then ignored
  (not queued); the *same* id while its request is complete but not yet
  answered is answered the same way right after that request's END_REQUEST
  (its records skipped meanwhile); the *same* id while its request is still
  being received is a ``ProtocolError``.
- PARAMS: gathered (pairs may straddle records) up to ``buffer_size`` (measured
  as uWSGI does, in uwsgi-encoded bytes) then decoded in one pass at the empty
  PARAMS record.
- STDIN: ``on_body`` per piece; the empty STDIN record gives ``on_end``.
- ABORT_REQUEST: ``req.aborted = True``. Before on_head the request silently
  disappears; between on_head and on_end the worker gets ``on_end`` (body cut
  short, ``req.aborted`` set); in both cases ``feed()`` returns the END_REQUEST
  and later ``response_*`` calls for that request return ``b""``. After on_end
  the worker still owns the request: ``response_head``/``response_body`` return
  ``b""`` and ``response_end`` produces the END_REQUEST.
- DATA: ignored (it belongs to the FILTER role).
- Management records (request id 0): GET_VALUES answered with
  GET_VALUES_RESULT for the names asked among FCGI_MAX_CONNS, FCGI_MAX_REQS,
  FCGI_MPXS_CONNS; any other type with UNKNOWN_TYPE.
- Anything else (wrong version, a type the web server never sends, truncated
  record at eof, malformed pairs, oversized params) is a ``ProtocolError``.

Responses are STDOUT records: the head in CGI form (``Status: 200 OK`` then the
app's headers, no HTTP status line; written by ``head.cached_head``, whose gate
refuses a CR or LF inside them with ``HeadError``; params holding CR, LF or NUL
are refused, ``head.check_vars``),
the body chunks as they come, then the end of the response (empty STDOUT +
END_REQUEST); how they are framed is ``fastcgi_records.py``'s.

Must not know
-------------
How a record is laid out beyond its header's fields. No sockets, no ``os``, no
WSGI, no logging. Bad input raises ``ProtocolError(status=0)`` (the worker just
closes) and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from .base import ProtocolBase, ProtocolError, Request, Sink
from .fastcgi_records import (
    ABORT_REQUEST,
    BEGIN_BODY,
    BEGIN_REQUEST,
    CANT_MPX_CONN,
    DATA,
    GET_VALUES,
    HEADER,
    KEEP_CONN,
    PARAMS,
    RESPONDER,
    STDIN,
    TYPE_NAMES,
    UNKNOWN_ROLE,
    VERSION,
    encode_pairs,
    end_of_response,
    end_request,
    parse_pairs,
    record,
    stdout_records,
    too_large,
    unknown_type,
    values_result,
)
from .head import cached_head, check_vars

# encode_pairs, parse_pairs and record stay importable from here (tests' clients)
__all__ = ["FastCGIProtocol", "encode_pairs", "parse_pairs", "record"]

# content handling while inside a record
_SKIP = 0
_STDIN = 1
_PARAMS = 2
_GATHER = 3

# phases of the active request
_PH_PARAMS = 0
_PH_STDIN = 1
_PH_DONE = 2

# req.state: whether the request still may produce output
_OPEN = "open"
_ENDED = "ended"


def _content_length(value: str | None) -> int | None:
    if not value:
        return None  # the body is framed by the STDIN stream whatever its size
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    raise ProtocolError(f"invalid CONTENT_LENGTH in FastCGI params: {value[:40]!r}", 0)


class FastCGIProtocol(ProtocolBase):
    """Sans-IO FastCGI responder for one connection (see the module docstring)."""

    name = "fastcgi"

    __slots__ = (
        "sink",
        "buffer_size",
        "max_conns",
        "max_reqs",
        "_hdr",
        "_kind",
        "_left",
        "_pad",
        "_rtype",
        "_rid",
        "_gather",
        "_req",
        "_phase",
        "_params",
        "_params_size",
        "_dups",
    )

    @classmethod
    def for_listener(
        cls, *, buffer_size: int, server_name: str, server_port: str, backlog: int
    ) -> Callable[[Sink], FastCGIProtocol]:
        # what GET_VALUES reports: one request at a time per connection
        max_conns = max(backlog, 1)
        return partial(cls, buffer_size=buffer_size, max_conns=max_conns, max_reqs=max_conns)

    def __init__(
        self, sink: Sink, *, buffer_size: int = 4096, max_conns: int = 1, max_reqs: int = 1
    ) -> None:
        self.sink = sink
        # largest request params accepted (uWSGI's buffer-size option)
        self.buffer_size = buffer_size
        # what GET_VALUES reports as FCGI_MAX_CONNS / FCGI_MAX_REQS
        self.max_conns = max_conns
        self.max_reqs = max_reqs
        self._hdr = b""  # partial record header
        self._kind = _SKIP  # what to do with the current record's content
        self._left = 0  # content bytes of the current record still to come
        self._pad = 0  # padding bytes still to skip
        self._rtype = 0  # type and id of the record being gathered
        self._rid = 0
        self._gather = bytearray()
        self._req: Request | None = None  # the active request
        self._phase = _PH_PARAMS
        self._params: list[bytes] = []  # PARAMS content so far
        self._params_size = 0
        # BEGIN_REQUESTs reusing the id of the complete request we have not yet
        # answered: refused (CANT_MPX_CONN) right after its END_REQUEST
        self._dups = 0

    # -- input -------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        n = len(data)
        pos = 0
        if self._hdr:
            need = 8 - len(self._hdr)
            if n < need:
                self._hdr += bytes(data)
                return b""
            version, rtype, rid, clen, plen = HEADER.unpack(self._hdr + data[:need])
            self._hdr = b""
            pos = self._header(version, rtype, rid, clen, plen, data, need, out)
        while True:
            left = self._left
            if left:
                avail = n - pos
                if avail <= 0:
                    break
                take = left if avail >= left else avail
                end = pos + take
                kind = self._kind
                if kind == _STDIN:
                    if take == n and type(data) is bytes:
                        chunk = data
                    else:
                        chunk = bytes(data[pos:end])
                    self.sink.on_body(self._req, chunk)
                elif kind == _PARAMS:
                    self._params.append(bytes(data[pos:end]))
                elif kind == _GATHER:
                    if take == left and not self._gather:
                        content = bytes(data[pos:end])
                    else:
                        self._gather += data[pos:end]
                        content = None
                pos = end
                left -= take
                self._left = left
                if left:
                    break
                if kind == _GATHER:
                    if content is None:
                        content = bytes(self._gather)
                        self._gather.clear()
                    self._dispatch(content, out)
            pad = self._pad
            if pad:
                avail = n - pos
                if avail < pad:
                    self._pad = pad - avail
                    break
                pos += pad
                self._pad = 0
            avail = n - pos
            if avail < 8:
                if avail > 0:
                    self._hdr = bytes(data[pos:])
                break
            version, rtype, rid, clen, plen = HEADER.unpack_from(data, pos)
            pos = self._header(version, rtype, rid, clen, plen, data, pos + 8, out)
        if out:
            return b"".join(out)
        return b""

    def _header(self, version, rtype, rid, clen, plen, data, pos, out) -> int:
        """A record header has been read: decide what its content is for.

        Returns where the parse goes on in ``data``: past the content when this
        took it at once (a small record whole in ``data``), else ``pos``."""
        if version != VERSION:
            raise ProtocolError(
                f"unsupported FastCGI version {version} (record type {rtype}); "
                "is the peer speaking FastCGI?",
                0,
            )
        self._pad = plen
        self._left = clen
        if rid == 0:  # management record: gather it
            return self._gather_record(rtype, rid, clen, data, pos, out)
        req = self._req
        active = req is not None and req.rid == rid
        if rtype == STDIN:
            if not active:
                self._kind = _SKIP
            elif self._phase != _PH_STDIN:
                if not self._dups:
                    raise ProtocolError(self._out_of_order("STDIN", rid), 0)
                self._kind = _SKIP  # the refused duplicate's
            elif clen:
                self._kind = _STDIN
            else:
                self._phase = _PH_DONE
                self.sink.on_end(req)
        elif rtype == PARAMS:
            if not active:
                self._kind = _SKIP
            elif self._phase != _PH_PARAMS:
                if not self._dups:
                    raise ProtocolError(self._out_of_order("PARAMS", rid), 0)
                self._kind = _SKIP  # the refused duplicate's
            elif clen:
                size = self._params_size + clen
                # raw pairs take at most twice their uwsgi-encoded size
                if size > 2 * self.buffer_size + 8:
                    raise ProtocolError(too_large(size, self.buffer_size), 0)
                self._params_size = size
                end = pos + clen
                if end <= len(data):
                    self._params.append(bytes(data[pos:end]))
                    self._left = 0
                    return end
                self._kind = _PARAMS
            else:
                self._params_done(req)
        elif rtype == BEGIN_REQUEST or rtype == ABORT_REQUEST:
            return self._gather_record(rtype, rid, clen, data, pos, out)
        elif rtype == DATA:
            self._kind = _SKIP
        else:
            name = TYPE_NAMES.get(rtype, "unknown")
            raise ProtocolError(
                f"unexpected FastCGI record type {rtype} ({name}) for request id {rid}", 0
            )
        return pos

    def _out_of_order(self, what: str, rid: int) -> str:
        phase = ("PARAMS", "STDIN", "done (STDIN ended)")[self._phase]
        return f"FastCGI {what} record for request {rid} while its request is in phase {phase}"

    def _gather_record(self, rtype: int, rid: int, clen: int, data, pos: int, out) -> int:
        self._rtype = rtype
        self._rid = rid
        end = pos + clen
        if end <= len(data):  # whole: no need to gather
            self._left = 0
            self._dispatch(bytes(data[pos:end]), out)
            return end
        self._kind = _GATHER
        return pos

    def _dispatch(self, content: bytes, out: list) -> None:
        """A gathered record is complete."""
        rtype = self._rtype
        rid = self._rid
        if rid == 0:
            if rtype == GET_VALUES:
                out.append(self._get_values(content))
            else:
                out.append(unknown_type(rtype))
        elif rtype == BEGIN_REQUEST:
            self._begin(rid, content, out)
        else:
            self._abort(rid, out)

    def _begin(self, rid: int, content: bytes, out: list) -> None:
        if len(content) != 8:
            raise ProtocolError(
                f"invalid FastCGI BEGIN_REQUEST for request {rid}: "
                f"{len(content)}-byte body (8 expected)",
                0,
            )
        role, flags = BEGIN_BODY.unpack(content)
        active = self._req
        if active is not None:
            if active.rid == rid:
                if self._phase != _PH_DONE:
                    raise ProtocolError(
                        f"FastCGI BEGIN_REQUEST for request {rid}, which is already active", 0
                    )
                # the id of a complete request not answered yet: answer that one,
                # then refuse this one (response_end); its records are skipped
                self._dups += 1
                return
            # we do not multiplex: refuse it, its records will be ignored
            out.append(end_request(rid, CANT_MPX_CONN))
            return
        if role != RESPONDER:
            out.append(end_request(rid, UNKNOWN_ROLE))
            return
        req = Request({}, bool(flags & KEEP_CONN))
        req.rid = rid
        req.state = _OPEN
        self._req = req
        self._phase = _PH_PARAMS
        self._params = []
        self._params_size = 0

    def _params_done(self, req: Request) -> None:
        environ = parse_pairs(b"".join(self._params), self.buffer_size)
        check_vars(environ, "FastCGI")
        self._params = []
        req.environ = environ
        req.content_length = _content_length(environ.get("CONTENT_LENGTH"))
        req.head_only = environ.get("REQUEST_METHOD") == "HEAD"
        self._phase = _PH_STDIN
        self.sink.on_head(req)

    def _abort(self, rid: int, out: list) -> None:
        req = self._req
        if req is None or req.rid != rid:
            return  # inactive id: ignored
        req.aborted = True
        phase = self._phase
        if phase == _PH_DONE:
            return  # the worker owns it: response_end() will end it
        self._req = None
        req.state = _ENDED
        self._params = []
        out.append(end_of_response(rid))
        if phase == _PH_STDIN:
            self.sink.on_end(req)

    def _get_values(self, content: bytes) -> bytes:
        asked = parse_pairs(content)
        known = {
            "FCGI_MAX_CONNS": str(self.max_conns),
            "FCGI_MAX_REQS": str(self.max_reqs),
            "FCGI_MPXS_CONNS": "0",
        }
        return values_result(asked, known)

    def eof(self) -> None:
        if self._hdr:
            raise ProtocolError(
                f"connection closed inside a FastCGI record header ({len(self._hdr)} of 8 bytes)",
                0,
            )
        if self._left or self._pad:
            raise ProtocolError(
                f"connection closed inside a FastCGI record: {self._left} content and "
                f"{self._pad} padding bytes missing",
                0,
            )
        req = self._req
        if req is not None and self._phase != _PH_DONE:
            stream = "PARAMS" if self._phase == _PH_PARAMS else "STDIN"
            raise ProtocolError(
                f"connection closed before the end of the {stream} stream of request {req.rid}",
                0,
            )

    # -- output ------------------------------------------------------------

    def response_head(
        self, req: Request, status: str, headers: list[tuple[str, str]], length: int | None = None
    ) -> bytes:
        if req.state is not _OPEN or req.aborted:
            return b""
        # the CGI head is an HTTP head whose "version" is "Status:"
        return stdout_records(req.rid, cached_head("Status:", status, headers, length))

    def response_body(self, req: Request, data: bytes) -> bytes:
        if not data or req.head_only or req.state is not _OPEN or req.aborted:
            return b""
        return stdout_records(req.rid, data)

    def response_end(self, req: Request) -> bytes:
        if req.state is not _OPEN:
            return b""
        req.state = _ENDED
        if self._req is req:
            # the id is inactive from now on: what is left of its STDIN is ignored
            self._req = None
            if self._kind == _STDIN:
                self._kind = _SKIP
            if self._dups:
                refusals = end_request(req.rid, CANT_MPX_CONN) * self._dups
                self._dups = 0
                return end_of_response(req.rid) + refusals
        return end_of_response(req.rid)
