"""The app of the hostile-wire tests (tests/e2e/test_wire.py).

/pid            the worker's pid
/echo?NAME=V    answers with the header NAME: V (both percent-decoded): an app
                that reflects request data into its head, as real apps do
/status?S       answers with the status line S (percent-decoded)
/count          reads the whole body, answers its size and the worker's pid
anything else   METHOD PATH_INFO QUERY_STRING, one per line
"""

from __future__ import annotations

import os
from urllib.parse import unquote


def application(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    headers = [("Content-Type", "text/plain")]
    status = "200 OK"
    if path == "/pid":
        body = str(os.getpid()).encode()
    elif path == "/echo":
        name, _, value = query.partition("=")
        headers.append((unquote(name), unquote(value)))
        body = b"echoed"
    elif path == "/status":
        status = unquote(query)
        body = b"status"
    elif path == "/count":
        data = environ["wsgi.input"].read()
        body = f"{len(data)} {os.getpid()}".encode()
    else:
        text = f"{environ['REQUEST_METHOD']}\n{path}\n{query}\n"
        body = text.encode("latin-1")
    start_response(status, headers)
    return [body]
