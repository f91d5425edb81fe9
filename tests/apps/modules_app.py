"""A hello app that answers with the names of the modules its worker has loaded,
one per line (for the test that a plain site loads nothing it does not use)."""

import sys


def application(environ, start_response):
    body = "\n".join(sorted(sys.modules)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
