"""TLS in memory: the server's context from uWSGI's ``https-socket`` fields, and
one connection's session as bytes in, bytes out (``ssl.SSLObject`` over two
``ssl.MemoryBIO``), so a slow handshake holds memory, never a worker.

Theory of operation
-------------------
``TlsFiles`` is what a socket option names (certificate, key, ciphers, the CA
that verifies clients); ``context(files)`` builds the server context or raises
``TlsError`` saying which file is missing, unreadable or does not match:
TLS 1.2 at least, the server's cipher order, no compression, no
renegotiation, ALPN ``http/1.1``; with a CA, a client must present a
certificate it verifies. Session tickets stay on: OpenSSL makes their keys with
each context, which each worker builds after the fork, so they are new at every
reload and recycle (a ticket from another worker costs a full handshake).

``with_sni(ctx, named)`` makes a context pick another one's certificate for
the host name a client asks for (``sni = NAME,CERT,KEY``).

``TlsSession.received(data)`` takes ciphertext from the socket and returns the
plaintext it completes (``b""`` while a handshake or a record is incomplete);
what the session must send (handshake messages, alerts, tickets) waits in
``outgoing()``. ``wrap(data)`` encrypts response bytes and returns them with
anything outgoing before them. A handshake failure, bytes that are not TLS (a
plaintext request on the TLS port) or a renegotiation attempt raise
``TlsError``; ``closed`` turns true once the client sent close_notify.

``environ()`` is what a request on the session adds to the environ as uWSGI
exports it: ``HTTPS=on``, ``wsgi.url_scheme``, and for a verified client
``HTTPS_DN`` (its subject, one line), ``HTTPS_CC`` with ``export_cert``.

Must not know: sockets, the worker, logging, options.
"""

from __future__ import annotations

import os
import ssl
from typing import NamedTuple

__all__ = ["TlsError", "TlsFiles", "TlsSession", "context", "sni_entry", "with_sni"]

ALPN = ["http/1.1"]


class TlsError(Exception):
    """A context that cannot be built, or a session that failed."""


class TlsFiles(NamedTuple):
    cert: str
    key: str
    ciphers: str = ""
    ca: str = ""

    @classmethod
    def parse(cls, fields: list[str]) -> TlsFiles:
        """``CERT,KEY[,CIPHERS[,CA]]`` (the fields after the address)."""
        fields = [f.strip() for f in fields]
        if len(fields) < 2 or not fields[0] or not fields[1]:
            raise TlsError("expected ADDRESS,CERT,KEY[,CIPHERS[,CA]]")
        if len(fields) > 4:
            raise TlsError(f"{len(fields) + 1} fields (expected ADDRESS,CERT,KEY[,CIPHERS[,CA]])")
        return cls(*fields)


def _readable(kind: str, path: str) -> None:
    if not os.path.exists(path):
        raise TlsError(f"{kind} file {path!r} does not exist")
    if not os.access(path, os.R_OK):
        raise TlsError(f"{kind} file {path!r} is not readable")


def context(files: TlsFiles) -> ssl.SSLContext:
    """The server context for ``files``; ``TlsError`` says what is wrong."""
    _readable("certificate", files.cert)
    _readable("key", files.key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    try:
        ctx.load_cert_chain(files.cert, files.key)
    except ssl.SSLError as exc:
        why = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in str(exc) or "mismatch" in str(exc).lower():
            why = "the key does not match the certificate"
        raise TlsError(f"cannot load {files.cert!r} with key {files.key!r}: {why}") from None
    except OSError as exc:
        raise TlsError(f"cannot read {files.cert!r} / {files.key!r}: {exc.strerror}") from None
    if files.ciphers:
        try:
            ctx.set_ciphers(files.ciphers)
        except ssl.SSLError:
            raise TlsError(f"no cipher matches {files.ciphers!r}") from None
    if files.ca:
        _readable("CA", files.ca)
        try:
            ctx.load_verify_locations(files.ca)
        except (ssl.SSLError, OSError) as exc:
            raise TlsError(f"cannot load the CA file {files.ca!r}: {exc}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(ALPN)
    return ctx


def sni_entry(value: str) -> tuple[str, TlsFiles]:
    """``NAME,CERT,KEY[,CIPHERS[,CA]]`` (uWSGI's ``sni``) -> (lower-case name, files)."""
    name, *fields = value.split(",")
    if not name.strip():
        raise TlsError("expected NAME,CERT,KEY[,CIPHERS[,CA]]")
    return name.strip().lower(), TlsFiles.parse(fields)


def with_sni(default: ssl.SSLContext, named: dict[str, ssl.SSLContext]) -> ssl.SSLContext:
    """``default`` answering a client that names one of ``named`` (lower-case host
    names, as uWSGI's ``sni``) with that context's certificate instead."""

    def choose(obj, name, _ctx):
        chosen = named.get(name.lower()) if name else None
        if chosen is not None:
            obj.context = chosen
        return None

    default.sni_callback = choose
    return default


class TlsSession:
    """One connection's TLS; see the module."""

    __slots__ = ("obj", "inbio", "outbio", "handshaken", "closed", "export_cert")

    def __init__(self, ctx: ssl.SSLContext, export_cert: bool = False) -> None:
        self.inbio = ssl.MemoryBIO()
        self.outbio = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inbio, self.outbio, server_side=True)
        self.handshaken = False
        self.closed = False
        self.export_cert = export_cert

    def received(self, data: bytes) -> bytes:
        self.inbio.write(data)
        obj = self.obj
        if not self.handshaken:
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                return b""
            except ssl.SSLError as exc:
                raise TlsError(f"TLS handshake failed: {_reason(exc)}") from None
            self.handshaken = True
        chunks = []
        while True:
            try:
                chunk = obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.closed = True
                break
            except ssl.SSLError as exc:
                raise TlsError(f"TLS error: {_reason(exc)}") from None
            if not chunk:
                self.closed = True
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def outgoing(self) -> bytes:
        return self.outbio.read()

    def wrap(self, data: bytes) -> bytes:
        if data:
            try:
                self.obj.write(data)
            except ssl.SSLError as exc:
                raise TlsError(f"TLS error: {_reason(exc)}") from None
        return self.outbio.read()

    def close_notify(self) -> bytes:
        """The close_notify alert to send before closing (b"" if none can be)."""
        try:
            self.obj.unwrap()
        except ssl.SSLError:
            pass
        return self.outbio.read()

    def environ(self) -> dict:
        env = {"HTTPS": "on", "wsgi.url_scheme": "https"}
        peer = self.obj.getpeercert()
        if peer:
            subject = peer.get("subject", ())
            env["HTTPS_DN"] = "/" + "/".join(
                f"{_SHORT.get(k, k)}={v}" for rdn in subject for k, v in rdn
            )
            if self.export_cert:
                der = self.obj.getpeercert(binary_form=True)
                if der:
                    env["HTTPS_CC"] = ssl.DER_cert_to_PEM_cert(der)
        return env


_SHORT = {
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "commonName": "CN",
    "emailAddress": "emailAddress",
}


def _reason(exc: ssl.SSLError) -> str:
    return (exc.reason or exc.strerror or str(exc)).lower().replace("_", " ")
