"""The fault benchmarks' WSGI app (``bench/faults.py``): a fast answer, and URLs
that fail the way real apps fail.

* ``GET /`` -- ``Hello, World!``
* ``GET /segv`` -- reads address 0 (``ctypes.string_at(0)``): the worker dies of SIGSEGV
* ``GET /hog`` -- allocates 16 MiB at a time and touches it, until something stops it
* ``POST /upload`` -- reads the body; answers its length
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable

BODY = b"Hello, World!"


def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/segv":
        ctypes.string_at(0)
    if path == "/hog":
        hoard = []
        while True:
            hoard.append(bytearray(16 << 20))  # zero pages are touched: real RSS
            hoard[-1][::4096] = b"x" * len(hoard[-1][::4096])
    if path == "/upload":
        stream = environ["wsgi.input"]
        total = 0
        while chunk := stream.read(65536):
            total += len(chunk)
        body = b"%d" % total
    else:
        body = BODY
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
