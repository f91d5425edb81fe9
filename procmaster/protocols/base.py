"""The contract every wire protocol (HTTP, uwsgi, FastCGI, SCGI) fulfils.

Theory of operation
-------------------
A protocol object is *sans-IO*: the worker owns the socket, reads bytes and hands
them to ``feed()``; the protocol turns them into request events delivered to a
``Sink`` (the worker's connection object), and turns the app's response into the
bytes the worker writes. One protocol object lives as long as one client
connection.

Events, in order, for each request on the connection::

    sink.on_head(req)          # req.environ holds the CGI variables (str values)
    sink.on_body(req, chunk)   # zero or more times, the decoded body bytes
    sink.on_end(req)           # the request (head and body) is complete

Responses are written in the order requests arrived. For one request the worker
calls ``response_head()`` once, ``response_body()`` for each body chunk and
``response_end()`` once; after ``response_end()`` it reads ``req.keep_alive`` to
decide whether the connection stays open.

Rules for this package: no sockets, no ``os``, no WSGI, no logging. Bad input
raises ``ProtocolError`` and nothing else; the worker answers it (HTTP: an error
status; other protocols: close) and logs it.

A sink never raises ``ProtocolError`` into the parser: the worker's own policy
(``limit-post``) is the worker's to check. A sink that refuses a request records
the refusal and ignores the rest of that connection's events; the worker acts on
it once ``feed()`` has returned. An exception a sink raises anyway (a bug, a full
disk) leaves ``feed()`` as it is.

Capabilities
------------
What the worker must know of a protocol it asks the protocol class
(``ProtocolBase``), never by testing its name:

* ``for_listener(...)``: how one is built for a listening socket (a callable
  taking the sink), from the listener's buffer size, server name and port and
  listen backlog, each protocol taking what it uses;
* ``error_reply(exc)``: the bytes answering a bad request (HTTP: a status
  reply), or ``None`` when the protocol has no way to answer: the worker closes;
* ``pipelined_errors``: an error answer may follow the answers to requests that
  came before the bad bytes on the same connection (HTTP pipelining);
* ``proxied``: the CGI variables come from a proxy (uwsgi, FastCGI, SCGI), and
  ``complete_environ`` fills in what the proxy left out. Not proxied (HTTP): the
  environ is complete, and the client is the socket's peer;
* ``closing`` (on the object, read only when ``feed()`` returned bytes): those
  bytes are the connection's last (a uwsgi pong); the worker closes after them;
* ``sendfile``: given a length, the body goes on the wire as it is (identity
  framing), so the worker may send a file with ``os.sendfile``;
* ``upgrades``: a ``101 Switching Protocols`` head may hand the connection's
  bytes to another protocol (a WebSocket): the response head is raw HTTP and
  nothing frames what follows it (HTTP; uwsgi behind nginx).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol as _Protocol
from urllib.parse import unquote_to_bytes


class ProtocolError(Exception):
    """Bad bytes from the peer. ``status`` is the HTTP status to answer with, where
    the protocol can answer at all (HTTP); 0 means: just close the connection."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Request:
    """One request as parsed off the wire.

    ``environ`` holds CGI/1.1 variables as native strings (bytes decoded as
    latin-1, as PEP 3333 requires): REQUEST_METHOD, PATH_INFO (percent-decoded),
    QUERY_STRING, SERVER_PROTOCOL, CONTENT_TYPE, CONTENT_LENGTH, HTTP_* ... For
    proxied protocols (uwsgi, FastCGI, SCGI) it is exactly what the proxy sent.
    The worker adds what only it knows (REMOTE_ADDR from the socket when absent)
    and the WSGI layer adds the ``wsgi.*`` keys to this same dict: no copy.
    """

    __slots__ = (
        "environ",
        "keep_alive",
        "head_only",
        "content_length",
        "version",
        "rid",
        "aborted",
        "state",
        "body",
        "headers",
        "target",
    )

    def __init__(self, environ: dict, keep_alive: bool = False) -> None:
        self.environ = environ
        self.keep_alive = keep_alive
        # HEAD request: the protocol sends no body bytes for it.
        self.head_only = False
        # declared body length, or None when unknown (chunked / streamed)
        self.content_length: int | None = None
        # protocol private: HTTP version tuple, FastCGI request id, framing state
        self.version = None
        self.rid = 0
        self.aborted = False
        self.state = None
        # the worker's: where the body bytes were stored (the protocol never reads it)
        self.body = None
        # the header fields as received, when the worker asked the protocol for them
        # (HTTP's ``keep_headers``): [(lower-case name, value)], as bytes
        self.headers: list[tuple[bytes, bytes]] | None = None
        # with the fields (``keep_headers``), what the request line said, as
        # received: (path before any percent-decoding, query, HTTP version "1.1")
        self.target: tuple[bytes, bytes, str] | None = None


class ProtocolBase:
    """What every protocol class says about itself (see "Capabilities" above).
    The defaults are those of a protocol behind a proxy that cannot answer an
    error; HTTP overrides them."""

    __slots__ = ()
    name: str = ""
    # set on a protocol object when the bytes ``feed()`` just returned end the
    # connection (a uwsgi pong): the worker closes once they are written
    closing = False
    proxied = True
    pipelined_errors = False
    sendfile = False
    upgrades = False

    def keep_headers(self) -> None:
        """Ask for ``Request.headers`` (the fields as received): only a protocol
        that parses header fields itself has them (HTTP); the others' come as
        CGI variables from the proxy."""

    def release(self) -> None:
        """The connection is done with this protocol: drop what refers back to
        it, so the protocol and its sink are freed at once, never left for the
        cycle collector. Nothing but ``release`` is called afterwards."""

    @classmethod
    def for_listener(
        cls, *, buffer_size: int, server_name: str, server_port: str, backlog: int
    ) -> Callable[[Sink], WireProtocol]:
        """The constructor of one connection's protocol for a listening socket."""
        return partial(cls, buffer_size=buffer_size)

    @staticmethod
    def error_reply(exc: ProtocolError) -> bytes | None:
        """The bytes answering ``exc``, or None: no answer, close the connection."""
        return None

    @staticmethod
    def complete_environ(
        env: dict, remote: tuple[str, str], server_name: str, server_port: str
    ) -> None:
        """Fill in the CGI variables a proxy left out: the client address from
        the socket when the proxy sent none, PATH_INFO when only SCRIPT_NAME or
        REQUEST_URI carries the path (nginx's stock ``fastcgi_params``), the
        server's name and port from the listening socket."""
        env.setdefault("REMOTE_ADDR", remote[0])
        # nginx passes every request header as HTTP_*, these two included; CGI
        # (and PEP 3333) have them as CONTENT_TYPE / CONTENT_LENGTH only
        env.pop("HTTP_CONTENT_TYPE", None)
        env.pop("HTTP_CONTENT_LENGTH", None)
        if "PATH_INFO" not in env:
            # nginx's stock fastcgi_params send no PATH_INFO: the path is in
            # SCRIPT_NAME (and REQUEST_URI); for a WSGI app it is PATH_INFO
            path = env.get("SCRIPT_NAME")  # already percent-decoded by nginx
            if not path:
                uri = env.get("REQUEST_URI", "").partition("?")[0]
                path = unquote_to_bytes(uri.encode("latin-1")).decode("latin-1")
            env["PATH_INFO"] = path
            env["SCRIPT_NAME"] = ""
        env.setdefault("SCRIPT_NAME", "")
        env.setdefault("QUERY_STRING", "")
        env.setdefault("SERVER_NAME", server_name)
        env.setdefault("SERVER_PORT", server_port)
        env.setdefault("SERVER_PROTOCOL", "HTTP/1.1")


class LengthBody(ProtocolBase):
    """For protocols whose body is CONTENT_LENGTH bytes after the head (uwsgi,
    SCGI): deliver it as it arrives, then end the request. The class using it
    has ``sink``, ``_state``, ``_buf``, ``_req`` and ``_left``, sets ``BODY``/``DONE``
    to its own state values and parses heads in ``_feed_head``. Anything after
    the body is not for us: dropped."""

    __slots__ = ()
    BODY: int
    DONE: int

    def feed(self, data: bytes) -> bytes:
        state = self._state
        if state == self.BODY:
            self._body(data)
            return b""
        if state == self.DONE or not data:
            return b""
        if self._buf:
            data = self._buf + data
        return self._feed_head(data, state)

    def _feed_head(self, data, state: int) -> bytes:
        raise NotImplementedError

    def _begin_body(self, req: Request, length: int, rest) -> None:
        """The head of ``req`` is delivered; ``rest`` is what followed it."""
        if length:
            self._state = self.BODY
            self._left = length
            if len(rest):
                self._body(rest)
        else:
            self._state = self.DONE
            self.sink.on_end(req)

    def _body_cut_short(self) -> None:
        """At EOF in the body state: the request lacks body bytes."""
        raise ProtocolError(
            f"connection closed with {self._left} of {self._req.content_length} "
            "request body bytes missing",
            0,
        )

    # the response: the head (the protocol's), then the body as it is
    def response_body(self, req: Request, data: bytes) -> bytes:
        return b"" if req.head_only else data

    def response_end(self, req: Request) -> bytes:
        return b""  # the connection closes after the response

    def _body(self, data) -> None:
        size = len(data)
        if not size:
            return
        left = self._left
        req = self._req
        if size < left:
            self._left = left - size
            self.sink.on_body(req, data if type(data) is bytes else bytes(data))
            return
        self._left = 0
        self._state = self.DONE
        if size > left:
            data = memoryview(data)[:left]
        self.sink.on_body(req, data if type(data) is bytes else bytes(data))
        self.sink.on_end(req)


class Sink(_Protocol):
    """What a protocol reports to (implemented by the worker's connection)."""

    def on_head(self, req: Request) -> None: ...

    def on_body(self, req: Request, data: bytes) -> None: ...

    def on_end(self, req: Request) -> None: ...


class WireProtocol(_Protocol):
    """What the worker calls. ``name`` is the protocol's name in logs and stats."""

    name: str
    closing: bool

    def feed(self, data: bytes) -> bytes:
        """Parse ``data``; deliver events to the sink. Returns bytes the protocol
        itself must send at once (e.g. ``100 Continue``, FastCGI management
        replies), usually ``b""``. Raises ``ProtocolError`` on bad input."""
        ...

    def eof(self) -> None:
        """The peer closed its side. Raises ``ProtocolError`` if a request was
        cut short."""
        ...

    def release(self) -> None:
        """The connection is done with it: drop references back (no cycle outlives it)."""
        ...

    def keep_headers(self) -> None:
        """Fill ``Request.headers`` from now on, where the protocol parses header
        fields itself (HTTP); a no-op for the others."""
        ...

    def response_head(
        self, req: Request, status: str, headers: list[tuple[str, str]], length: int | None = None
    ) -> bytes:
        """Bytes of the response head. ``status`` is the WSGI status line
        (``"200 OK"``); ``headers`` the app's headers (native strings, never
        mutated). ``length`` is the body size when the worker knows it (the app
        returned a list, or a file): the protocol adds ``Content-Length`` from it
        when the app did not set one."""
        ...

    def response_body(self, req: Request, data: bytes) -> bytes:
        """Framing of one body chunk (identity, chunked, FastCGI STDOUT ...)."""
        ...

    def response_end(self, req: Request) -> bytes:
        """Bytes that end the response (last chunk, END_REQUEST ...)."""
        ...


def released(proto: WireProtocol | None) -> None:
    """``proto.release()`` when there is one; None, for ``conn.proto = released(...)``."""
    if proto is not None:
        proto.release()
