"""TLS as bytes (transports/tls.py): a client ``ssl.SSLObject`` over memory BIOs
talks to the server's ``TlsSession``, no socket; the context's checks and its
hostile input (garbage, plaintext, renegotiation)."""

from __future__ import annotations

import ssl

import pytest
from support.tls import make_chains, make_pki

from procmaster.transports.tls import (
    TlsError,
    TlsFiles,
    TlsSession,
    context,
    snapshot,
    sni_entry,
    with_sni,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


class Client:
    def __init__(self, pki, cert=None, key=None, ca=None, maxv=None):
        ctx = ssl.create_default_context(cafile=str(ca or pki.ca))
        if maxv:
            ctx.maximum_version = maxv
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        if cert:
            ctx.load_cert_chain(str(cert), str(key))
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inb, self.outb, server_hostname="localhost")

    def handshake(self, server: TlsSession) -> bytes:
        """Run the handshake to its end; the plaintext the server got meanwhile."""
        got = b""
        for _ in range(10):
            try:
                self.obj.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            got += server.received(self.outb.read())
            self.inb.write(server.outgoing())
            if done:
                return got
        raise AssertionError("no handshake")


def files(pki, ca=""):
    return TlsFiles(str(pki.cert), str(pki.key), "", str(ca) if ca else "")


def test_request_and_response_through_memory(pki):
    server = TlsSession(context(files(pki)))
    client = Client(pki)
    assert client.handshake(server) == b""
    assert client.obj.selected_alpn_protocol() == "http/1.1"
    assert client.obj.version() in ("TLSv1.2", "TLSv1.3")
    client.obj.write(b"GET / HTTP/1.1\r\n\r\n")
    assert server.received(client.outb.read()) == b"GET / HTTP/1.1\r\n\r\n"
    client.inb.write(server.wrap(b"HTTP/1.1 200 OK\r\n\r\n"))
    assert client.obj.read() == b"HTTP/1.1 200 OK\r\n\r\n"
    assert server.environ() == {"HTTPS": "on", "wsgi.url_scheme": "https"}


def test_a_record_split_into_single_bytes(pki):
    server = TlsSession(context(files(pki)))
    client = Client(pki)
    client.handshake(server)
    client.obj.write(b"hello")
    record = client.outb.read()
    got = b"".join(server.received(record[i : i + 1]) for i in range(len(record)))
    assert got == b"hello"


def test_client_certificate_verified_and_exported(pki):
    server = TlsSession(context(files(pki, ca=pki.ca)), export_cert=True)
    client = Client(pki, pki.client_cert, pki.client_key)
    client.handshake(server)
    client.obj.write(b"x")
    assert server.received(client.outb.read()) == b"x"
    env = server.environ()
    assert env["HTTPS_DN"] == "/C=FR/O=Example/CN=alice"
    assert env["HTTPS_CC"].startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("who", ["none", "wrong-ca"])
def test_client_without_a_verified_certificate_is_refused(pki, who):
    server = TlsSession(context(files(pki, ca=pki.ca)))
    if who == "none":
        client = Client(pki)
    else:
        client = Client(pki, pki.other_client_cert, pki.other_client_key)
    with pytest.raises((TlsError, ssl.SSLError)):
        client.handshake(server)
        client.obj.write(b"x")  # TLS 1.3: the server's verdict follows the client's Finished
        server.received(client.outb.read())


def test_wrong_server_ca_fails_on_the_client(pki):
    server = TlsSession(context(files(pki)))
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(pki, ca=pki.other_ca).handshake(server)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # plaintext on the TLS port
        b"\x16\x03\x01\x00\x05\x00\x00\x00\x00\x00",  # a ClientHello of nothing
        bytes(range(256)) * 4,
        b"\x16\x03\x01\xff\xff" + b"A" * 70000,  # a record longer than TLS allows
    ],
)
def test_garbage_raises_tls_error(pki, data):
    server = TlsSession(context(files(pki)))
    with pytest.raises(TlsError):
        server.received(data)
    # an alert may wait to be sent, and nothing else
    server.outgoing()


def test_modern_defaults(pki):
    ctx = context(files(pki))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert ctx.options & ssl.OP_NO_RENEGOTIATION
    assert not ctx.options & ssl.OP_NO_TICKET  # session tickets on (OpenSSL rotates keys)


def test_a_second_client_hello_after_the_handshake_is_refused(pki):
    """A ClientHello in clear after the session is up (the real renegotiation,
    encrypted, is refused by the context: see test_modern_defaults and the
    openssl s_client test in tests/e2e/test_tls.py)."""
    server = TlsSession(context(files(pki)))
    client = Client(pki, maxv=ssl.TLSVersion.TLSv1_2)
    client.handshake(server)
    other = Client(pki, maxv=ssl.TLSVersion.TLSv1_2)
    try:
        other.obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = other.outb.read()
    with pytest.raises(TlsError):
        server.received(hello)  # a plaintext handshake record after the handshake: refused


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda p: TlsFiles(str(p.cert) + ".missing", str(p.key)), "does not exist"),
        (lambda p: TlsFiles(str(p.cert), str(p.key2)), "does not match"),
        (lambda p: TlsFiles(str(p.key), str(p.key)), "cannot load"),
        (lambda p: TlsFiles(str(p.cert), str(p.key), "NO-SUCH-CIPHER"), "no cipher"),
        (lambda p: TlsFiles(str(p.cert), str(p.key), "", str(p.ca) + "x"), "CA file"),
    ],
)
def test_context_errors_say_which_file(pki, change, why):
    with pytest.raises(TlsError, match=why):
        context(change(pki))


def test_fields():
    assert TlsFiles.parse(["c", "k"]) == TlsFiles("c", "k", "", "")
    assert TlsFiles.parse(["c", "k", "HIGH", "ca"]).ca == "ca"
    for bad in ([], ["c"], ["c", ""], ["a", "b", "c", "d", "e"]):
        with pytest.raises(TlsError):
            TlsFiles.parse(bad)


@pytest.mark.parametrize("name, org", [("Other.Example", "Second"), ("localhost", None)])
def test_sni_picks_the_named_certificate(pki, name, org):
    named = {"other.example": context(TlsFiles(str(pki.cert2), str(pki.key2)))}
    server = TlsSession(with_sni(context(files(pki)), named.get))
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.check_hostname = False
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname=name)
    for _ in range(5):
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            server.received(outb.read())
            inb.write(server.outgoing())
    subject = dict(x[0] for x in obj.getpeercert()["subject"])
    assert subject.get("organizationName") == org


def test_sni_entry():
    assert sni_entry("Example.COM,c,k") == ("example.com", TlsFiles("c", "k", "", ""))
    # uWSGI's own form: the name, a space, then the files
    assert sni_entry("Example.COM c,k,HIGH,ca") == ("example.com", TlsFiles("c", "k", "HIGH", "ca"))
    for bad in (",c,k", "name,c", "name"):
        with pytest.raises(TlsError):
            sni_entry(bad)


@pytest.fixture(scope="module")
def chains(pki):
    return make_chains(pki.ca.parent)


@pytest.mark.parametrize("depth, chain, refused", [(1, "one", False), (1, "two", True),
                                                    (2, "two", False), (0, "one", True)])  # fmt: skip
def test_verify_depth_counts_the_intermediates(pki, chains, depth, chain, refused):
    """ssl-verify-depth: a chain with more intermediate CAs than allowed is
    refused once the handshake is done, and the session tickets are not sent."""
    server = TlsSession(context(files(pki, ca=pki.ca)), depth=depth)
    cert, key = (chains.one, chains.one_key) if chain == "one" else (chains.two, chains.two_key)
    client = Client(pki, cert, key)
    if not refused:
        client.handshake(server)
        client.obj.write(b"x")
        assert server.received(client.outb.read()) == b"x"
        return
    with pytest.raises(TlsError, match=f"ssl-verify-depth allows {depth}"):
        client.handshake(server)
    assert server.outgoing() == b""  # nothing left to send: no ticket for a refused client


def test_a_client_certificate_demanded_by_sni_alone_is_refused(pki):
    """A name whose context has a CA, on a socket without one: Python cannot ask
    that connection for a certificate, so the client is refused (fail closed)."""
    named = {"secure.example": context(files(pki, ca=pki.ca))}
    server = TlsSession(with_sni(context(files(pki)), named.get))
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname="secure.example")
    with pytest.raises(TlsError, match="needs a client certificate"):
        for _ in range(5):
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            server.received(outb.read())
            inb.write(server.outgoing())


def test_a_snapshot_makes_the_same_certificate_after_the_files_changed(pki, tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_bytes(pki.cert.read_bytes())
    key.write_bytes(pki.key.read_bytes())
    live = TlsFiles(str(cert), str(key), "", str(pki.ca))
    pem = snapshot(live)
    cert.write_bytes(pki.cert2.read_bytes())  # swapped on disk: not this worker's business
    key.write_bytes(b"garbage")
    server = TlsSession(context(live, pem))
    client = Client(pki, pki.client_cert, pki.client_key)
    client.handshake(server)
    assert "organizationName" not in dict(x[0] for x in client.obj.getpeercert()["subject"])
    assert server.environ()["HTTPS_DN"] == "/C=FR/O=Example/CN=alice"  # the CA came along
