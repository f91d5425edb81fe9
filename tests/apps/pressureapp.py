"""A test app for back-pressure and bounded memory in the worker: big list
responses, generators, the legacy write(), wsgi.file_wrapper, a streaming
response whose second chunk waits for a marker file, and an upload sink."""

from __future__ import annotations

import os
import time
from urllib.parse import parse_qs

MiB = 1 << 20
CHUNK = b"z" * 65536


def _q(environ, name, default=""):
    return parse_qs(environ.get("QUERY_STRING", "")).get(name, [default])[0]


def application(environ, start_response):
    path = environ["PATH_INFO"]
    octets = [("Content-Type", "application/octet-stream")]
    if path == "/mb":  # a 1 MiB list
        start_response("200 OK", octets)
        return [b"m" * MiB]
    if path == "/gen":  # a generator of n x 64 KiB
        n = int(_q(environ, "n", "100"))
        start_response("200 OK", octets)
        return (CHUNK for _ in range(n))
    if path == "/write":  # the legacy write() of PEP 3333, n x 64 KiB
        n = int(_q(environ, "n", "100"))
        write = start_response("200 OK", octets)
        for _ in range(n):
            write(CHUNK)
        return []
    if path == "/file":  # wsgi.file_wrapper over a file named in the query
        fh = open(_q(environ, "path"), "rb")
        size = os.fstat(fh.fileno()).st_size
        start_response("200 OK", [*octets, ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](fh)
    if path == "/stream":  # one chunk, then the rest once the marker file exists
        marker = _q(environ, "marker")

        def body():
            yield b"first;"
            deadline = time.monotonic() + 20
            while not os.path.exists(marker):
                if time.monotonic() > deadline:
                    yield b"timeout"
                    return
                time.sleep(0.01)
            yield b"done"

        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()
    if path == "/upload":
        size = len(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(size).encode()]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
