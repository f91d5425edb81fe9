"""The threads rows' app: ``Hello, World!`` streamed in two pieces, at once on
``/`` and after 50 ms of sleep (an I/O wait that releases the GIL) on ``/sleep``.

The body is a generator, so the server writes each piece as the app yields it
(a streamed response, not a collected one); ``Content-Length`` is set, so the
framing is the same as ``hello.py``'s.
"""

import time

PIECES = (b"Hello, ", b"World!")
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(sum(map(len, PIECES))))]
SLEEP = 0.05  # seconds per request on /sleep


def body():
    yield from PIECES


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/sleep":
        time.sleep(SLEEP)  # the app's own wait, as for a query or an HTTP call
    start_response("200 OK", HEADERS)
    return body()
