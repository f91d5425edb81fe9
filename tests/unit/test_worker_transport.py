"""The worker's transport stages (worker/transport.py) with a stand-in
connection: a PROXY header split across reads, what follows it handed on, the
stage removing itself, an untrusted peer refused, TLS after the header, and the
environ facts on a proxied protocol (uwsgi) and with trusted forwarded headers."""

from __future__ import annotations

import ssl

import pytest
from support.tls import make_pki

from procmaster.transports.networks import Networks
from procmaster.transports.tls import TlsFiles, context
from procmaster.worker.transport import (
    ListenerTransport,
    ProxyStage,
    TlsStage,
    attach,
    rotate_tickets,
)


class FakeListener:
    def __init__(self, proxied):
        self.proxied = proxied


class FakeConn:
    def __init__(self, owner, remote=("10.1.1.1", "5555"), proxied=False):
        self.remote = remote
        self.closed = False
        self.sent = b""
        self.listener = FakeListener(proxied)
        self.layer = owner.start(self)

    def close(self):
        self.closed = True

    def send(self, data):
        if self.layer is not None:
            data = self.layer.wrap(data)
        self.sent += data

    def feed(self, data):
        return self.layer.received(self, data)


def owner(proxy=True, ctx=None, trusted=None, allowed="10.0.0.0/8", unix=False):
    nets = Networks.parse(allowed) if allowed else None
    return ListenerTransport("http-socket :80", proxy, nets, unix, ctx, False, False, trusted)


def test_header_split_across_reads_then_the_stage_removes_itself():
    conn = FakeConn(owner())
    assert type(conn.layer) is ProxyStage
    header = b"PROXY TCP4 203.0.113.9 10.0.0.1 4242 80\r\n"
    assert conn.feed(header[:10]) == b""
    assert conn.feed(header[10:] + b"GET / HT") == b"GET / HT"
    assert conn.remote == ("203.0.113.9", "4242")
    assert conn.layer is None and not conn.closed


def test_untrusted_peer_and_bad_header_close(capsys):
    conn = FakeConn(owner(), remote=("192.0.2.1", "1"))
    assert conn.feed(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n") == b"" and conn.closed
    conn = FakeConn(owner())
    assert conn.feed(b"GET / HTTP/1.1\r\n") == b"" and conn.closed
    conn = FakeConn(owner(unix=True), remote=("", ""))  # unix socket: its permissions decide
    assert conn.feed(b"PROXY UNKNOWN\r\nx") == b"x" and conn.remote == ("", "")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def ctx(pki):
    return context(TlsFiles(str(pki.cert), str(pki.key))), pki


def test_tls_after_the_header(ctx):
    server_ctx, pki = ctx
    conn = FakeConn(owner(ctx=server_ctx))
    client_ctx = ssl.create_default_context(cafile=str(pki.ca))
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(inb, outb, server_hostname="localhost")
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    # the header and the ClientHello in one read
    assert conn.feed(b"PROXY TCP6 2001:db8::1 ::1 7 443\r\n" + outb.read()) == b""
    assert type(conn.layer) is TlsStage and conn.remote == ("2001:db8::1", "7")
    for _ in range(5):
        inb.write(conn.sent)
        conn.sent = b""
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            conn.feed(outb.read())
    client.write(b"GET / HTTP/1.1\r\n\r\n")
    assert conn.feed(outb.read()) == b"GET / HTTP/1.1\r\n\r\n"
    conn.send(b"HTTP/1.1 204 No Content\r\n\r\n")
    inb.write(conn.sent)
    assert client.read() == b"HTTP/1.1 204 No Content\r\n\r\n"
    env = {"REMOTE_ADDR": "x"}
    conn.layer.owner.environ(env, conn)
    assert env["HTTPS"] == "on" and env["wsgi.url_scheme"] == "https"


def test_environ_on_a_proxied_protocol_and_forwarded_headers():
    trusted = Networks.parse("203.0.113.0/24")
    own = owner(trusted=trusted)
    conn = FakeConn(own, proxied=True)
    conn.feed(b"PROXY TCP4 203.0.113.9 10.0.0.1 4242 80\r\n")
    env = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.2"}
    own.environ(env, conn)  # nginx's REMOTE_ADDR is replaced by the header's client,
    # which is a trusted proxy: its X-Forwarded-For is believed
    assert env["REMOTE_ADDR"] == "198.51.100.2"


def _tls_site(pki, rotate):
    """A TLS socket's transport as ``attach`` builds it (a stand-in config)."""
    from types import SimpleNamespace

    cfg = SimpleNamespace(
        forwarded_allow_ips=None, proxy_allow_ips=None, sni=None, sni_regexp=None, sni_dir=None,
        sni_dir_ciphers=None, ssl_option=None, https_export_cert=False, ssl_verbose=False,
        ssl_verify_depth=1, ssl_tickets_rotate=rotate,
    )  # fmt: skip
    listener = SimpleNamespace(
        extra={"tls": TlsFiles(str(pki.cert), str(pki.key))}, option="https-socket", address="x"
    )
    lst = SimpleNamespace(unix=False, sendfile=True)
    attach(lst, listener, cfg)
    return lst.transport


def _connect(layers, ctx, session=None):
    """A client handshake and one request through a new connection's stage; the
    client's object (its ``session``, ``session_reused``) and the stage."""
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname="localhost", session=session)
    conn = FakeConn(layers)
    for _ in range(5):
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            conn.feed(outb.read())
            inb.write(conn.sent)
            conn.sent = b""
    obj.write(b"ping")
    assert conn.feed(outb.read()) == b"ping"
    conn.send(b"pong")
    inb.write(conn.sent)
    assert obj.read() == b"pong"  # the tickets came before: obj.session resumes
    return obj, conn.layer


def test_session_tickets_rotate_and_the_old_context_goes_with_its_last_connection(pki):
    import gc
    import weakref

    layers = _tls_site(pki, rotate=3600)
    assert layers.period == 3600.0 and layers.rotate_at > 0
    client = ssl.create_default_context(cafile=str(pki.ca))
    first, stage = _connect(layers, client)
    again, _ = _connect(layers, client, first.session)
    assert again.session_reused  # before the rotation: resumed
    old = weakref.ref(layers.ctx)
    rotate_tickets([SimpleListener(layers)], layers.rotate_at)  # the sweep, when due
    assert layers.ctx is not old() and layers.rotate_at > 0
    late, _ = _connect(layers, client, first.session)
    assert not late.session_reused  # after it: a full handshake
    assert old() is not None  # the first connection still uses it
    stage.session.obj.write(b"still")  # and goes on with it
    del stage, again, first, late
    gc.collect()
    assert old() is None


def test_no_rotation_when_switched_off(pki):
    layers = _tls_site(pki, rotate=0)
    ctx = layers.ctx
    rotate_tickets([SimpleListener(layers)], 1e12)
    assert layers.rotate_at == 0 and layers.ctx is ctx


class SimpleListener:
    def __init__(self, transport):
        self.transport = transport
