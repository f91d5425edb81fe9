"""The ASGI ``lifespan`` scope of one worker: startup before it accepts,
shutdown when it stops.

Theory of operation
-------------------
``Lifespan.startup`` starts the app's lifespan task (scope ``lifespan`` with
the worker's ``state`` dict, which each request's scope then carries a shallow
copy of) and waits for ``lifespan.startup.complete`` or ``...failed``. An app
that raises before it took a message does not speak lifespan (ASGI says the
server then goes on without it), nor does one that returns before it answered
the startup (as uvicorn takes it): that is logged once and the
worker serves.
``startup.failed`` (or an exception after the startup message was taken) is
a failure: ``startup`` returns the app's message and the worker exits, so the
master respawns it with its crash back-off. ``shutdown`` sends
``lifespan.shutdown`` and waits for the answer up to a deadline (the worker's
``worker-reload-mercy``), then cancels the task.

Must not know: connections, protocols, the master.
"""

from __future__ import annotations

import asyncio
import traceback

from ..logs import log
from .asgi_scope import ASGI_VERSION

__all__ = ["Lifespan"]


class Lifespan:
    """The lifespan protocol with one app, on the worker's loop."""

    def __init__(self, app, loop: asyncio.AbstractEventLoop, state: dict, who: str) -> None:
        self.app = app
        self.loop = loop
        self.state = state
        self.who = who
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.started = loop.create_future()
        self.stopped = loop.create_future()
        self.supported = True
        self.received = 0  # messages the app took (0: it never asked)
        self.task: asyncio.Task | None = None

    async def receive(self) -> dict:
        self.received += 1
        return await self.inbox.get()

    async def send(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            _settle(self.started, None)
        elif kind == "lifespan.startup.failed":
            _settle(self.started, message.get("message") or "lifespan.startup.failed")
        elif kind == "lifespan.shutdown.complete":
            _settle(self.stopped, None)
        elif kind == "lifespan.shutdown.failed":
            _settle(self.stopped, message.get("message") or "lifespan.shutdown.failed")
        else:
            raise RuntimeError(f"ASGI: unexpected message {kind!r} in the lifespan scope")

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        try:
            await self.app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self.started.done() and self.received == 0:
                self._without(f"{type(exc).__name__}: {exc}")
                return
            why = traceback.format_exc().rstrip()
            _settle(self.started, why)
            _settle(self.stopped, why)
            return
        if not self.started.done():
            # (``if scope["type"] != "http": return``: common, and served by the field)
            self._without("it returned without answering lifespan.startup")
        _settle(self.stopped, None)

    def _without(self, why: str) -> None:
        self.supported = False
        log(
            f"{self.who}: the app does not support the ASGI lifespan scope ({why}); serving without it"
        )
        _settle(self.started, None)

    async def startup(self) -> str | None:
        """Run the startup; None when the worker may serve, else why not."""
        self.task = self.loop.create_task(self._main())
        await self.inbox.put({"type": "lifespan.startup"})
        return await self.started

    async def shutdown(self, timeout: float) -> None:
        """Ask the app to shut down; wait up to ``timeout`` seconds."""
        if not self.supported or self.task is None:
            return
        if self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            why = await asyncio.wait_for(asyncio.shield(self.stopped), max(timeout, 0.1))
        except asyncio.TimeoutError:
            log(f"{self.who}: the app's lifespan shutdown did not finish within {timeout:.1f}s")
            self.task.cancel()
            return
        if why:
            log(f"{self.who}: the app's lifespan shutdown failed: {why}")


def _settle(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)
