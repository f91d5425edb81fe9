"""The WSGI app the end-to-end tests run, wrapped in ``wsgiref.validate`` so any
PEP 3333 slip of the server fails the test that caused it.

Routes (PATH_INFO):
  /            "Hello, World!" with Content-Length
  /version     the VERSION env var or module constant (reload tests change it)
  /echo        the request body back (read in one go)
  /echo-lines  the body back, read with readline() until b""
  /echo-iter   the body back, read by iterating wsgi.input
  /env         a JSON dump of the CGI part of the environ
  /osenv       a JSON dump of the process environment (``env =`` options)
  /stream?n=N  N chunks from a generator, no Content-Length (chunked on HTTP/1.1)
  /big?mb=N    N MiB of b"x", from a generator, with Content-Length
  /cookies?n=N N Set-Cookie headers
  /write       uses the legacy write() callable
  /file?path=  wsgi.file_wrapper over a file
  /error       raises before start_response
  /error-late  raises after the first chunk was sent
  /sleep?s=N   sleeps N seconds, then answers
  /pid         the worker pid
  /close-log?path=  a generator whose close() appends a line to a file
  /path/...    the PATH_INFO it got, as a JSON string (how the path was decoded)
"""

import json
import os
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator

VERSION = os.environ.get("APP_VERSION", "1")


def _qs(environ):
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _text(start_response, body, status="200 OK", headers=()):
    start_response(
        status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), *headers]
    )
    return [body]


class ClosingIterable:
    def __init__(self, chunks, path):
        self.chunks = chunks
        self.path = path

    def __iter__(self):
        yield from self.chunks

    def close(self):
        with open(self.path, "a") as fh:
            fh.write("closed\n")


def raw_app(environ, start_response):
    path = environ["PATH_INFO"]
    q = _qs(environ)
    if path == "/":
        return _text(start_response, b"Hello, World!")
    if path == "/version":
        return _text(start_response, VERSION.encode())
    if path == "/pid":
        return _text(start_response, str(os.getpid()).encode())
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length if environ.get("CONTENT_LENGTH") else -1)
        return _text(start_response, body)
    if path == "/echo-lines":
        out = []
        while True:
            line = environ["wsgi.input"].readline()
            if not line:
                break
            out.append(line)
        return _text(start_response, b"".join(out))
    if path == "/echo-iter":
        return _text(start_response, b"".join(environ["wsgi.input"]))
    if path == "/env":
        data = {k: v for k, v in environ.items() if isinstance(v, str)}
        data["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
        data["wsgi.multiprocess"] = environ["wsgi.multiprocess"]
        data["wsgi.multithread"] = environ["wsgi.multithread"]
        return _text(start_response, json.dumps(data).encode())
    if path == "/osenv":
        return _text(start_response, json.dumps(dict(os.environ)).encode())
    if path == "/stream":
        n = int(q.get("n", "5"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"chunk {i}\n".encode() for i in range(n))
    if path == "/big":
        mb = int(q.get("mb", "1"))
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(mb << 20))],
        )
        block = b"x" * (1 << 20)
        return (block for _ in range(mb))
    if path == "/cookies":
        n = int(q.get("n", "30"))
        start_response(
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", "2")]
            + [("Set-Cookie", f"c{i}=v{i}; Path=/") for i in range(n)],
        )
        return [b"ok"]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        write(b"then ")
        return [b"returned"]
    if path == "/file":
        fh = open(q["path"], "rb")
        size = os.fstat(fh.fileno()).st_size
        start_response(
            "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
        )
        return environ["wsgi.file_wrapper"](fh, 65536)
    if path == "/error":
        raise RuntimeError("boom (this traceback is expected in the test log)")
    if path == "/error-late":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first"
            raise RuntimeError("late boom (expected)")

        return gen()
    if path == "/sleep":
        environ["wsgi.errors"].write(f"sleeping {q.get('s', '1')}s\n")
        environ["wsgi.errors"].flush()
        time.sleep(float(q.get("s", "1")))
        return _text(start_response, b"slept")
    if path == "/close-log":
        start_response("200 OK", [("Content-Type", "text/plain")])
        n = int(q.get("n", "3"))
        return ClosingIterable([b"x" * 65536 for _ in range(n)], q["path"])
    if path == "/head":
        return _text(start_response, b"body that HEAD must not send")
    if path.startswith("/path/"):
        return _text(start_response, json.dumps(path).encode())
    return _text(start_response, b"not found", "404 Not Found")


def application(environ, start_response):
    # errors are on purpose; the others use only what PEP 3333 allows
    if environ["PATH_INFO"] in ("/error", "/error-late", "/close-log", "/big", "/file"):
        return raw_app(environ, start_response)
    return validator(raw_app)(environ, start_response)


def make_app():
    """Factory form: ``module = testapp:make_app()``."""
    return application
