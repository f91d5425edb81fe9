"""Every reload kind with an ASGI app under a mixed HTTP + WebSocket load:
SIGHUP, touch-reload, touch-chain-reload, py-autoreload, and an emperor's touch
of its vassal. Zero failed requests; a request in flight across the reload is
answered; every WebSocket open on an old worker is kept until the mercy ends
and then closed by the server with 1001 (none dropped without a close frame);
new WebSockets open and echo throughout; the new code serves afterwards."""

from __future__ import annotations

import os
import signal
import threading
import time

from support import Load, free_port, http_get, wait_for
from support.wsclient import WsLoad

MERCY = 4  # worker-reload-mercy: an old worker keeps its WebSockets this long,
# less the last second (the clients' close answers, then the lifespan shutdown)
KEPT = MERCY - 1.0

APP = """
import asyncio
VERSION = {version!r}

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({{"type": "lifespan.startup.complete"}})
        await send({{"type": "lifespan.shutdown.complete"}})
        return
    if scope["type"] == "websocket":
        await receive()
        await send({{"type": "websocket.accept"}})
        while (msg := await receive())["type"] != "websocket.disconnect":
            await send({{"type": "websocket.send", "text": msg.get("text") or ""}})
        return
    if scope["path"] == "/sleep":
        await asyncio.sleep(1.5)
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": VERSION.encode()}})
"""


def write_app(directory, version: str) -> None:
    tmp = directory / ".asgiver.tmp"
    tmp.write_text(APP.format(version=version))
    os.replace(tmp, directory / "asgiver.py")
    pycache = directory / "__pycache__"
    if pycache.exists():
        for f in pycache.iterdir():
            f.unlink()


def body(port: int) -> str:
    return http_get(port, "/")[2].decode()


def site_ini(tmp_path, port: int, extra: str, lazy: bool) -> str:
    return (
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nchdir = {tmp_path}\nasgi = asgiver:app\n"
        f"processes = 2\nmaster = true\ndisable-logging = true\nworker-reload-mercy = {MERCY}\n"
        f"{'lazy-apps = true' if lazy else ''}\n{extra}\n"
    )


def reload_under_load(server, port: int, tmp_path, fire, version: str = "2") -> None:
    slow = []
    with (
        Load(port, accept=lambda status, b: status == 200 and b.isdigit()) as load,
        WsLoad(port) as wsload,
    ):
        old = server.worker_pids()
        t = threading.Thread(target=lambda: slow.append(http_get(port, "/sleep", timeout=20)))
        t.start()
        time.sleep(0.3)  # the slow request is in flight before the reload starts
        write_app(tmp_path, version)
        fired = time.monotonic()
        fire()
        wait_for(lambda: body(port) == version, 30, what=f"version {version}")
        wait_for(lambda: not set(old) & set(server.worker_pids()), 30, what="old workers gone")
        t.join(20)
        load.more(50)
        wsload.more(20)
    full = getattr(server, "log", "")  # (the emperor's vassal: its log is not ours to read)
    log = full[-6000:]
    assert "Traceback" not in full, full[-6000:]
    assert load.failures == [], (load.failures[:5], log)
    assert [r[0] for r in slow] == [200]
    assert wsload.failures == [], (wsload.failures[:5], log)
    # every WebSocket open when the reload began was on an old worker: kept until
    # that worker's mercy ended (it began after the reload did), then 1001
    held = [c for c in wsload.closes if c[1] < fired]
    assert len(held) >= 4, (wsload.closes, log)
    for code, _, closed in held:
        assert code == 1001 and closed - fired >= KEPT - 0.1, (code, closed - fired)
    assert all(code == 1001 for code, _, _ in wsload.closes), wsload.closes
    assert wsload.kept >= 4  # the new workers' WebSockets stayed open to the end


def test_sighup_touch_and_chain_reloads_under_load_drop_nothing(procmaster, tmp_path):
    """One site, three reloads in turn: SIGHUP, touch-reload, touch-chain-reload."""
    touch, chain = tmp_path / "touch.txt", tmp_path / "chain.txt"
    port = free_port()
    write_app(tmp_path, "1")
    ini = tmp_path / "site.ini"
    extra = f"touch-reload = {touch}\ntouch-chain-reload = {chain}"
    ini.write_text(site_ini(tmp_path, port, extra, lazy=True))
    server = procmaster("--ini", ini, wait_port=port)
    assert body(port) == "1"
    fires = [
        lambda: server.signal(signal.SIGHUP),
        lambda: touch.write_text("x"),
        lambda: chain.write_text("x"),
    ]
    for version, fire in enumerate(fires, start=2):
        reload_under_load(server, port, tmp_path, fire, str(version))


def test_py_autoreload_under_load_drops_nothing(procmaster, tmp_path):
    port = free_port()
    write_app(tmp_path, "1")
    ini = tmp_path / "site.ini"
    ini.write_text(site_ini(tmp_path, port, "py-autoreload = 1", lazy=True))
    server = procmaster("--ini", ini, wait_port=port)
    assert body(port) == "1"
    time.sleep(1.2)  # the workers report their modules once a second
    reload_under_load(server, port, tmp_path, lambda: None)


def test_emperor_touch_reloads_an_asgi_vassal_under_load(procmaster, tmp_path):
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    port = free_port()
    write_app(tmp_path, "1")
    vassal = vassals / "site.ini"
    vassal.write_text(site_ini(tmp_path, port, "", lazy=True))
    emperor = procmaster("--emperor", vassals, wait_port=port, timeout=30)

    class Vassal:  # the vassal's master, as the load test sees a server
        def worker_pids(self):
            pids = []
            for master in _children(emperor.pid):
                pids += _children(master)
            return sorted(pids)

    def fire():
        os.utime(vassal)

    reload_under_load(Vassal(), port, tmp_path, fire)


def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []
