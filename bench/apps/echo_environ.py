"""The HTTP corpus' app (bench/http_corpus.py): what the parser gave the app.

Answers ``200 OK`` with a JSON object: the request's CGI variables (every
``str`` value of the environ whose name is upper case) and the body read whole
(latin-1), so the corpus script compares the method, target, version, headers
and body with gunicorn's expectations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable


def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Echo the CGI variables and the body as JSON."""
    cgi = {k: v for k, v in environ.items() if k.isupper() and type(v) is str}
    cgi["body"] = environ["wsgi.input"].read().decode("latin-1")
    body = json.dumps(cgi).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
