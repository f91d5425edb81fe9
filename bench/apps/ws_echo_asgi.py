"""WebSocket echo as an ASGI app (procmaster's ASGI worker and uvicorn run the
same file): ``/ws`` echoes each message back as binary; anything else over
HTTP answers ``ok``."""


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"].replace("lifespan.", "")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] == "http":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes") or (message.get("text") or "").encode()
        await send({"type": "websocket.send", "bytes": data})
