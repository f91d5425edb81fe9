"""TLS session tickets rotated on a timer, client certificate chain depth, and
the certificates SNI picks from ``sni-regexp`` and ``sni-dir`` (issue 19), with
real clients: Python's ``ssl`` (sessions, server_hostname), ``openssl
s_client`` (server names Python refuses to send) and ``curl --resolve``.

One site (module scope, one worker: a ticket from another worker would never
resume) serves every check; ``ssl-tickets-rotate = 2`` and ``ssl-verbose`` make
each rotation a log line the tests wait for."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess

import pytest
from support import APPS, ROOT, Server, free_port, wait_for
from support.tls import make_chains, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def chains(pki):
    return make_chains(pki.ca.parent)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory, pki):
    tmp = tmp_path_factory.mktemp("tls-sessions")
    certs = tmp / "certs"
    certs.mkdir()
    shutil.copy(pki.cert2, certs / "dir.example.crt")
    shutil.copy(pki.key2, certs / "dir.example.key")
    (certs / "bad.example.crt").write_text("not a certificate\n")
    (certs / "bad.example.key").write_text("not a key\n")
    shutil.copy(pki.cert2, tmp / "secret.crt")  # outside the directory
    shutil.copy(pki.key2, tmp / "secret.key")
    port, mtls = free_port(), free_port()
    ini = tmp / "site.ini"
    ini.write_text(
        "[uwsgi]\nmodule = testapp\nmaster = true\nprocesses = 1\nsocket-timeout = 5\n"
        f"https-socket = 127.0.0.1:{port},{pki.cert},{pki.key}\n"
        f"https-socket = 127.0.0.1:{mtls},{pki.cert},{pki.key},,{pki.ca}\n"
        f"sni-dir = {certs}\n"
        f"sni-regexp = ^re[0-9]+\\.example$ {pki.cert2},{pki.key2}\n"
        "ssl-tickets-rotate = 2\nssl-verbose = true\n"
    )
    server = Server(["--ini", str(ini)], tmp, _env(), tmp / "site.log")
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        wait_for(lambda: _status(port, ctx) == 200, 20, what=f"the site on {port}:\n{server.log}")
        server.port, server.mtls = port, mtls
        yield server
    finally:
        server.kill_all()


def _status(port, ctx):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except OSError:
        return None
    finally:
        conn.close()


def _get(port, ctx, session=None, name="localhost"):
    """One request on a new connection; (reused?, session) of the client."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name, session=session) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while chunk := s.recv(65536):
                got += chunk
            assert got.startswith(b"HTTP/1.1 200"), got[:100]
            return s.session_reused, s.session


def _rotations(site):
    return site.log.count(f":{site.port}: TLS session ticket keys rotated")


def test_a_ticket_resumes_until_the_keys_rotate(site, pki):
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    for _ in range(10):  # a try that no rotation cut in two
        before = _rotations(site)
        _, session = _get(site.port, ctx)
        reused, _ = _get(site.port, ctx, session)
        if _rotations(site) == before:
            break
    assert reused, site.log  # resumed with the ticket, no rotation in between
    wait_for(lambda: _rotations(site) > before, 30, what=f"a rotation:\n{site.log}")
    reused, _ = _get(site.port, ctx, session)
    assert not reused  # the keys that made the ticket are gone: a full handshake
    assert "Traceback" not in site.log


def test_an_open_connection_keeps_its_keys_across_a_rotation(site, pki):
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    conn = http.client.HTTPSConnection("127.0.0.1", site.port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/")
        assert conn.getresponse().read() is not None
        sock, before = conn.sock, _rotations(site)
        wait_for(lambda: _rotations(site) > before, 30, what=f"a rotation:\n{site.log}")
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200 and conn.sock is sock  # the same TLS connection
        resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("chain, ok", [("one", True), ("two", False)])
def test_a_client_chain_deeper_than_ssl_verify_depth_is_refused(site, pki, chains, chain, ok):
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if chain == "one":
        ctx.load_cert_chain(str(chains.one), str(chains.one_key))
        assert _status(site.mtls, ctx) == 200
        return
    ctx.load_cert_chain(str(chains.two), str(chains.two_key))
    assert _status(site.mtls, ctx) is None  # closed: no answer
    wait_for(lambda: "2 intermediate CAs; ssl-verify-depth allows 1" in site.log, 20,
             what=f"the refusal in the log:\n{site.log}")  # fmt: skip


def _organization(site, pki, name):
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.check_hostname = False  # the certificates name localhost
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            return dict(x[0] for x in s.getpeercert()["subject"]).get("organizationName")


@pytest.mark.parametrize(
    "name, org",
    [("dir.example", "Second"), ("DIR.Example", "Second"), ("re7.example", "Second"),
     ("re7.example.evil", None), ("unknown.example", None), ("localhost", None)],
)  # fmt: skip
def test_sni_regexp_and_sni_dir_pick_the_certificate(site, pki, name, org):
    assert _organization(site, pki, name) == org


def _s_client_subject(site, pki, name):
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{site.port}", "-servername", name,
         "-CAfile", str(pki.ca)],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
    ).stdout.decode("latin-1")  # fmt: skip
    return next((line for line in out.splitlines() if line.startswith("subject=")), "")


@pytest.mark.parametrize(
    "name", ["../secret", "..", "certs/../../secret", "/etc/passwd", "é.example", b"a\xffb"]
)
def test_hostile_server_names_read_nothing_outside_the_directory(site, pki, name):
    """Names that are not host names: the default certificate answers (a name
    that is not ASCII is refused inside Python's ssl: one log line, no traceback)."""
    assert "Second" not in _s_client_subject(site, pki, name)
    assert "Second" in _s_client_subject(site, pki, "dir.example")  # the control
    assert site.worker_pids() and "Traceback" not in site.log


def test_broken_files_are_logged_once_and_the_default_answers(site, pki):
    for _ in range(3):
        assert _organization(site, pki, "bad.example") is None
    assert site.log.count("sni-dir: bad.example:") == 1, site.log
    assert "Traceback" not in site.log


def test_curl_resolve_gets_the_directory_certificate(site, pki):
    out = subprocess.run(
        ["curl", "-sS", "-v", "-k", "--resolve", f"dir.example:{site.port}:127.0.0.1",
         f"https://dir.example:{site.port}/"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    subject = next(ln for ln in out.stderr.decode().splitlines() if "subject:" in ln)
    assert "O=Second" in subject or "O = Second" in subject
