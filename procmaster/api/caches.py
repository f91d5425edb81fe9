"""The caches of one instance: made from the config, found by name, kept across a reload.

Theory of operation
-------------------
``Caches.from_config`` makes one ``Cache`` per ``cache2`` line, plus uWSGI's
legacy ``cache = N`` (named ``default``, geometry from ``cache-blocksize``,
``cache-store``), in the master before it forks. With no name, the API uses the
first cache, as uWSGI does. A re-executed master adopts the memory its previous
image exported (``CACHE_FDS_ENV``) when the geometry did not change, so a graceful
reload keeps every item. The master calls ``tick`` from its loop: expired items
are swept every ``cache-expire-freq`` seconds, ``store`` caches flushed every
``store_sync`` (or ``cache-store-sync``) seconds.

Must not know: the ``uwsgi`` module, workers, sockets, the reload plan.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ..ipc import CACHE_FDS_ENV
from .cache import Cache
from .cache_spec import CacheSpec, parse_cache2

__all__ = ["CacheConfigError", "Caches"]


class CacheConfigError(ValueError):
    """A cache line that cannot be used; the message names the option and says why."""


class Caches:
    """Every cache of the instance, in the order the config declares them."""

    def __init__(self, caches: list[Cache], expire_freq: float) -> None:
        self.list = caches
        self.by_name = {c.name: c for c in caches}
        self.expire_freq = expire_freq
        now = time.monotonic()
        self.next_sweep = now + expire_freq
        self.next_sync = {c.name: now + c.spec.store_sync for c in caches if c.spec.store_sync}

    @classmethod
    def from_config(cls, cfg: Any) -> Caches:
        specs = cls.specs(cfg)
        inherited = _inherited()
        caches = []
        for spec in specs:
            fd = inherited.pop(spec.name, None)
            if fd is not None and (spec.store is not None or not Cache.fits(spec, fd)):
                os.close(fd)  # a new geometry (or a store now): old workers keep the old memory
                fd = None
            try:
                caches.append(Cache(spec, fd=fd))
            except OSError as exc:
                raise CacheConfigError(f"cache {spec.name!r}: {exc}") from None
        for fd in inherited.values():  # caches the new config no longer has
            os.close(fd)
        return cls(caches, cfg.cache_expire_freq)

    @staticmethod
    def specs(cfg: Any) -> list[CacheSpec]:
        """The caches the config declares (CacheConfigError names what is wrong)."""
        specs: list[CacheSpec] = []
        for text in cfg.cache2:
            try:
                specs.append(parse_cache2(text))
            except ValueError as exc:
                raise CacheConfigError(f"{cfg.origin('cache2')}: cache2 = {text}: {exc}") from None
        if cfg.cache:
            specs.append(
                CacheSpec(
                    "default",
                    cfg.cache + 1,
                    blocksize=cfg.cache_blocksize,
                    store=cfg.cache_store,
                    store_sync=cfg.cache_store_sync,
                )
            )
        names = [s.name for s in specs]
        for name in names:
            if names.count(name) > 1:
                raise CacheConfigError(f"{cfg.origin('cache2')}: two caches named {name!r}")
        return specs

    def get(self, name: object = None) -> Cache | None:
        """The cache ``name`` (bytes or str; None: the first), or None."""
        if name is None:
            return self.list[0] if self.list else None
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return self.by_name.get(str(name))

    def stats(self) -> list[dict]:
        """Each cache's figures, for the stats server."""
        return [c.stats() for c in self.list]

    def export(self, env: dict[str, str]) -> None:
        """Before a reload's exec: hand the memory of each cache to the next image."""
        fds = {c.name: c.inheritable() for c in self.list if c.spec.store is None}
        if fds:
            env[CACHE_FDS_ENV] = json.dumps(fds)

    def tick(self) -> None:
        """From the master's loop: sweep expired items, flush stores, when due."""
        now = time.monotonic()
        if self.list and now >= self.next_sweep:
            self.next_sweep = now + self.expire_freq
            for cache in self.list:
                cache.sweep()
        for cache in self.list:
            due = self.next_sync.get(cache.name)
            if due is not None and now >= due:
                self.next_sync[cache.name] = now + cache.spec.store_sync
                cache.sync()

    def next_deadline(self) -> float | None:
        if not self.list:
            return None
        return min([self.next_sweep, *self.next_sync.values()])

    def close(self) -> None:
        """At the master's exit: flush what has a store."""
        for cache in self.list:
            if cache.spec.store is not None:
                cache.sync()


def _inherited() -> dict[str, int]:
    raw = os.environ.pop(CACHE_FDS_ENV, None)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        return {str(k): int(v) for k, v in data.items()}
    except (ValueError, TypeError, AttributeError):
        return {}
