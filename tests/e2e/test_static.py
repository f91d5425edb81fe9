"""Static files served by the workers (static-map & co), end to end."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest
from support import free_port, http_get, raw_request


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    static = root / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_text("body { color: red }\n")
    (static / "docs").mkdir()
    (static / "docs" / "index.html").write_text("<h1>docs</h1>\n")
    (static / "empty").mkdir()
    (root / "secret.txt").write_text("top secret\n")
    (static / "leak.txt").symlink_to(root / "secret.txt")
    shared = root / "shared"
    shared.mkdir()
    (shared / "logo.txt").write_text("logo\n")
    (static / "logo.txt").symlink_to(shared / "logo.txt")
    big = static / "big.bin"
    with open(big, "wb") as fh:
        block = os.urandom(1 << 20)
        for i in range(50):
            fh.write(block[i:] + block[:i])
    app2 = root / "app2" / "assets"
    app2.mkdir(parents=True)
    (app2 / "app.js").write_text("console.log(1)\n")
    checked = root / "public"
    checked.mkdir()
    (checked / "robots.txt").write_text("User-agent: *\n")
    return root


@pytest.fixture(scope="module")
def port(site, tmp_path_factory):
    # a module-scoped server: started by hand, killed by PID at the end
    import subprocess
    import sys

    from support import APPS, ROOT, wait_for

    port = free_port()
    ini = site / "site.ini"
    ini.write_text(
        f"""[uwsgi]
http-socket = 127.0.0.1:{port}
module = testapp
processes = 2
static-map = /static={site}/static
static-map2 = /assets={site}/app2
static-check = {site}/public
static-index = index.html
static-safe = {site}/shared
disable-logging = true
"""
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(APPS), str(ROOT)]))
    log = open(site / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "procmaster", "--ini", str(ini)],
        cwd=site,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            assert proc.poll() is None, (site / "server.log").read_text()
            return False

    wait_for(up, 15, what="the static site")
    yield port
    import psutil

    kids = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    for kid in kids:
        try:
            kid.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait(5)
    log.close()


def test_file_with_type_and_last_modified(port, site):
    status, headers, body = http_get(port, "/static/css/site.css")
    assert status == 200 and body == b"body { color: red }\n"
    assert headers["Content-Type"] == "text/css"
    assert headers["Content-Length"] == str(len(body))
    assert "GMT" in headers["Last-Modified"]


def test_if_modified_since_gives_304(port):
    _, headers, _ = http_get(port, "/static/css/site.css")
    status, _, body = http_get(
        port, "/static/css/site.css", headers={"If-Modified-Since": headers["Last-Modified"]}
    )
    assert status == 304 and body == b""
    status, _, _ = http_get(
        port, "/static/css/site.css", headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}
    )
    assert status == 200


def test_head_has_length_and_no_body(port):
    out = raw_request(port, b"HEAD /static/css/site.css HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    assert b"Content-Length: 20" in head and body == b""


def test_single_range(port, site):
    data = (site / "static" / "big.bin").read_bytes()
    status, headers, body = http_get(port, "/static/big.bin", headers={"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    status, _, body = http_get(port, "/static/big.bin", headers={"Range": "bytes=-10"})
    assert status == 206 and body == data[-10:]
    status, headers, _ = http_get(port, "/static/big.bin", headers={"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"


def test_fifty_mib_byte_exact_with_sendfile(port, site):
    expected = hashlib.sha256((site / "static" / "big.bin").read_bytes()).hexdigest()
    status, headers, body = http_get(port, "/static/big.bin", timeout=30)
    assert status == 200 and len(body) == 50 << 20
    assert hashlib.sha256(body).hexdigest() == expected
    assert headers["Content-Type"] == "application/octet-stream"


def test_index_map2_and_check(port):
    assert http_get(port, "/static/docs/")[2] == b"<h1>docs</h1>\n"
    assert http_get(port, "/assets/app.js")[2] == b"console.log(1)\n"
    assert http_get(port, "/robots.txt")[2] == b"User-agent: *\n"


def test_missing_file_and_directory_fall_through_to_the_app(port):
    # testapp's own answer to a path it does not know: the request reached the app
    assert http_get(port, "/static/nope.css")[::2] == (404, b"not found")
    assert http_get(port, "/static/empty/")[::2] == (404, b"not found")
    status, _, body = http_get(port, "/")
    assert status == 200 and body == b"Hello, World!"


@pytest.mark.parametrize(
    "path",
    [
        b"/static/../secret.txt",
        b"/static/%2e%2e/secret.txt",
        b"/static/css/%2E%2E/%2e%2e/secret.txt",
        b"/static/leak.txt",
    ],
)
def test_traversal_is_refused(port, path):
    # a ".." segment or a real path outside the mapped directory: 403 from the
    # static server itself (see procmaster/static.py), never the file
    out = raw_request(port, b"GET " + path + b" HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"403", out[:200]
    assert body == b"Forbidden\n"


def test_static_safe_allows_a_symlink_out(port):
    assert http_get(port, "/static/logo.txt")[2] == b"logo\n"


def test_post_goes_to_the_app(port):
    status, _, body = http_get(port, "/static/css/site.css", method="POST", body=b"x")
    assert (status, body) == (404, b"not found")  # testapp's own answer: it got the POST
