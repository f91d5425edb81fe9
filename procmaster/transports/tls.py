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
reload and recycle (a ticket from another worker costs a full handshake);
``snapshot(files)`` keeps the files' bytes so that ``context(files, pem)`` makes
the same certificate again with new ticket keys (the worker's rotation), even if
the files changed on disk since.

``with_sni(ctx, chooser)`` makes a context hand a connection to another one
for the host name its client asks for (``transports.sni``).

``TlsSession.received(data)`` takes ciphertext from the socket and returns the
plaintext it completes (``b""`` while a handshake or a record is incomplete);
what the session must send (handshake messages, alerts, tickets) waits in
``outgoing()``. ``wrap(data)`` encrypts response bytes and returns them with
anything outgoing before them. A handshake failure, bytes that are not TLS (a
plaintext request on the TLS port) or a renegotiation attempt raise
``TlsError``; ``closed`` turns true once the client sent close_notify. Once the
handshake is done, a context that demands a client certificate is checked
again: the client's verified chain may hold at most ``depth`` intermediate CAs
(uWSGI's ``ssl-verify-depth``; Python's ``ssl`` has no verify depth of its own),
and a context chosen by SNI that demands a certificate the socket never asked
for refuses the client (Python cannot change a connection's verify mode). Such
a refusal drops what the handshake left to send (the session tickets among it:
a refused client must not resume past the check).

``environ()`` is what a request on the session adds to the environ as uWSGI
exports it: ``HTTPS=on``, ``wsgi.url_scheme``, and for a verified client
``HTTPS_DN`` (its subject, one line), ``HTTPS_CC`` with ``export_cert``.

Must not know: sockets, the worker, logging, options.
"""

from __future__ import annotations

import os
import ssl
from typing import NamedTuple

__all__ = [
    "TlsError",
    "TlsFiles",
    "TlsSession",
    "context",
    "entry_fields",
    "sni_entry",
    "snapshot",
    "with_sni",
]

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


class Pem(NamedTuple):
    """The bytes of a context's files, read once (``snapshot``)."""

    cert_key: bytes  # the certificate chain, then the key
    ca: str


def snapshot(files: TlsFiles) -> Pem:
    """The certificate, key and CA of ``files`` as they are now (``TlsError``)."""
    parts = []
    for kind, path in (("certificate", files.cert), ("key", files.key)):
        _readable(kind, path)
        try:
            with open(path, "rb") as f:
                parts.append(f.read().rstrip(b"\n") + b"\n")
        except OSError as exc:
            raise TlsError(f"cannot read the {kind} file {path!r}: {exc.strerror}") from None
    ca = ""
    if files.ca:
        _readable("CA", files.ca)
        try:
            with open(files.ca, encoding="ascii", errors="replace") as f:
                ca = f.read()
        except OSError as exc:
            raise TlsError(f"cannot read the CA file {files.ca!r}: {exc.strerror}") from None
    return Pem(b"".join(parts), ca)


def context(files: TlsFiles, pem: Pem | None = None) -> ssl.SSLContext:
    """The server context for ``files`` (from ``pem``, their bytes, when given);
    ``TlsError`` says what is wrong."""
    if pem is None:
        _readable("certificate", files.cert)
        _readable("key", files.key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    try:
        if pem is None:
            ctx.load_cert_chain(files.cert, files.key)
        else:
            _load_pem(ctx, pem.cert_key)
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
        try:
            if pem is not None:
                ctx.load_verify_locations(cadata=pem.ca)
            else:
                _readable("CA", files.ca)
                ctx.load_verify_locations(files.ca)
        except (ssl.SSLError, OSError) as exc:
            raise TlsError(f"cannot load the CA file {files.ca!r}: {exc}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(ALPN)
    return ctx


def _load_pem(ctx: ssl.SSLContext, cert_key: bytes) -> None:
    """``load_cert_chain`` from bytes: Python's ``ssl`` reads files alone, so
    the bytes go through an anonymous memory file (closed at once)."""
    fd = os.memfd_create("procmaster-tls", os.MFD_CLOEXEC)
    try:
        os.write(fd, cert_key)
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def entry_fields(value: str, what: str) -> tuple[str, TlsFiles]:
    """uWSGI's ``NAME CERT,KEY[,CIPHERS[,CA]]`` (a space after the name), or
    ``NAME,CERT,KEY[,CIPHERS[,CA]]`` -> (name, files). ``what`` names NAME."""
    value = value.strip()
    head, space, rest = value.partition(" ")
    if space and "," in rest:
        name, fields = head, rest.strip().split(",")
    else:
        name, *fields = value.split(",")
    if not name.strip():
        raise TlsError(f"expected {what} CERT,KEY[,CIPHERS[,CA]]")
    try:
        return name.strip(), TlsFiles.parse(fields)
    except TlsError:
        raise TlsError(f"expected {what} CERT,KEY[,CIPHERS[,CA]]") from None


def sni_entry(value: str) -> tuple[str, TlsFiles]:
    """uWSGI's ``sni``: ``NAME CERT,KEY[,CIPHERS[,CA]]`` (or ``NAME,CERT,...``)
    -> (lower-case name, files)."""
    name, files = entry_fields(value, "NAME")
    return name.lower(), files


def with_sni(default: ssl.SSLContext, chooser) -> ssl.SSLContext:
    """``default`` asking ``chooser(name)`` (a lower-case host name) for the
    context to answer a client that names a host (``None``: ``default``'s own)."""

    def choose(obj, name, _ctx):
        if name:
            chosen = chooser(name.lower())
            if chosen is not None:
                obj.context = chosen
        return None

    default.sni_callback = choose
    return default


class TlsSession:
    """One connection's TLS; see the module."""

    __slots__ = ("obj", "inbio", "outbio", "handshaken", "closed", "export_cert", "depth")

    def __init__(self, ctx: ssl.SSLContext, export_cert: bool = False, depth: int = 100) -> None:
        self.inbio = ssl.MemoryBIO()
        self.outbio = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inbio, self.outbio, server_side=True)
        self.handshaken = False
        self.closed = False
        self.export_cert = export_cert
        self.depth = depth

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
            if obj.context.verify_mode == ssl.CERT_REQUIRED:
                self._check_client()
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

    def _check_client(self) -> None:
        """What Python's ``ssl`` cannot ask OpenSSL to check (see the module)."""
        obj = self.obj
        why = ""
        if not obj.getpeercert():
            why = (
                "the certificate chosen for this server name needs a client certificate, "
                "which the socket does not ask for (give the socket a CA too)"
            )
        elif not obj.session_reused:  # a resumed session passed this check before
            chain = _verified_chain(obj)
            if chain is not None and len(chain) - 2 > self.depth:
                why = (
                    f"the client certificate chain holds {len(chain) - 2} intermediate "
                    f"CAs; ssl-verify-depth allows {self.depth}"
                )
        if why:
            self.outbio.read()  # never the session tickets of a refused client
            raise TlsError(why)

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


def _verified_chain(obj: ssl.SSLObject) -> list | None:
    """The client's verified chain, end entity to trust anchor: public from
    Python 3.13, a method of the underlying object since 3.10."""
    public = getattr(obj, "get_verified_chain", None)
    if public is not None:
        return public()
    return obj._sslobj.get_verified_chain()


def _reason(exc: ssl.SSLError) -> str:
    return (exc.reason or exc.strerror or str(exc)).lower().replace("_", " ")
