"""A FastAPI app (JSON, a streaming response, a background task) and a
Starlette app whose lifespan fills ``state``, for the ASGI end-to-end tests."""

import asyncio
import contextlib
import os

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

app = FastAPI()
DONE = os.environ.get("ASGI_TASK_MARKER", "/nonexistent")


@app.get("/items/{item_id}")
async def item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q, "pid": os.getpid()}


@app.post("/items")
async def create(payload: dict):
    return {"received": payload, "size": len(payload)}


@app.get("/stream")
async def stream(n: int = 5):
    async def parts():
        for i in range(n):
            await asyncio.sleep(0.01)
            yield f"part {i}\n"

    return StreamingResponse(parts(), media_type="text/plain")


def write_marker(value: str) -> None:
    with open(DONE, "a") as fh:
        fh.write(value + "\n")


@app.get("/sync/{item_id}")
def sync_item(item_id: int):  # a sync endpoint: FastAPI runs it in a thread (anyio)
    return {"item_id": item_id, "sync": True}


@app.post("/task/{value}")
async def task(value: str, background: BackgroundTasks):
    background.add_task(write_marker, value)
    return {"queued": value}


@app.get("/sleep")
async def sleep(s: float = 0.2):
    await asyncio.sleep(s)
    return {"slept": s}


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hello from lifespan", "pid": os.getpid()}


async def home(request: Request):
    return JSONResponse({"greeting": request.state.greeting, "pid": request.state.pid})


async def plain(request: Request):
    return PlainTextResponse("plain")


starlette_app = Starlette(routes=[Route("/", home), Route("/plain", plain)], lifespan=lifespan)
