"""Apache 2.4 in front of procmaster, end to end (the set-up of configs/apache/):
a real ``apache2 -DFOREGROUND`` (mpm_event, 127.0.0.1) with each of
``mod_proxy_uwsgi``, ``mod_proxy_fcgi`` and ``mod_proxy_scgi`` in turn, against
one procmaster serving the same app on http-socket, socket (uwsgi),
fastcgi-socket and scgi-socket. Every answer through Apache must be what
http-socket gives directly: status, body bytes, Content-Type, Content-Length,
every Set-Cookie. (Apache reads FastCGI and SCGI replies as CGI script output:
it often drops the backend's Content-Length and sends the body chunked; a length
it does send must be the app's, or, for a body the app streamed without one, the
length of the whole body when all of it had come before Apache answered: its
content-length filter counts it, as happened under load. Through
mod_proxy_uwsgi it is always kept.)
"""

from __future__ import annotations

import http.client
import os
import re

import pytest
from support import ROOT, free_port
from support.frontends import Apache, require_apache

pytestmark = pytest.mark.slow

PROXIES = {  # Apache module -> (procmaster socket option, the snippet in configs/apache/)
    "proxy_uwsgi": ("--uwsgi-socket", "uwsgi.conf"),
    "proxy_fcgi": ("--fastcgi-socket", "fcgi.conf"),
    "proxy_scgi": ("--scgi-socket", "scgi.conf"),
}
SNIPPETS = ROOT / "configs" / "apache"

BODY_10K = bytes(range(256)) * 40
BODY_20M = os.urandom(20 * 1024 * 1024)

REQUESTS = [
    ("GET", "/", None),
    ("GET", "/env-free/404", None),
    ("HEAD", "/head", None),
    ("POST", "/echo", b""),
    ("POST", "/echo", BODY_10K),
    ("POST", "/echo", BODY_20M),
    ("GET", "/stream?n=50", None),
    ("GET", "/cookies?n=30", None),
]


def fetch(port: int, method: str, path: str, body: bytes | None) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        streamed = resp.getheader("Content-Length") is None
        return {
            "status": resp.status,
            "body": data,
            "content-type": resp.getheader("Content-Type"),
            "content-length": None if streamed else resp.getheader("Content-Length"),
            "set-cookie": resp.headers.get_all("Set-Cookie") or [],
        }
    finally:
        conn.close()


def test_apache_mod_proxy_uwsgi_fcgi_scgi_answer_as_http_socket(procmaster, tmp_path):
    require_apache(["mpm_event", "proxy", *PROXIES])
    http_port = free_port()
    ports = {module: free_port() for module in PROXIES}
    args = ["--http-socket", f"127.0.0.1:{http_port}"]
    for module, (option, _) in PROXIES.items():
        args += [option, f"127.0.0.1:{ports[module]}"]
    procmaster(*args, "--module", "testapp", "--processes", "2", wait_port=http_port)

    expected = [fetch(http_port, *r) for r in REQUESTS]
    assert expected[5]["body"] == BODY_20M and expected[7]["set-cookie"][29] == "c29=v29; Path=/"
    assert expected[6]["content-length"] is None  # streamed: no length known

    for module, (_, snippet) in PROXIES.items():
        # the shipped snippet, with this test's port for procmaster's
        conf = re.sub(
            r"127\.0\.0\.1:\d+", f"127.0.0.1:{ports[module]}", (SNIPPETS / snippet).read_text()
        )
        with Apache(tmp_path / module, conf, ["proxy", module]) as apache:
            for (method, path, body), want in zip(REQUESTS, expected, strict=True):
                got = fetch(apache.port, method, path, body)
                what = f"{module}: {method} {path} ({len(body or b'')} bytes)"
                assert got["status"] == want["status"], what
                assert got["body"] == want["body"], what
                assert got["set-cookie"] == want["set-cookie"], what
                assert got["content-type"] == want["content-type"], what
                if module == "proxy_uwsgi":
                    assert got["content-length"] == want["content-length"], what
                elif want["content-length"] is not None:  # CGI-style replies: Apache
                    cl = got["content-length"]  # may re-frame the body as chunked
                    assert cl is None or cl == want["content-length"], what
                else:  # streamed by the app: a body that came whole before Apache
                    cl = got["content-length"]  # answered, it may count itself
                    assert cl is None or int(cl) == len(want["body"]), what
