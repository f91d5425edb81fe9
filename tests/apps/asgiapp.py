"""ASGI test apps: a raw ASGI 3 app for the worker's own tests."""

import asyncio
import json
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                if os.environ.get("ASGI_FAIL_STARTUP"):
                    await send(
                        {"type": "lifespan.startup.failed", "message": "database unreachable"}
                    )
                    return
                scope["state"]["started_pid"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                marker = os.environ.get("ASGI_SHUTDOWN_MARKER")
                if marker:
                    with open(marker, "a") as fh:
                        fh.write(f"{os.getpid()}\n")
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    path = scope["path"]
    if scope["root_path"] and path.startswith(scope["root_path"]):
        path = path[len(scope["root_path"]) :]  # ASGI: path includes root_path
    if path == "/echo":
        chunks = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/scope":
        info = {
            k: v
            for k, v in scope.items()
            if k in ("method", "path", "root_path", "http_version", "scheme")
        }
        info["query_string"] = scope["query_string"].decode()
        info["headers"] = {k.decode(): v.decode() for k, v in scope["headers"]}
        info["client"] = list(scope["client"] or ())
        info["state_pid"] = scope["state"].get("started_pid")
        info["pid"] = os.getpid()
        body = json.dumps(info).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/sleep":
        await asyncio.sleep(float(scope["query_string"] or 1))
    elif path == "/block":
        import time

        time.sleep(float(scope["query_string"] or 1))
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(int(scope["query_string"] or 3)):
            await send({"type": "http.response.body", "body": b"chunk %d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    elif path == "/raise":
        raise RuntimeError("boom from the app")
    elif path == "/disconnect":
        msg = await receive()
        while msg["type"] != "http.disconnect":
            msg = await receive()
        marker = os.environ.get("ASGI_SHUTDOWN_MARKER")
        if marker:
            with open(marker + ".disc", "a") as fh:
                fh.write("disconnect\n")
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, ASGI\n"})


def wsgi_app(environ, start_response):
    start_response("200 OK", [])
    return [b"wsgi"]


ROOM: set = set()  # the broadcast room of this worker


async def ws_app(scope, receive, send):
    """WebSockets: /echo echoes, /room broadcasts to every member, /deny refuses."""
    if scope["type"] != "websocket":
        return await app(scope, receive, send)
    assert (await receive())["type"] == "websocket.connect"
    if scope["path"] == "/deny":
        await send({"type": "websocket.close"})
        return
    if scope["path"].startswith("/refuse/"):
        return await refuse(scope, send)
    await send({"type": "websocket.accept", "subprotocol": (scope["subprotocols"] or [None])[0]})
    if scope["path"] == "/room":
        ROOM.add(send)
        try:
            while True:
                msg = await receive()
                if msg["type"] == "websocket.disconnect":
                    return
                for member in list(ROOM):
                    await member({"type": "websocket.send", "text": msg.get("text") or ""})
        finally:
            ROOM.discard(send)
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("text") == "scope":
            info = {"scheme": scope["scheme"], "path": scope["path"], "sub": scope["subprotocols"]}
            await send({"type": "websocket.send", "text": json.dumps(info)})
        elif "text" in msg:
            await send({"type": "websocket.send", "text": msg["text"]})
        else:
            await send({"type": "websocket.send", "bytes": msg["bytes"]})


# /refuse/<name>: the websocket.http.response extension, good and hostile
REFUSALS = {
    "teapot": (418, [(b"content-type", b"text/plain"), (b"x-why", b"no tea")]),
    "status-101": (101, []),
    "status-text": ("404", []),
    "status-big": (1000, []),
    "crlf": (401, [(b"x-a", b"1\r\nSet-Cookie: evil=1")]),
    "lf-name": (401, [(b"x-a\nx-b", b"1")]),
    "nul": (401, [(b"x-a", b"a\x00b")]),
    "not-bytes": (401, [("x-a", "1")]),
    "not-pairs": (401, [(b"x-a",)]),
}


async def refuse(scope, send):
    name = scope["path"][len("/refuse/") :]
    if name == "after-accept":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        return
    if name == "close-after-start":
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        await send({"type": "websocket.close"})
        return
    if name == "body-first":
        await send({"type": "websocket.http.response.body", "body": b"x"})
        return
    if name == "body-text":
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        await send({"type": "websocket.http.response.body", "body": "text"})
        return
    status, headers = REFUSALS[name]
    assert scope["extensions"] == {"websocket.http.response": {}}
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": b"short and ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"stout\n"})
