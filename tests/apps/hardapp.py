"""The app of the hardening tests: testapp's routes plus a few for big bodies.

Routes (PATH_INFO), besides testapp's:
  /count   reads wsgi.input in 64 KiB blocks and answers the number of bytes read
  /ignore  reads nothing of the body and answers "ignored"
"""

from testapp import application as _testapp


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
    else:
        return _testapp(environ, start_response)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
