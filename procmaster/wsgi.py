"""PEP 3333: the environ around a request's CGI variables, ``start_response`` and
its ``write()``, ``wsgi.input``, ``wsgi.file_wrapper``.

Theory of operation
-------------------
A protocol hands over the CGI variables of a request as a dict; ``complete_environ``
adds the ``wsgi.*`` keys to that same dict (one ``dict.update`` of a per-worker
base, no copy) and the few values only a worker knows. ``Response`` is one
request's ``start_response``: it records status and headers, enforces the
``exc_info`` rules, and forwards the legacy ``write()`` to whatever writes bytes
(the worker's connection). ``Body`` stores a request body while it arrives:
in memory up to a threshold, then in an unnamed temporary file, so a large upload
never sits whole in memory; the app reads it through a plain file object, which
can never read past the body because it holds nothing else.

Rules: this module does not know which protocol carried the request, nor sockets.
"""

from __future__ import annotations

import io
import sys
import tempfile
from collections.abc import Callable, Iterable

__all__ = [
    "Body",
    "EMPTY_INPUT",
    "SPOOL_THRESHOLD",
    "FileWrapper",
    "Response",
    "base_environ",
    "close_iterable",
    "url_scheme",
]

# bodies larger than this go to a temporary file instead of memory
SPOOL_THRESHOLD = 1 << 20


class FileWrapper:
    """``wsgi.file_wrapper``: lets the worker send a file with ``os.sendfile``
    (when the response is not otherwise framed), and iterates in blocks otherwise."""

    __slots__ = ("filelike", "blksize", "close")

    def __init__(self, filelike, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def fileno(self) -> int | None:
        """The file descriptor to ``sendfile`` from, or None when there is none."""
        try:
            return self.filelike.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return None

    def __iter__(self):
        read = self.filelike.read
        size = self.blksize
        while True:
            data = read(size)
            if not data:
                return
            yield data


class _EmptyInput:
    """``wsgi.input`` of a request without a body; stateless, shared."""

    __slots__ = ()

    def read(self, size: int = -1) -> bytes:
        return b""

    def readline(self, size: int = -1) -> bytes:
        return b""

    def readlines(self, hint: int = -1) -> list[bytes]:
        return []

    def __iter__(self):
        return iter(())

    def close(self) -> None:
        pass


EMPTY_INPUT = _EmptyInput()


class Body:
    """A request body as it arrives; ``stream()`` gives the app's ``wsgi.input``."""

    __slots__ = ("buf", "file", "size", "threshold")

    def __init__(self, threshold: int = SPOOL_THRESHOLD) -> None:
        self.buf = bytearray()
        self.file = None
        self.size = 0
        self.threshold = threshold

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.file is not None:
            self.file.write(data)
            return
        self.buf += data
        if len(self.buf) > self.threshold:
            self.file = tempfile.TemporaryFile(prefix="procmaster-body-")
            self.file.write(self.buf)
            self.buf = bytearray()

    def finish(self) -> None:
        """The whole body arrived: what is still buffered goes to the spool file
        now, so a full disk raises ``OSError`` here, in the reader."""
        if self.file is not None:
            self.file.flush()

    def stream(self):
        """A file object positioned at the start of the body."""
        if self.file is not None:
            self.file.flush()
            self.file.seek(0)
            return self.file
        return io.BytesIO(self.buf)

    def close(self) -> None:
        file, self.file = self.file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass  # a full disk: what was still buffered goes with the file


def url_scheme(environ: dict) -> str:
    """``https`` when the proxy says so (HTTPS=on, REQUEST_SCHEME, UWSGI_SCHEME)."""
    https = environ.get("HTTPS")
    if https and https.lower() in ("on", "1", "yes", "true"):
        return "https"
    scheme = environ.get("UWSGI_SCHEME") or environ.get("REQUEST_SCHEME")
    if scheme in ("https", "http"):
        return scheme
    return "http"


def base_environ(*, multithread: bool, multiprocess: bool) -> dict:
    """The ``wsgi.*`` keys that are the same for every request of a worker."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.input_terminated": True,
    }


class Response:
    """One request's ``start_response`` (and the ``write`` it returns)."""

    __slots__ = ("status", "headers", "headers_sent", "writer")

    def __init__(self, writer: Callable[[Response, bytes], None]) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] | None = None
        self.headers_sent = False
        self.writer = writer

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info=None):
        if exc_info is not None:
            try:
                if self.headers_sent:
                    # PEP 3333: too late to change the response; re-raise
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called twice without exc_info")
        if type(status) is not str or len(status) < 4 or status[3:4] != " ":
            raise ValueError(f"WSGI status must be a str like '200 OK', got {status!r}")
        if type(headers) is not list:
            raise TypeError(f"WSGI headers must be a list of (name, value), got {type(headers)}")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy imperative body writer of PEP 3333."""
        if self.status is None:
            raise AssertionError("write() before start_response()")
        if type(data) is not bytes:
            raise TypeError(f"write() takes bytes, got {type(data).__name__}")
        self.writer(self, data)


def close_iterable(result: Iterable) -> None:
    """Call ``close()`` of an app's iterable if it has one (PEP 3333: always)."""
    close = getattr(result, "close", None)
    if close is not None:
        close()
