"""An ASGI app for the read at accept (``worker/asgi_accept.py``): a loop
blocked on purpose (``/block?S``) so that the next connections wait in the
listen queue with their requests already sent, and endpoints whose first step
does more than answer: a large answer, a long synchronous stream, a context
variable and a wait, a thread through anyio (which needs the request's task), a
wait that never ends."""

from __future__ import annotations

import asyncio
import contextvars
import time

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("request_var")
CHUNK = b"x" * (256 * 1024)
STREAM_CHUNKS = 128
BIG = 16 * 1024 * 1024
PROGRESS = {"chunks": 0}


async def answer(send, body: bytes, status: int = 200) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].replace("lifespan.", "")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    path = scope["path"]
    if path == "/block":  # blocks the loop itself
        time.sleep(float(scope["query_string"] or 1))
        await answer(send, b"blocked")
    elif path == "/big":  # one send, far more than a socket takes at once
        await answer(send, b"b" * BIG)
    elif path == "/stream":  # sends and sends; only send() itself may make it wait
        PROGRESS["chunks"] = 0
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(STREAM_CHUNKS):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
            PROGRESS["chunks"] = i + 1
        await send({"type": "http.response.body", "body": b""})
    elif path == "/progress":
        await answer(send, str(PROGRESS["chunks"]).encode())
    elif path == "/ctx":  # what an earlier request left in the context, after a wait
        before = VAR.get("unset")
        VAR.set("set by an earlier request")
        await asyncio.sleep(0.05)
        await answer(send, f"{before} {VAR.get()}".encode())
    elif path == "/in-task":  # as anyio does for a thread (FastAPI's sync endpoints)
        import anyio

        task = asyncio.current_task()
        got = await anyio.to_thread.run_sync(lambda: "from a thread")
        await answer(send, f"{task is not None and task is asyncio.current_task()} {got}".encode())
    elif path == "/forever":
        await asyncio.Event().wait()
    else:
        await answer(send, b"Hello, World!")
