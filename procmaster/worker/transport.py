"""The transport layers of a listening socket, as its connections use them:
the PROXY protocol header, TLS, and the forwarded headers a trusted proxy sends.

Theory of operation
-------------------
``attach(lst, listener, cfg)`` gives a ``WorkerListener`` its ``transport``
(``None`` when the socket has no layer and no forwarded headers are trusted:
then a connection pays one ``is None`` test at its read and write points and a
request one in ``glue.run``). A ``ListenerTransport`` starts each accepted
connection's first layer (``start``): a ``ProxyStage`` when a PROXY header comes
first, else a ``TlsStage`` on a TLS socket, else none.

A layer has ``received(conn, data)`` (the socket's bytes in; the bytes for the
protocol out, ``b""`` while it waits for more) and ``wrap(data)`` (response
bytes in, bytes for the socket out). The connection calls them at its one read
point and its one write point (``Connection.on_readable``, ``Connection.send``;
what ``send`` queues is already wrapped, so ``flush`` writes it as it is). A
layer that fails closes the connection with one log line (a TLS failure only
with ``ssl-verbose``: scanners and health checks make many) and returns ``b""``.

``ProxyStage`` refuses a peer that is not in ``proxy-allow-ips`` (a unix
socket's peer is trusted: its file permissions say who may connect), buffers
what arrives until ``transports.proxy.parse`` has a header (bounded: a v1 line
is at most 107 bytes, a v2 header ``MAX_V2``), sets ``conn.remote`` to the
client it names, and hands the connection its next layer (or none: it removes
itself). The header deadline is the connection's own (``socket-timeout`` from
the accept). ``TlsStage`` runs ``transports.tls.TlsSession``: handshake bytes
and tickets go out through ``conn.send(b"")``; a slow handshake is a
connection waiting for bytes like any other, so it holds no worker. TLS sockets
send no file with ``sendfile`` (the bytes must be encrypted).

Session tickets are rotated: every ``ssl-tickets-rotate`` seconds the socket
gets a fresh default context (the same certificate, from the bytes read at
start: ``transports.tls.snapshot``; new ticket keys), so a ticket resumes a
session for at most that long. The loop's once-a-second sweep calls
``rotate_tickets`` (an idle worker drops old keys on time) and a new connection
checks the time too (a busy loop or the ASGI worker rotates exactly on time).
A connection keeps the context it started with; the old context is freed with
the last connection that uses it (each ``SSLObject`` holds its context).
``sni``, ``sni-regexp`` and ``sni-dir`` contexts (``transports.sni``) need no
rotation: OpenSSL encrypts tickets with the keys of the context a connection
started with, the default one.

``environ(env, conn)`` adds the layers' facts to a request: ``HTTPS=on``,
``wsgi.url_scheme``, ``HTTPS_DN``/``HTTPS_CC`` of a verified client, the PROXY
header's client on a proxied protocol (uwsgi), then the forwarded headers of a
trusted proxy (``transports.forwarded``).

Must not know: protocol names, the loop, the app.
"""

from __future__ import annotations

import ssl
import sys
import time

from ..logs import log
from ..transports import forwarded
from ..transports.networks import Networks
from ..transports.proxy import ProxyError, parse
from ..transports.sni import SniTable
from ..transports.tls import TlsError, TlsFiles, TlsSession, context, snapshot, with_sni
from .roles import Client

__all__ = ["ListenerTransport", "ProxyStage", "TlsStage", "attach", "rotate_tickets"]


class ListenerTransport:
    """One listening socket's layers (see the module)."""

    __slots__ = (
        "name",
        "proxy",
        "allowed",
        "unix",
        "ctx",
        "export_cert",
        "verbose",
        "trusted",
        "depth",
        "remake",
        "period",
        "rotate_at",
    )

    def __init__(
        self,
        name: str,
        proxy: bool,
        allowed: Networks | None,
        unix: bool,
        ctx: ssl.SSLContext | None,
        export_cert: bool,
        verbose: bool,
        trusted: Networks | None,
    ) -> None:
        self.name = name
        self.proxy = proxy
        self.allowed = allowed
        self.unix = unix
        self.ctx = ctx
        self.export_cert = export_cert
        self.verbose = verbose
        self.trusted = trusted
        self.depth = 100  # ssl-verify-depth (a socket with a CA)
        self.remake = None  # a fresh default context (the same certificate), or None
        self.period = 0.0  # ssl-tickets-rotate (0: never)
        self.rotate_at = 0.0

    def start(self, conn: Client) -> ProxyStage | TlsStage | None:
        if self.proxy:
            ok = self.unix or (self.allowed is not None and self.allowed.contains(conn.remote[0]))
            return ProxyStage(self, ok)
        return self.after_proxy()

    def after_proxy(self) -> TlsStage | None:
        if self.ctx is None:
            return None
        if self.rotate_at and time.monotonic() >= self.rotate_at:
            self.rotate(time.monotonic())
        return TlsStage(TlsSession(self.ctx, self.export_cert, self.depth), self)

    def rotate(self, now: float) -> None:
        """New session ticket keys: a fresh default context (see the module)."""
        self.rotate_at = now + self.period
        try:
            self.ctx = self.remake()
        except (TlsError, OSError) as exc:
            log(f"{self.name}: session ticket keys not rotated: {exc}")
            return
        if self.verbose:
            log(f"{self.name}: TLS session ticket keys rotated")

    def environ(self, env: dict, conn: Client) -> None:
        layer = conn.layer
        if type(layer) is TlsStage:
            env.update(layer.facts())
        if self.proxy and conn.listener.proxied and conn.remote[0]:
            env["REMOTE_ADDR"], env["REMOTE_PORT"] = conn.remote
        if self.trusted is not None:
            forwarded.apply(env, self.trusted)


class ProxyStage:
    """Reads the PROXY header, then hands over to the next layer."""

    __slots__ = ("owner", "buf", "ok")

    def __init__(self, owner: ListenerTransport, ok: bool) -> None:
        self.owner = owner
        self.buf = b""
        self.ok = ok

    def received(self, conn: Client, data: bytes) -> bytes:
        if not self.ok:
            log(
                f"{self.owner.name}: PROXY protocol header from {conn.remote[0]}, "
                "which is not in proxy-allow-ips: connection refused"
            )
            conn.close()
            return b""
        buf = self.buf + data if self.buf else data
        try:
            header = parse(buf)
        except ProxyError as exc:
            log(f"{self.owner.name}: bad PROXY protocol header from {conn.remote[0]}: {exc}")
            conn.close()
            return b""
        if header is None:
            self.buf = buf
            return b""
        if header.client is not None:
            conn.remote = header.client
        nxt = conn.layer = self.owner.after_proxy()
        rest = buf[header.length :]
        if nxt is not None and rest:
            return nxt.received(conn, rest)
        return rest

    def wrap(self, data: bytes) -> bytes:
        return data


class TlsStage:
    """A connection's TLS session between the socket and the protocol."""

    __slots__ = ("session", "owner", "env")

    def __init__(self, session: TlsSession, owner: ListenerTransport) -> None:
        self.session = session
        self.owner = owner
        self.env: dict | None = None

    def received(self, conn: Client, data: bytes) -> bytes:
        session = self.session
        try:
            plain = session.received(data)
        except TlsError as exc:
            if self.owner.verbose:
                log(f"{self.owner.name}: TLS from {conn.remote[0] or 'unix socket'}: {exc}")
            if session.outbio.pending:
                conn.send(b"")  # the alert saying why
            conn.close()
            return b""
        if session.outbio.pending:
            conn.send(b"")  # handshake messages, session tickets
        return plain

    def wrap(self, data: bytes) -> bytes:
        try:
            return self.session.wrap(data)
        except TlsError as exc:
            if self.owner.verbose:
                log(f"{self.owner.name}: TLS: {exc}")
            return b""

    def facts(self) -> dict:
        env = self.env
        if env is None:
            env = self.env = self.session.environ()
        return env


def attach(lst, listener, cfg) -> None:
    """Give a ``WorkerListener`` its ``transport`` (or ``None``); see the module.
    A TLS context that cannot be built (a certificate swapped for a broken one
    before a reload) raises ``TlsError``: the worker cannot serve that socket."""
    extra = getattr(listener, "extra", None) or {}  # (a bare listener in unit tests)
    files = extra.get("tls")
    proxy = bool(extra.get("proxy"))
    trusted = Networks.parse(cfg.forwarded_allow_ips) if cfg.forwarded_allow_ips else None
    if files is None and not proxy and trusted is None:
        lst.transport = None
        return
    remake = None
    if files is not None:
        remake = default_context(files, cfg)
        lst.sendfile = False
    allowed = Networks.parse(cfg.proxy_allow_ips) if cfg.proxy_allow_ips else None
    layers = lst.transport = ListenerTransport(
        f"{listener.option} {listener.address}",
        proxy,
        allowed,
        lst.unix,
        remake() if remake is not None else None,
        cfg.https_export_cert,
        cfg.ssl_verbose,
        trusted,
    )
    layers.depth = cfg.ssl_verify_depth
    if remake is not None and cfg.ssl_tickets_rotate > 0:
        layers.remake, layers.period = remake, float(cfg.ssl_tickets_rotate)
        layers.rotate_at = time.monotonic() + layers.period


def default_context(files: TlsFiles, cfg):
    """A callable making the socket's default context, the same certificate
    each time (``TlsError``), with the SNI contexts and ``ssl-option``."""
    options = 0
    for option in cfg.ssl_option or ():
        options |= option

    def make(each: TlsFiles, pem=None) -> ssl.SSLContext:
        ctx = context(each, pem)
        ctx.options |= options
        return ctx

    table = SniTable.parse(cfg.sni or [], cfg.sni_regexp or [], cfg.sni_dir, cfg.sni_dir_ciphers)
    if table:
        table.report = log
        table.contexts(make)
        quiet_bad_server_names(cfg.ssl_verbose)
    pem = snapshot(files)

    def remake() -> ssl.SSLContext:
        ctx = make(files, pem)
        if table:
            with_sni(ctx, table.choose)
        return ctx

    return remake


def quiet_bad_server_names(verbose: bool) -> None:
    """A server name that is not ASCII fails the handshake inside CPython, before
    the SNI callback, and CPython prints it as an ignored exception with a
    traceback: any client could fill the log so. Make it one line with
    ``ssl-verbose``, nothing without (the handshake is refused either way)."""
    previous = sys.unraisablehook
    if getattr(previous, "server_names", False):
        return

    def hook(args) -> None:
        tb = args.exc_traceback
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if (
            args.exc_type is UnicodeDecodeError
            and isinstance(args.object, bytes)
            and tb is not None
            and tb.tb_frame.f_code.co_name == "do_handshake"
        ):
            if verbose:
                log(f"TLS: server name {args.object[:64]!r} is not ASCII: handshake refused")
            return
        previous(args)

    hook.server_names = True
    sys.unraisablehook = hook


def rotate_tickets(listeners, now: float) -> None:
    """The loop's sweep: rotate the session ticket keys of the TLS sockets due."""
    for lst in listeners:
        layers = lst.transport
        if layers is not None and layers.rotate_at and now >= layers.rotate_at:
            layers.rotate(now)
