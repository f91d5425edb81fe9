"""The benchmark's ASGI app: the same bytes as ``hello.py`` from every ASGI server.

``GET`` anything answers ``200 OK`` with ``Hello, World!`` and an explicit
``content-length`` (so every server keeps the connection alive); the lifespan
scope is acknowledged.
"""

from __future__ import annotations

BODY = b"Hello, World!"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())],
}
RESPONSE = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send) -> None:
    """Answer every request with ``Hello, World!``."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].replace("lifespan.", "")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await send(START)
    await send(RESPONSE)
