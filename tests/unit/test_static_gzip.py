"""static-gzip*: a pre-compressed sibling sent when the client accepts it."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from procmaster.static import Precompressed, StaticFiles


def site(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "css").mkdir(parents=True)
    (root / "css" / "a.css").write_text("body { margin: 0 }\n" * 50)
    (root / "css" / "a.css.gz").write_bytes(gzip.compress((root / "css" / "a.css").read_bytes()))
    (root / "app.js").write_text("console.log(1)\n")
    (root / "app.js.gz").write_bytes(gzip.compress(b"console.log(1)\n"))
    (root / "app.js.br").write_bytes(b"brotli bytes")
    (root / "plain.txt").write_text("no sibling\n")
    return root


def get(files: StaticFiles, path: str, accept: str | None) -> tuple[str, dict, bytes]:
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
    if accept is not None:
        env["HTTP_ACCEPT_ENCODING"] = accept
    app = files.match(env)
    got = {}

    def start_response(status, headers, exc_info=None):
        got["status"], got["headers"] = status, dict(headers)

    result = app(env, start_response)
    body = result.filelike.read() if hasattr(result, "filelike") else b"".join(result)
    if hasattr(result, "close"):
        result.close()
    return got["status"], got["headers"], body


def files(root: Path, **gz) -> StaticFiles:
    args = {"all": False, "dirs": [], "exts": [], "regexes": []}
    args.update(gz)
    return StaticFiles(maps=[f"/s={root}"], gzip=Precompressed(**args))


def test_gzip_sibling_sent_with_its_length_and_the_original_type(tmp_path):
    root = site(tmp_path)
    status, headers, body = get(files(root, all=True), "/s/css/a.css", "gzip, deflate")
    assert status == "200 OK"
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "text/css"
    assert headers["Vary"] == "Accept-Encoding"
    assert int(headers["Content-Length"]) == (root / "css" / "a.css.gz").stat().st_size
    assert gzip.decompress(body) == (root / "css" / "a.css").read_bytes()


@pytest.mark.parametrize("accept", [None, "", "identity", "gzip;q=0", "deflate"])
def test_plain_file_when_the_client_does_not_accept_gzip(tmp_path, accept):
    root = site(tmp_path)
    status, headers, body = get(files(root, all=True), "/s/css/a.css", accept)
    assert "Content-Encoding" not in headers
    assert headers["Vary"] == "Accept-Encoding"  # caches keep both variants
    assert body == (root / "css" / "a.css").read_bytes()


def test_brotli_preferred_as_uwsgi_does(tmp_path):
    root = site(tmp_path)
    _, headers, body = get(files(root, all=True), "/s/app.js", "gzip, br")
    assert (headers["Content-Encoding"], body) == ("br", b"brotli bytes")


def test_no_sibling_no_encoding(tmp_path):
    root = site(tmp_path)
    _, headers, body = get(files(root, all=True), "/s/plain.txt", "gzip")
    assert "Content-Encoding" not in headers and body == b"no sibling\n"


def test_which_files_dir_ext_and_regex(tmp_path):
    root = site(tmp_path)
    by_dir = files(root, dirs=[str(root / "css")])
    assert get(by_dir, "/s/css/a.css", "gzip")[1].get("Content-Encoding") == "gzip"
    assert "Vary" not in get(by_dir, "/s/app.js", "gzip")[1]
    by_ext = files(root, exts=[".js"])
    assert get(by_ext, "/s/app.js", "gzip")[1].get("Content-Encoding") == "gzip"
    assert "Content-Encoding" not in get(by_ext, "/s/css/a.css", "gzip")[1]
    by_re = files(root, regexes=[r"\.css$"])
    assert get(by_re, "/s/css/a.css", "gzip")[1].get("Content-Encoding") == "gzip"
    none = StaticFiles(maps=[f"/s={root}"])
    assert "Vary" not in get(none, "/s/css/a.css", "gzip")[1]
