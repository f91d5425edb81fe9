"""What a cache is to be: ``cache2 = name=NAME,items=N,...`` read into a ``CacheSpec``.

Theory of operation
-------------------
uWSGI's keyval form, its key names and their spellings (``purge_lru`` and
``lru``, ``max_items`` and ``items`` ...). Keys that only matter to uWSGI's
networked or bitmap caches are accepted and ignored (the option's note in the
table says so); an unknown key, a missing name or item count, or a number that
is not one is a ValueError that says which.

Must not know: shared memory, processes, the ``uwsgi`` module.
"""

from __future__ import annotations

__all__ = ["CacheSpec", "parse_cache2"]


class CacheSpec:
    """A cache's geometry and policy, from ``cache2`` or ``cache``."""

    __slots__ = ("name", "items", "blocksize", "keysize", "purge_lru", "store", "store_sync")

    def __init__(
        self,
        name: str,
        items: int,
        blocksize: int = 65536,
        keysize: int = 2048,
        purge_lru: bool = False,
        store: str | None = None,
        store_sync: int = 0,
    ) -> None:
        self.name = name
        self.items = items
        self.blocksize = blocksize
        self.keysize = keysize
        self.purge_lru = purge_lru
        self.store = store
        self.store_sync = store_sync


_INT_KEYS = {"items": 2, "blocksize": 1, "keysize": 1, "store_sync": 0}
_ALIASES = {
    "maxitems": "items",
    "max_items": "items",
    "purge_lru": "purge_lru",
    "purgelru": "purge_lru",
    "lru": "purge_lru",
    "key_size": "keysize",
    "block_size": "blocksize",
    "storesync": "store_sync",
    "store_sync": "store_sync",
}
_IGNORED = {
    "hash",
    "hashsize",
    "hash_size",
    "blocks",
    "bitmap",
    "ignore_full",
    "math_initial",
    "nodes",
    "sync",
    "udp",
    "lazy_expire",
    "sweep_on_full",
    "clear_on_full",
    "no_expire",
}


def parse_cache2(text: str) -> CacheSpec:
    """``name=NAME,items=N[,blocksize=B,keysize=K,purge_lru=1,store=FILE,...]``;
    ValueError says what is wrong."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        key = _ALIASES.get(key, key)
        if not sep:
            raise ValueError(f"{part.strip()!r}: expected key=value")
        if key not in (*_INT_KEYS, "name", "purge_lru", "store") and key not in _IGNORED:
            raise ValueError(
                f"unknown cache2 key {key!r} (known: name, items, blocksize, keysize, "
                "purge_lru, store, store_sync)"
            )
        fields[key] = value.strip()
    name = fields.get("name")
    if not name:
        raise ValueError("a cache2 needs a name: name=NAME,items=N")
    if "items" not in fields:
        raise ValueError(f"cache {name!r} needs items=N")
    numbers: dict[str, int] = {}
    for key, low in _INT_KEYS.items():
        if key in fields:
            try:
                numbers[key] = int(fields[key])
            except ValueError:
                raise ValueError(f"{key}={fields[key]!r}: expected a whole number") from None
            if numbers[key] < low:
                raise ValueError(f"{key}={numbers[key]}: must be at least {low}")
    return CacheSpec(
        name,
        numbers["items"],
        blocksize=numbers.get("blocksize", 65536),
        keysize=numbers.get("keysize", 2048),
        purge_lru=fields.get("purge_lru", "0").lower() in ("1", "true", "yes", "on"),
        store=fields.get("store") or None,
        store_sync=numbers.get("store_sync", 0),
    )
