"""Helpers for the bytes-only protocol tests: a Sink that records what a
sans-IO protocol reports, and checks the order of the events."""

from __future__ import annotations

import random
from itertools import pairwise

from procmaster.protocols.base import Request


class Recorder:
    """A Sink that records events and checks their order. ``summary()`` gives
    one dict per request; ``EXTRA`` names protocol-specific attributes to add."""

    EXTRA: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.reqs: list[Request] = []
        self.bodies: dict[int, list[bytes]] = {}
        self.ended: set[int] = set()

    def on_head(self, req: Request) -> None:
        assert id(req) not in self.bodies
        self.reqs.append(req)
        self.bodies[id(req)] = []
        self.events.append(("head", req))

    def on_body(self, req: Request, data: bytes) -> None:
        assert type(data) is bytes and data
        assert id(req) in self.bodies and id(req) not in self.ended
        self.bodies[id(req)].append(data)
        self.events.append(("body", req, len(data)))

    def on_end(self, req: Request) -> None:
        assert id(req) in self.bodies and id(req) not in self.ended
        self.ended.add(id(req))
        self.events.append(("end", req))

    def body(self, req: Request) -> bytes:
        return b"".join(self.bodies[id(req)])

    def summary(self) -> list[dict]:
        out = []
        for req in self.reqs:
            item = {
                "environ": dict(req.environ),
                "content_length": req.content_length,
                "head_only": req.head_only,
                "keep_alive": req.keep_alive,
                "body": self.body(req),
                "ended": id(req) in self.ended,
            }
            for name in self.EXTRA:
                item[name] = getattr(req, name)
            out.append(item)
        return out


def splits(data: bytes, rng: random.Random):
    """The same bytes fed whole, byte by byte, and in random pieces."""
    yield "whole", [data]
    if len(data) <= 50_000:
        yield "bytewise", [data[i : i + 1] for i in range(len(data))]
    for n in range(3):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 12))))
        bounds = [0, *cuts, len(data)]
        yield f"random{n}", [data[a:b] for a, b in pairwise(bounds)]
