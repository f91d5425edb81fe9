"""For options the table marks PARTIAL whose difference from uWSGI 2.0 depends on
the value: whether one use (name as written, value) is read as uWSGI reads it.

Theory of operation
-------------------
A PARTIAL row's note says everything procmaster does not do of the option. For
many rows that is a matter of the value: ``cheaper-algo = spare`` is uWSGI's own
algorithm, ``logger = file:PATH`` is uWSGI's file logger, an ``emperor`` glob of
``.ini`` files is what uWSGI's emperor watches. ``differs(option, key, value,
index)`` says, for one use, what differs (a sentence naming the value), or None
when this use is read as uWSGI reads it. ``--check`` then lists a use that
differs under "partly supported" with that sentence at its file:line, and a use
that does not under "supported". Rows not in ``RULES`` always differ (their
note says how).

Must not know: files, sockets, processes; it reads the text of a value only.
"""

from __future__ import annotations

from collections.abc import Callable

from ..logs.sinks import PLUGINS as _LOGGERS  # the logger plugins procmaster has

__all__ = ["RULES", "differs"]

_NOT_INI = (".xml", ".yml", ".yaml", ".json", ".js")
_ROUTE_ACTIONS_MISSING = ("send", "cache", "cachestore", "cachevar", "uwsgi", "http",
                          "proxyhttp", "proxyuwsgi", "sendfile", "fastfile", "chunked")  # fmt: skip
_HOOK_PHASES = {
    "as-user": "runs once the sockets are bound (uWSGI runs it before binding, after "
    "as-root): a socket it would prepare must exist before",
    "pre-jail": "there is no jail: runs just before as-root",
    "in-jail": "there is no jail: runs just before as-root",
    "post-jail": "there is no jail: runs just before as-root",
}


def _include(key: str, value: str, index: int) -> str | None:
    path = value.partition(":")[0] if "://" not in value else value
    if "://" in value or path.lower().endswith(_NOT_INI):
        return f"{value!r} is not an INI file: procmaster reads INI files only"
    return None


def _cheaper_algo(key: str, value: str, index: int) -> str | None:
    if value.strip() == "spare":
        return None
    return f"{value!r}: procmaster has only 'spare' (uWSGI's default), which it uses instead"


def _logger(key: str, value: str, index: int) -> str | None:
    spec = value.strip()
    head, _, rest = spec.partition(":")
    plugin = head
    if " " in head:  # a named logger: NAME PLUGIN:ARGS
        plugin = head.split(None, 1)[1]
    if plugin in _LOGGERS or (not rest and "/" in spec and " " not in spec):
        return None
    return f"the {plugin!r} logger does not exist in procmaster: ignored (with a warning)"


def _emperor(key: str, value: str, index: int) -> str | None:
    if "://" in value:
        return f"{value!r}: procmaster watches directories and globs only, no monitor schemes"
    if value.lower().endswith(_NOT_INI):
        return f"{value!r}: procmaster runs INI vassals only"
    return None


def _cache2(key: str, value: str, index: int) -> str | None:
    keys = {part.partition("=")[0].strip() for part in value.split(",")}
    missing = sorted(keys & {"nodes", "udp", "sync", "bitmap"})
    if not missing:
        return None
    return (
        f"{', '.join(missing)}: not in procmaster (no udp sync between servers, no "
        "bitmap mode); the cache is local"
    )


def _route(key: str, value: str, index: int) -> str | None:
    action = value.strip() if key == "route-run" else value.strip().partition(" ")[2]
    name = action.partition(":")[0].strip()
    if name in _ROUTE_ACTIONS_MISSING:
        return f"the action {name!r} does not exist in procmaster"
    if name == "break" and ":" not in action:
        return "a bare 'break' answers 500 here (uWSGI closes the connection)"
    for var in ("${mime[", "${time["):
        if var in action:
            return f"{var}...] is not expanded in procmaster"
    return None


def _hook(key: str, value: str, index: int) -> str | None:
    return _HOOK_PHASES.get(key.removeprefix("hook-"))


RULES: dict[str, Callable[[str, str, int], str | None]] = {
    "include": _include,
    "cheaper-algo": _cheaper_algo,
    "logger": _logger,
    "req-logger": _logger,
    "emperor": _emperor,
    "cache2": _cache2,
    "route-*": _route,
    "hook-*": _hook,
}


def differs(option: str, key: str, value: str, index: int) -> str | None:
    """What differs from uWSGI 2.0 for this use of a PARTIAL ``option`` (``key``
    as written, the ``index``-th value), or None when it is read as uWSGI reads
    it. Raises ``KeyError`` for a row whose difference is not the value's."""
    return RULES[option](key, value, index)
