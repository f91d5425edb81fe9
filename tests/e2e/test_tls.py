"""TLS end to end (issue 19): ``https-socket`` served by the workers, talked to
by real clients (curl, Python's ``ssl``, ``openssl s_client``): client
certificates, the wrong CA, a slow handshake that holds no worker, garbage and
plaintext on the TLS port, renegotiation, start-up errors with file:line, and a
certificate swapped by a graceful reload under load with no failed request.

One site (module scope, one worker: a held worker would show) serves the
checks that do not change it; the reload and the start-up errors start their own."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest
from support import APPS, ROOT, Load, Server, free_port, wait_for
from support.tls import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def client_ctx(pki, cert=None, key=None, ca=None):
    ctx = ssl.create_default_context(cafile=str(ca or pki.ca))
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def https_get(port, ctx, path="/", timeout=10.0):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read(), conn.sock
    finally:
        conn.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, pki):
    tmp = tmp_path_factory.mktemp("tls")
    port, mtls, uwsgi = free_port(), free_port(), free_port()
    ini = tmp / "site.ini"
    ini.write_text(
        "[uwsgi]\nmodule = testapp\nmaster = true\nprocesses = 1\nsocket-timeout = 3\n"
        f"https-socket = 127.0.0.1:{port},{pki.cert},{pki.key}\n"
        f"https = 127.0.0.1:{mtls},{pki.cert},{pki.key},,{pki.ca}\n"
        f"ssl-socket = 127.0.0.1:{uwsgi},{pki.cert},{pki.key}\n"
        f"sni = other.example,{pki.cert2},{pki.key2}\n"
        "https-export-cert = true\nssl-verbose = true\n"
    )
    server = Server(["--ini", str(ini)], tmp, _env(), tmp / "site.log")
    try:
        ctx = client_ctx(pki)
        wait_for(lambda: _up(port, ctx), 20, what=f"the TLS site on {port}:\n{server.log}")
        server.port, server.mtls, server.uwsgi = port, mtls, uwsgi
        yield server
    finally:
        server.kill_all()


def _up(port, ctx):
    try:
        return https_get(port, ctx, timeout=2)[0] == 200
    except OSError:
        return False


def test_curl_with_cacert_sees_https(site, pki):
    out = subprocess.run(
        ["curl", "-sS", "--cacert", str(pki.ca), "-w", "\n%{http_version}",
         f"https://localhost:{site.port}/env"],
        capture_output=True, timeout=30, check=True,
    ).stdout.decode()  # fmt: skip
    body, _, version = out.rpartition("\n")
    env = json.loads(body)
    assert env["HTTPS"] == "on" and env["wsgi.url_scheme"] == "https"
    assert version == "1.1"  # ALPN: http/1.1 even though curl offers h2
    assert "HTTPS_DN" not in env


def test_python_ssl_keepalive_and_a_big_response(site, pki):
    conn = http.client.HTTPSConnection("127.0.0.1", site.port, context=client_ctx(pki))
    try:
        for _ in range(3):
            conn.request("GET", "/big?mb=3")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == b"x" * (3 << 20)
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        conn.close()


def test_a_file_response_is_encrypted_not_sendfiled(site, pki, tmp_path):
    """wsgi.file_wrapper on a TLS socket: the bytes go through TLS (os.sendfile
    would put them on the wire in clear)."""
    data = os.urandom(1 << 20)
    path = tmp_path / "blob"
    path.write_bytes(data)
    status, body, _ = https_get(site.port, client_ctx(pki), f"/file?path={path}")
    assert status == 200 and body == data


def test_uwsgi_protocol_over_tls(site, pki):
    """ssl-socket: the uwsgi protocol inside TLS (nginx's uwsgi_ssl)."""
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/env", "SERVER_PROTOCOL": "HTTP/1.1",
           "QUERY_STRING": "", "SERVER_NAME": "t", "SERVER_PORT": "80"}  # fmt: skip
    pairs = b"".join(
        len(k).to_bytes(2, "little") + k.encode() + len(v).to_bytes(2, "little") + v.encode()
        for k, v in env.items()
    )
    packet = b"\0" + len(pairs).to_bytes(2, "little") + b"\0" + pairs
    ctx = client_ctx(pki)
    with socket.create_connection(("127.0.0.1", site.uwsgi), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(packet)
            got = b""
            while chunk := s.recv(65536):
                got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    seen = json.loads(body)
    assert seen["HTTPS"] == "on" and seen["wsgi.url_scheme"] == "https"


@pytest.mark.parametrize("name, org", [("other.example", "Second"), ("localhost", None)])
def test_sni_names_pick_their_certificate(site, pki, name, org):
    ctx = client_ctx(pki)
    ctx.check_hostname = False  # the second certificate names localhost, not other.example
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
    assert subject.get("organizationName") == org


def test_client_certificate_subject_and_pem(site, pki):
    status, body, _ = https_get(site.mtls, client_ctx(pki, pki.client_cert, pki.client_key), "/env")
    env = json.loads(body)
    assert status == 200
    assert env["HTTPS_DN"] == "/C=FR/O=Example/CN=alice"
    assert env["HTTPS_CC"].strip() == pki.client_cert.read_text().strip()


@pytest.mark.parametrize("who", ["no certificate", "wrong CA"])
def test_client_without_a_verified_certificate_is_refused(site, pki, who):
    cert = (pki.other_client_cert, pki.other_client_key) if who == "wrong CA" else (None, None)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(site.mtls, client_ctx(pki, *cert), "/env", timeout=10)
    assert _up(site.port, client_ctx(pki))


def test_client_trusting_another_ca_refuses_the_server(site, pki):
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(site.port, client_ctx(pki, ca=pki.other_ca))
    out = subprocess.run(
        ["curl", "-sS", "--cacert", str(pki.other_ca), f"https://localhost:{site.port}/"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 60  # curl: the peer's certificate cannot be verified


def test_slow_handshakes_hold_no_worker(site, pki):
    """Twenty clients send half a ClientHello and wait; the one worker answers a
    normal client meanwhile, at once; the slow ones are closed at socket-timeout."""
    slow = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", site.port), timeout=10)
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello, cut
            slow.append(s)
        t0 = time.monotonic()
        assert https_get(site.port, client_ctx(pki))[0] == 200
        assert time.monotonic() - t0 < 2.0  # not after a slow client's timeout (3 s)
        # the slow ones are closed by the server once socket-timeout passed
        slow[0].settimeout(15)
        assert slow[0].recv(1) == b""
    finally:
        for s in slow:
            s.close()


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        os.urandom(3000),
        b"\x16\x03\x01\xff\xff" + b"A" * 20000,
        b"\x16\x03\x03\x00\x00",
    ],
    ids=["plaintext", "random", "oversized-record", "empty-record"],
)
def test_garbage_and_plaintext_on_the_tls_port(site, pki, data):
    workers = site.worker_pids()
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        try:
            while chunk := s.recv(4096):
                got += chunk
        except ConnectionResetError:
            pass
    assert b"HTTP/1.1" not in got  # closed, at most with a TLS alert
    assert _up(site.port, client_ctx(pki))
    assert site.worker_pids() == workers  # nothing crashed
    assert "Traceback" not in site.log


def test_renegotiation_is_refused(site, pki):
    """openssl s_client's ``R`` asks a TLS 1.2 server to renegotiate."""
    proc = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{site.port}", "-tls1_2",
         "-CAfile", str(pki.ca)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        proc.stdin.write(b"R\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=30)  # ends when the server closes
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.decode("latin-1")
    assert "RENEGOTIATING" in text
    assert "no renegotiation" in text.lower()  # the server's alert
    assert _up(site.port, client_ctx(pki))
    assert "Traceback" not in site.log


@pytest.mark.parametrize(
    "fields, why",
    [
        ("{d}/missing.pem,{key}", "certificate file '{d}/missing.pem' does not exist"),
        ("{cert},{d}/missing.key", "key file '{d}/missing.key' does not exist"),
        ("{cert},{key2}", "the key does not match the certificate"),
        ("{cert}", "expected ADDRESS,CERT,KEY"),
        ("{cert},{key},,{d}/noca.pem", "CA file '{d}/noca.pem' does not exist"),
        ("{cert},{key}\nsni = x.example,{cert},{key2}", "the key does not match"),
        ("{cert},{key}\nsni = x.example {cert},{key2}", "the key does not match"),
        ("{cert},{key}\nsni-regexp = ^(x|y\\.example {cert},{key}", "not a regular expression"),
        ("{cert},{key}\nsni-regexp = ^x$ {cert},{key2}", "the key does not match"),
        ("{cert},{key}\nsni-dir = {d}/nowhere", "'{d}/nowhere' is not a directory"),
    ],
)
def test_start_up_errors_name_the_line(tmp_path, pki, fields, why):
    names = {"d": str(tmp_path), "cert": pki.cert, "key": pki.key, "key2": pki.key2}
    ini = tmp_path / "bad.ini"
    ini.write_text(
        "[uwsgi]\nmodule = testapp\nmaster = true\n"
        f"https-socket = 127.0.0.1:{free_port()},{fields.format(**names)}\n"
    )
    out = subprocess.run(
        [os.sys.executable, "-m", "procmaster", "--ini", str(ini)],
        capture_output=True, timeout=60, env=_env(), cwd=tmp_path,
    )  # fmt: skip
    err = out.stderr.decode()
    assert out.returncode != 0
    option = fields.partition("\n")[2].partition(" =")[0]
    where = f"{ini}:5: option '{option}'" if option else f"{ini}:4: option 'https-socket'"
    assert where in err and why.format(**names) in err, err
    assert "Traceback" not in err


def test_certificate_swapped_by_a_graceful_reload_under_load(tmp_path, pki):
    """The files are replaced, SIGHUP: new handshakes get the new certificate,
    and no request of the HTTPS load (keep-alive and new connections) fails."""
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    cert.write_bytes(pki.cert.read_bytes())
    key.write_bytes(pki.key.read_bytes())
    port = free_port()
    ini = tmp_path / "site.ini"
    ini.write_text(
        "[uwsgi]\nmodule = testapp\nmaster = true\nprocesses = 2\n"
        f"https-socket = 127.0.0.1:{port},{cert},{key}\n"
    )
    server = Server(["--ini", str(ini)], tmp_path, _env(), tmp_path / "site.log")
    try:
        ctx = client_ctx(pki)
        wait_for(lambda: _up(port, ctx), 20, what=f"the site:\n{server.log}")

        def issuer_org():
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    subject = dict(x[0] for x in s.getpeercert()["subject"])
                    return subject.get("organizationName", "")

        assert issuer_org() == ""

        def accept(status: int, body: bytes) -> bool:
            return status == 200 and body == b"Hello, World!"

        def more_of_both(load: Load, what: str) -> None:
            before = list(load.counts)
            wait_for(lambda: min(c - b for c, b in zip(load.counts, before, strict=True)) > 20,
                     30, what=what)  # fmt: skip

        with Load(port, threads=4, accept=accept, timeout=20, ssl_context=ctx) as load:
            more_of_both(load, "the HTTPS load to run")
            cert.write_bytes(pki.cert2.read_bytes())
            key.write_bytes(pki.key2.read_bytes())
            server.signal(signal.SIGHUP)
            server.wait_log("reload (SIGHUP) done", 60)
            wait_for(lambda: issuer_org() == "Second", 30, what="the new certificate")
            more_of_both(load, "more load")
            # a broken swap (the key of another certificate) fails the reload's check:
            # the workers serving the good certificate go on
            key.write_bytes(pki.key.read_bytes())
            server.signal(signal.SIGHUP)
            server.wait_log("the key does not match the certificate", 60)
            more_of_both(load, "more load after the failed reload")
            assert issuer_org() == "Second"
        assert load.failures == [], load.failures[:5]
        assert "Traceback" not in server.log
    finally:
        server.kill_all()
