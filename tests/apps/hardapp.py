"""The app of the hardening tests: testapp's routes plus a few for big bodies.

Routes (PATH_INFO), besides testapp's:
  /count   reads wsgi.input in 64 KiB blocks and answers the number of bytes read
  /ignore  reads nothing of the body and answers "ignored"
  /hog?s=S answers, then (0.2 s later, from a timer thread) opens files until
           the descriptors run out, logs "hogged N descriptors", and closes
           them S seconds later
"""

import os
import sys
import threading
from urllib.parse import parse_qs

from testapp import application as _testapp

_hogged: list[int] = []


def _hog(seconds: float) -> None:
    """From a timer thread, after the answer went out: take every descriptor,
    say so on stderr, give them back ``seconds`` later."""
    while True:
        try:
            _hogged.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            break
    sys.stderr.write(f"hogged {len(_hogged)} descriptors\n")
    sys.stderr.flush()

    def free():
        while _hogged:
            os.close(_hogged.pop())

    threading.Timer(seconds, free).start()


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/count":
        stream = environ["wsgi.input"]
        total = 0
        while True:
            block = stream.read(65536)
            if not block:
                break
            total += len(block)
        body = str(total).encode()
    elif path == "/ignore":
        body = b"ignored"
    elif path == "/hog":
        seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("s", ["1"])[0])
        threading.Timer(0.2, _hog, (seconds,)).start()
        body = b"hogging"
    else:
        return _testapp(environ, start_response)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
