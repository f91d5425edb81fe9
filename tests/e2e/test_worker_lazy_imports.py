"""A real worker of a plain site (HTTP socket, a WSGI app, master, no other
option) has loaded none of the modules that only other options need (the list:
``support.lazy.LAZY``). The app answers with its worker's
``sys.modules``; the worker was forked from the master after its start-up, so
the master's imports are in the list too."""

from __future__ import annotations

from support import APPS, free_port, http_get
from support.lazy import LAZY


def test_a_plain_sites_worker_loads_only_what_the_site_uses(procmaster):
    port = free_port()
    procmaster(
        "--http-socket", f"127.0.0.1:{port}", "--master", "--processes", "1",
        "--module", "modules_app:application", "--disable-logging",
        cwd=APPS, wait_port=port,
    )  # fmt: skip
    status, _, body = http_get(port)
    assert status == 200
    loaded = set(body.decode().split("\n"))
    assert "procmaster.worker.loop" in loaded and "modules_app" in loaded
    wrong = {m: why for m, why in LAZY.items() if m in loaded}
    assert not wrong, f"loaded by a plain site's worker (lazy: only with these options): {wrong}"
