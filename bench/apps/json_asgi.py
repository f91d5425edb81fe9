"""The benchmark's ASGI JSON app: ``{"message": "Hello, World!"}`` serialised
per request (as TechEmpower's JSON test asks) from every ASGI server.

``GET`` anything answers ``200 OK`` with ``application/json`` and an explicit
``content-length`` (so every server keeps the connection alive); the lifespan
scope is acknowledged.
"""

from __future__ import annotations

import json


async def app(scope, receive, send) -> None:
    """Answer every request with a freshly serialised JSON object."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].replace("lifespan.", "")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    body = json.dumps({"message": "Hello, World!"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
