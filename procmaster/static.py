"""Static files, served by the worker before the app is called (uWSGI's
``static-map``, ``static-map2``, ``static-check``, ``static-index``, ``static-safe``).

Theory of operation
-------------------
``StaticFiles.match(environ)`` maps the request's ``PATH_INFO`` (already
percent-decoded, so ``%2e%2e`` arrives as ``..``) to a file:

* ``static-map = /static=/srv/static``: ``/static/a.css`` -> ``/srv/static/a.css``;
* ``static-map2 = /static=/srv/app``: ``/static/a.css`` -> ``/srv/app/static/a.css``;
* ``static-check = /srv/root``: ``/a.css`` -> ``/srv/root/a.css``;
* a directory is served through ``static-index`` (``index.html`` ...), if any.

No file there (or a directory without an index): ``None``, and the request goes to
the app, as in uWSGI. A path with a ``..`` segment, or a file whose real path
(symlinks resolved) lies outside the mapped directory and every ``static-safe``
directory, gets 403. Otherwise ``match`` returns a small WSGI callable that
answers with the file: ``Content-Type`` from ``mimetypes``, ``Last-Modified``,
304 for a fresh ``If-Modified-Since``, 206 for one ``Range``, 416 for a range
beyond the end. Its body is a ``wsgi.FileWrapper``, which the worker sends with
``os.sendfile`` as the client's socket takes it (and ``HEAD`` without a body),
like any app's file response: a slow client holds its connection, not the worker.

Only ``GET`` and ``HEAD`` are served; other methods go to the app.

Pre-compressed files (``static-gzip-all``, ``static-gzip-dir``/``-prefix``,
``static-gzip-ext``/``-suffix``, ``static-gzip`` regexes, matched against the
file's path): when the client's ``Accept-Encoding`` names ``br`` or ``gzip`` and
``FILE.br`` or ``FILE.gz`` exists, that file is sent with ``Content-Encoding``
and its own length, the ``Content-Type`` of ``FILE``, and ``Vary:
Accept-Encoding`` (also when the plain file is sent, so caches keep both).

Must not know: sockets, protocols, workers (it sees an environ, returns a WSGI app).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable

from .wsgi import FileWrapper

__all__ = ["StaticFiles", "file_app", "static_files"]

WSGIApp = Callable[[dict, Callable], object]


def static_files(cfg) -> StaticFiles | None:
    """The static file server the config asks for, or None when it asks for none."""
    files = StaticFiles(
        maps=list(cfg.static_map),
        maps2=list(cfg.static_map2),
        checks=list(cfg.static_check),
        index=list(cfg.static_index),
        safe=list(cfg.static_safe),
        gzip=Precompressed(
            cfg.static_gzip_all,
            list(cfg.static_gzip_dir),
            list(cfg.static_gzip_ext),
            list(cfg.static_gzip),
        ),
    )
    return files if files.rules else None


def file_app(path: str) -> WSGIApp:
    """A WSGI callable answering with the file at ``path`` (route ``static:``)."""
    return _FileApp(path, None)


class Precompressed:
    """Which files may have a ``.br``/``.gz`` sibling to send instead."""

    __slots__ = ("all", "dirs", "exts", "regexes")

    def __init__(self, all: bool, dirs: list[str], exts: list[str], regexes: list[str]) -> None:
        self.all = all
        self.dirs = tuple(dirs)
        self.exts = tuple(exts)
        self.regexes = tuple(re.compile(r) for r in regexes)

    def __bool__(self) -> bool:
        return bool(self.all or self.dirs or self.exts or self.regexes)

    def wanted(self, path: str) -> bool:
        return (
            self.all
            or path.startswith(self.dirs)
            or path.endswith(self.exts)
            or any(r.search(path) for r in self.regexes)
        )


class StaticFiles:
    """The mapping rules, in the order uWSGI tries them (maps, then checks)."""

    def __init__(
        self,
        maps: list[str] = (),
        maps2: list[str] = (),
        checks: list[str] = (),
        index: list[str] = (),
        safe: list[str] = (),
        gzip: Precompressed | None = None,
    ) -> None:
        # (url prefix, directory or file, append the whole path?)
        self.rules: list[tuple[str, str, bool]] = []
        for value, whole in [(v, False) for v in maps] + [(v, True) for v in maps2]:
            prefix, _, target = value.partition("=")
            self.rules.append((prefix.rstrip("/") or "/", os.path.abspath(target), whole))
        for directory in checks:
            self.rules.append(("/", os.path.abspath(directory), True))
        self.index = [i for i in index if i]
        self.safe = [os.path.realpath(p) for p in safe]
        self.gzip = gzip if gzip else None

    def match(self, environ: dict) -> WSGIApp | None:
        """A WSGI callable serving the file for this request, or None (the app's turn)."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        # PEP 3333 carries the decoded path as latin-1; file names are UTF-8 bytes
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "surrogateescape")
        for prefix, target, whole in self.rules:
            if prefix == "/":
                rest = path
            elif path == prefix or path.startswith(prefix + "/"):
                rest = path if whole else path[len(prefix) :]
            else:
                continue
            found = self._resolve(target, rest)
            if found is not None:
                return found
        return None

    def _resolve(self, base: str, rest: str) -> WSGIApp | None:
        parts = [p for p in rest.split("/") if p not in ("", ".")]
        if ".." in parts or any("\0" in p for p in parts):
            return _forbidden
        candidate = os.path.join(base, *parts) if parts else base
        try:
            st = os.stat(candidate)
        except (OSError, ValueError):
            return None
        if stat.S_ISDIR(st.st_mode):
            for name in self.index:
                index = os.path.join(candidate, name)
                try:
                    st = os.stat(index)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    candidate = index
                    break
            else:
                return None
        if not stat.S_ISREG(st.st_mode):
            return None
        real = os.path.realpath(candidate)
        if not self._allowed(real, os.path.realpath(base)):
            return _forbidden
        gzip = self.gzip
        return _FileApp(real, gzip if gzip is not None and gzip.wanted(real) else None)

    def _allowed(self, real: str, base: str) -> bool:
        for root in (base, *self.safe):
            if real == root or real.startswith(root.rstrip("/") + "/"):
                return True
        return False


def _forbidden(environ: dict, start_response: Callable) -> list[bytes]:
    body = b"Forbidden\n"
    start_response(
        "403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


class _FileApp:
    """Answers one request with one file."""

    __slots__ = ("path", "gzip")

    def __init__(self, path: str, gzip: Precompressed | None) -> None:
        self.path = path
        self.gzip = gzip  # set when a .br/.gz sibling may be sent

    def __call__(self, environ: dict, start_response: Callable) -> object:
        path, encoding = self.path, None
        if self.gzip is not None:
            path, encoding = _encoded(path, environ.get("HTTP_ACCEPT_ENCODING", ""))
        try:
            fh = open(path, "rb")
        except OSError:
            return _forbidden(environ, start_response)
        st = os.fstat(fh.fileno())
        size = st.st_size
        mtime = int(st.st_mtime)
        # lazily: a worker loads mimetypes (which reads the system's tables) and the
        # email package for dates only once it serves a file; most sites never do
        import mimetypes
        from email.utils import formatdate

        ctype = mimetypes.guess_type(self.path)[0] or "application/octet-stream"
        headers = [("Content-Type", ctype), ("Last-Modified", formatdate(mtime, usegmt=True))]
        if self.gzip is not None:
            headers.append(("Vary", "Accept-Encoding"))
            if encoding:
                headers.append(("Content-Encoding", encoding))
        since = _http_date(environ.get("HTTP_IF_MODIFIED_SINCE"))
        if since is not None and mtime <= since:
            fh.close()
            start_response("304 Not Modified", headers[1:])
            return []
        headers.append(("Accept-Ranges", "bytes"))
        status = "200 OK"
        start, length = 0, size
        wanted = _single_range(environ.get("HTTP_RANGE"), size)
        if wanted == "unsatisfiable":
            fh.close()
            start_response(
                "416 Range Not Satisfiable",
                [("Content-Range", f"bytes */{size}"), ("Content-Length", "0")],
            )
            return []
        if wanted is not None:
            start, end = wanted
            length = end - start + 1
            status = "206 Partial Content"
            headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
            fh.seek(start)
        headers.append(("Content-Length", str(length)))
        start_response(status, headers)
        return FileWrapper(fh)


def _encoded(path: str, accept: str) -> tuple[str, str | None]:
    """The ``.br`` or ``.gz`` sibling the client accepts and that exists (uWSGI
    prefers br), else the file itself."""
    if not accept:
        return path, None
    for token, suffix in (("br", ".br"), ("gzip", ".gz")):
        if _accepts(accept, token):
            candidate = path + suffix
            try:
                if stat.S_ISREG(os.stat(candidate).st_mode):
                    return candidate, token
            except OSError:
                continue
    return path, None


def _accepts(accept: str, token: str) -> bool:
    """``token`` listed in Accept-Encoding without ``q=0``."""
    for item in accept.split(","):
        name, _, params = item.partition(";")
        if name.strip().lower() == token:
            q = params.replace(" ", "").lower()
            return not (q.startswith("q=0") and q.strip("q=0.") == "")
    return False


def _http_date(value: str | None) -> int | None:
    if not value:
        return None
    from email.utils import parsedate_to_datetime  # lazily: see _FileApp (only files)

    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _single_range(value: str | None, size: int) -> tuple[int, int] | str | None:
    """(first, last) byte of a single ``bytes=`` range; None to send the whole file
    (no header, several ranges, or one we do not understand), or "unsatisfiable"."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first, sep, last = value[6:].strip().partition("-")
    if not sep:
        return None
    try:
        if first == "":  # the last N bytes
            n = int(last)
            if n <= 0:
                return "unsatisfiable"
            return (max(size - n, 0), size - 1) if size else "unsatisfiable"
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        return "unsatisfiable"
    if start < 0 or end < start:
        return None
    return start, min(end, size - 1)
