"""The PROXY protocol and trusted forwarded headers end to end (issue 19):
HAProxy (Debian's package) sends ``send-proxy`` and ``send-proxy-v2`` from
127.0.0.2 to procmaster's ``http =`` and ``https =`` sockets
(``http-enable-proxy-protocol``, ``proxy-allow-ips = 127.0.0.2``); the app sees
the client's address (the test's client binds 127.0.0.3); a source that is not
trusted is refused; hostile headers are closed with one log line each and
nothing crashes. A plain ``http-socket`` on the same server believes
``X-Forwarded-*`` from 127.0.0.2 alone (``forwarded-allow-ips``).

One procmaster and one HAProxy (module scope) serve every test here."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess

import pytest
from support import APPS, ROOT, Server, free_port, wait_for
from support.tls import make_pki

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
LB = "127.0.0.2"  # HAProxy's source address towards procmaster
CLIENT = "127.0.0.3"  # the test client's address


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxy")
    pki = make_pki(tmp / "pki")
    http, https, plain = free_port(), free_port(), free_port()
    ini = tmp / "site.ini"
    ini.write_text(
        "[uwsgi]\nmodule = testapp\nmaster = true\nprocesses = 1\nsocket-timeout = 3\n"
        "buffer-size = 32768\n"  # room for 1,000 forwarded hops
        f"http = 127.0.0.1:{http}\n"
        f"https = 127.0.0.1:{https},{pki.cert},{pki.key}\n"
        f"http-socket = 127.0.0.1:{plain}\n"
        f"http-enable-proxy-protocol = true\nproxy-allow-ips = {LB}/32\n"
        f"forwarded-allow-ips = {LB}\n"
    )
    server = Server(["--ini", str(ini)], tmp, _env(), tmp / "site.log")
    fronts = {name: free_port() for name in ("v1", "v2", "tls")}
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(
        "global\n  maxconn 200\n"
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n"
        "  timeout server 30s\n"
        f"frontend v1\n  bind 127.0.0.1:{fronts['v1']}\n  default_backend v1\n"
        f"backend v1\n  server app 127.0.0.1:{http} send-proxy source {LB}\n"
        f"frontend v2\n  bind 127.0.0.1:{fronts['v2']}\n  default_backend v2\n"
        f"backend v2\n  server app 127.0.0.1:{http} send-proxy-v2 source {LB}\n"
        f"frontend tls\n  bind 127.0.0.1:{fronts['tls']}\n  default_backend tls\n"
        f"backend tls\n  server app 127.0.0.1:{https} send-proxy-v2 source {LB}\n"
    )
    lb = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(cfg)],
        stdout=open(tmp / "haproxy.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _get(plain, "/") is not None, 20, what=f"procmaster:\n{server.log}")
        wait_for(lambda: _get(fronts["v1"], "/") is not None, 20, what="haproxy")
        server.ports = {"http": http, "https": https, "plain": plain, **fronts}
        server.pki = pki
        yield server
    finally:
        lb.kill()
        lb.wait(10)
        server.kill_all()


def _connect(port, source=CLIENT):
    s = socket.socket()
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def _read_all(s) -> bytes:
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return got


def _get(port, path, source=CLIENT, headers=b"", prefix=b""):
    try:
        with _connect(port, source) as s:
            s.sendall(prefix + b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + headers
                      + b"Connection: close\r\n\r\n")  # fmt: skip
            raw = _read_all(s)
    except OSError:
        return None
    head, _, body = raw.partition(b"\r\n\r\n")
    return body if head.startswith(b"HTTP/1.1 200") else None


def _env_of(port, **kw):
    body = _get(port, "/env", **kw)
    assert body is not None
    return json.loads(body)


@pytest.mark.parametrize("front", ["v1", "v2"])
def test_haproxy_send_proxy_gives_the_client_address(site, front):
    with _connect(site.ports[front]) as s:
        port = s.getsockname()[1]
        s.sendall(b"GET /env HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        env = json.loads(_read_all(s).partition(b"\r\n\r\n")[2])
    assert env["REMOTE_ADDR"] == CLIENT and env["REMOTE_PORT"] == str(port)
    assert env["wsgi.url_scheme"] == "http"


def test_haproxy_send_proxy_v2_then_tls(site):
    ctx = ssl.create_default_context(cafile=str(site.pki.ca))
    with _connect(site.ports["tls"]) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET /env HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        env = json.loads(_read_all(s).partition(b"\r\n\r\n")[2])
    assert env["REMOTE_ADDR"] == CLIENT and env["HTTPS"] == "on"
    assert env["wsgi.url_scheme"] == "https"


def test_an_untrusted_source_is_refused(site):
    forged = b"PROXY TCP4 1.2.3.4 127.0.0.1 1111 80\r\n"
    assert _get(site.ports["http"], "/env", source="127.0.0.1", prefix=forged) is None
    site.wait_log("PROXY protocol header from 127.0.0.1, which is not in proxy-allow-ips")
    assert "1.2.3.4" not in site.log


def _v2(fam=0x11, length=None, body=None):
    body = body if body is not None else b"\x01\x02\x03\x04\x7f\x00\x00\x01\x04\x57\x00\x50"
    n = len(body) if length is None else length
    return b"\r\n\r\n\x00\r\nQUIT\n\x21" + bytes([fam]) + struct.pack("!H", n) + body


HOSTILE = {
    "truncated-v1": (b"PROXY TCP4 1.2.3.4 127.0.0", "did not start|cut"),
    "oversized-v1": (b"PROXY TCP4 " + b"9" * 300 + b"\r\n", "longer than 107 bytes"),
    "bad-address-v1": (b"PROXY TCP4 1.2.3.400 127.0.0.1 1 2\r\n", "is not an address"),
    "family-mismatch-v1": (b"PROXY TCP6 1.2.3.4 127.0.0.1 1 2\r\n", "not an IPv6 address"),
    "bad-port-v1": (b"PROXY TCP4 1.2.3.4 127.0.0.1 99999 2\r\n", "is not a port"),
    "short-length-v2": (_v2(length=4, body=b"\0" * 4), "shorter than the addresses"),
    "bad-family-v2": (_v2(fam=0x51), "unknown family"),
    "oversized-v2": (_v2(length=60000, body=b""), "at most"),
    "no-header": (b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", "did not start with a PROXY"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_headers_are_closed_with_one_log_line(site, name):
    data, why = HOSTILE[name]
    workers = site.worker_pids()
    before = site.log.count("bad PROXY protocol header")
    with _connect(site.ports["http"], source=LB) as s:
        s.sendall(
            data + b"GET /env HTTP/1.1\r\nHost: t\r\n\r\n" if name != "truncated-v1" else data
        )
        if name == "truncated-v1":
            s.shutdown(socket.SHUT_WR)
        got = _read_all(s)
    assert not got.startswith(b"HTTP/1.1 200")
    if name == "truncated-v1":
        # a cut header is the client's EOF: closed without a line, like any cut request
        assert got == b""
    else:
        site.wait_log("bad PROXY protocol header", count=before + 1)
        lines = [ln for ln in site.log.splitlines() if "bad PROXY protocol header" in ln]
        assert any(re.search(why, ln) for ln in lines[before:]), lines[before:]
    assert site.worker_pids() == workers
    assert _get(site.ports["v2"], "/") == b"Hello, World!"


def test_a_stalled_header_is_closed_at_socket_timeout(site):
    with _connect(site.ports["http"], source=LB) as s:
        s.sendall(b"PROXY TCP4 ")
        s.settimeout(20)
        assert _read_all(s) == b""  # closed by the server (socket-timeout = 3)
    assert _get(site.ports["v1"], "/") == b"Hello, World!"


def test_forwarded_headers_believed_from_the_trusted_proxy_only(site):
    xff = b"X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
    env = _env_of(site.ports["plain"], source=LB, headers=xff)
    assert env["REMOTE_ADDR"] == "203.0.113.9" and env["wsgi.url_scheme"] == "https"
    env = _env_of(site.ports["plain"], source=CLIENT, headers=xff)
    assert env["REMOTE_ADDR"] == CLIENT and env["wsgi.url_scheme"] == "http"
    assert env["HTTP_X_FORWARDED_FOR"] == "6.6.6.6, 203.0.113.9"  # a plain header
    hops = b"X-Forwarded-For: " + b", ".join(b"10.0.0.%d" % (i % 250) for i in range(1000))
    env = _env_of(site.ports["plain"], source=LB, headers=hops + b"\r\n")
    assert env["REMOTE_ADDR"] == "10.0.0.249"  # the first untrusted hop from the right
    spoof = b"X_Forwarded_For: 6.6.6.6\r\n"
    assert _env_of(site.ports["plain"], source=LB, headers=spoof)["REMOTE_ADDR"] == LB


def test_proxy_protocol_without_trusted_networks_refuses_to_start(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text(
        f"[uwsgi]\nmodule = testapp\nhttp-socket = 127.0.0.1:{free_port()}\n"
        "enable-proxy-protocol = true\n"
    )
    out = subprocess.run(
        [os.sys.executable, "-m", "procmaster", "--ini", str(ini)],
        capture_output=True, timeout=60, env=_env(), cwd=tmp_path,
    )  # fmt: skip
    err = out.stderr.decode()
    assert out.returncode != 0 and "Traceback" not in err
    assert f"{ini}:4: option 'enable-proxy-protocol': set proxy-allow-ips" in err, err


LB_CONFIGS = ROOT / "configs" / "load-balancer"


def test_the_readme_load_balancer_configs_are_valid(tmp_path):
    """configs/load-balancer/: HAProxy accepts its config (haproxy -c); procmaster's
    --check says each INI would start (the TLS one with real files in place of
    /etc/procmaster/tls)."""
    out = subprocess.run([HAPROXY, "-c", "-f", str(LB_CONFIGS / "haproxy.cfg")],
                         capture_output=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    pki = make_pki(tmp_path / "pki")
    https = (LB_CONFIGS / "https.ini").read_text()
    https = https.replace("/etc/procmaster/tls/tls.crt", str(pki.cert))
    https = https.replace("/etc/procmaster/tls/tls.key", str(pki.key))
    (tmp_path / "https.ini").write_text(https.replace("%d..", str(ROOT / "configs")))
    for ini in (LB_CONFIGS / "site.ini", tmp_path / "https.ini"):
        out = subprocess.run(
            [os.sys.executable, "-m", "procmaster", "--check", "--ini", str(ini)],
            capture_output=True, timeout=120, env=_env(), cwd=tmp_path,
        )  # fmt: skip
        text = (out.stdout + out.stderr).decode()
        assert out.returncode == 0 and "procmaster would start" in text, text
    # and a broken one is caught by --check, with the start's words
    (tmp_path / "bad.ini").write_text(https.replace(str(pki.key), str(pki.key2)))
    out = subprocess.run(
        [os.sys.executable, "-m", "procmaster", "--check", "--check-no-import", "--ini",
         str(tmp_path / "bad.ini")],
        capture_output=True, timeout=120, env=_env(), cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode != 0
    assert "the key does not match the certificate" in (out.stdout + out.stderr).decode()
