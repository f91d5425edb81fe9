"""The test app (``testapp``) plus one route for the nginx tests:

  /path/...    a JSON dump of PATH_INFO, SCRIPT_NAME and QUERY_STRING, for any
               path under /path/ (encoded and non-ASCII paths included)

Everything else is ``testapp.application``. Wrapped in ``wsgiref.validate``.
"""

import json
from wsgiref.validate import validator

import testapp


def _paths(environ, start_response):
    body = json.dumps(
        {k: environ.get(k) for k in ("PATH_INFO", "SCRIPT_NAME", "QUERY_STRING")}
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


_checked_paths = validator(_paths)


def application(environ, start_response):
    if environ["PATH_INFO"].startswith("/path/"):
        return _checked_paths(environ, start_response)
    return testapp.application(environ, start_response)
