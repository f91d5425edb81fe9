"""Real ASGI apps under procmaster, with httpx as the client: FastAPI (JSON,
a streaming response, a background task), Starlette with lifespan state,
Django's ASGI handler."""

from __future__ import annotations

import os

import pytest
from support import free_port, raw_request, wait_for

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def fastapi_site(tmp_path_factory):
    from test_asgi import _start

    tmp = tmp_path_factory.mktemp("fastapi")
    port = free_port()
    marker = tmp / "tasks"
    server = _start(
        tmp, "--http-socket", f"127.0.0.1:{port}", "--asgi", "asgi_fastapi:app",
        "--master", "--processes", "2", env={"ASGI_TASK_MARKER": str(marker)}, wait_port=port,
    )  # fmt: skip
    try:
        yield server, port, marker
    finally:
        server.kill_all()


def test_fastapi_json(fastapi_site):
    _, port, _ = fastapi_site
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        r = client.get("/items/42", params={"q": "x y"})
        assert r.status_code == 200 and r.json()["item_id"] == 42 and r.json()["q"] == "x y"
        r = client.post("/items", json={"a": 1, "b": [1, 2]})
        assert r.json() == {"received": {"a": 1, "b": [1, 2]}, "size": 2}
        r = client.get("/items/not-a-number")
        assert r.status_code == 422
        assert client.get("/nowhere").status_code == 404


def test_fastapi_streaming_and_background_task(fastapi_site):
    _, port, marker = fastapi_site
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        with client.stream("GET", "/stream", params={"n": 20}) as r:
            lines = [line for line in r.iter_lines() if line]
        assert r.headers.get("transfer-encoding") == "chunked"
        assert lines == [f"part {i}" for i in range(20)]
        r = client.post("/task/tok-123")
        assert r.json() == {"queued": "tok-123"}
    wait_for(
        lambda: marker.exists() and "tok-123" in marker.read_text(), 10, what="the background task"
    )


def test_fastapi_sync_endpoint_and_background_task_on_new_connections(fastapi_site):
    """A connection per request, its request sent at once (as nginx does): the
    worker mostly finds the request at accept and runs the app's first step
    there, where a sync endpoint and a background task (both run in a thread
    by anyio) still find the request's task."""
    _, port, marker = fastapi_site
    for i in range(30):
        reply = raw_request(
            port, b"GET /sync/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i
        )
        assert reply.startswith(b"HTTP/1.1 200"), reply[:300]
        assert reply.endswith(b'{"item_id":%d,"sync":true}' % i), reply[-200:]
    for i in range(10):
        post = b"POST /task/new-%d HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n" % i
        assert raw_request(port, post + b"Connection: close\r\n\r\n").startswith(b"HTTP/1.1 200")
    wait_for(
        lambda: marker.exists() and all(f"new-{i}" in marker.read_text() for i in range(10)),
        20,
        what="the ten background tasks",
    )


def test_fastapi_concurrency_in_one_worker(fastapi_site):
    """Many slow requests at once: two workers answer 20 requests of 1 s in
    far less than 20 × 1 / 2 s (each worker runs them concurrently)."""
    import asyncio
    import time

    _, port, _ = fastapi_site

    async def many() -> list[int]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            rs = await asyncio.gather(*(client.get("/sleep", params={"s": 1.0}) for _ in range(20)))
        return [r.status_code for r in rs]

    t0 = time.monotonic()
    assert asyncio.run(many()) == [200] * 20
    assert time.monotonic() - t0 < 6.0


def test_starlette_lifespan_state(tmp_path):
    from test_asgi import _start

    port = free_port()
    server = _start(
        tmp_path, "--http-socket", f"127.0.0.1:{port}", "--asgi", "asgi_fastapi:starlette_app",
        "--master", "--processes", "1", wait_port=port,
    )  # fmt: skip
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert r.json() == {"greeting": "hello from lifespan", "pid": server.worker_pids()[0]}
        assert httpx.get(f"http://127.0.0.1:{port}/plain", timeout=10).text == "plain"
    finally:
        server.kill_all()


def test_django_asgi_handler(tmp_path):
    from test_asgi import _start

    pytest.importorskip("django")
    port = free_port()
    apps = os.path.join(os.path.dirname(__file__), "..", "apps", "djsite")
    server = _start(
        tmp_path, "--http-socket", f"127.0.0.1:{port}", "--asgi", "djsite.asgi:application",
        "--pythonpath", apps, "--master", "--processes", "1", wait_port=port,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/", timeout=10).text == "Hello from Django!\n"
        info = httpx.get(base + "/info", params={"a": "1"}, timeout=10).json()
        assert info["path"] == "/info" and info["query"] == {"a": "1"}
        body = os.urandom(100_000)
        assert httpx.post(base + "/echo", content=body, timeout=10).content == body
        assert httpx.get(base + "/stream", timeout=10).text == "part 0\npart 1\npart 2\n"
    finally:
        server.kill_all()
