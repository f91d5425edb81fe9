"""The benchmark's WSGI app: the same bytes from every server.

``GET`` anything answers ``200 OK`` with ``Hello, World!`` and an explicit
``Content-Length``, so every server can keep the connection alive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Answer every request with ``Hello, World!``."""
    start_response("200 OK", list(HEADERS))
    return [BODY]
