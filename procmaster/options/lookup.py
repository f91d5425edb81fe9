"""Finding options by name: the indexes over the table, suggestions for typos, and
the names uWSGI 2.0 has that procmaster does not declare.

Theory of operation
-------------------
``BY_NAME`` maps every name and long alias to its ``Option``, ``BY_SHORT`` every
one-letter command-line flag; families (``hook-*``, ``route-*`` ...) match by
prefix, but only names uWSGI 2.0 really has, so that a custom key such as
``cache_dir`` stays a custom key. ``socket_options()`` and ``watch_options()``
are the table read by what it declares (protocol, watch action): the only lists
of socket and watched options procmaster has.

Must not know: how values are converted, files, sockets or processes.
"""

from __future__ import annotations

from .model import Option
from .table import OPTIONS
from .uwsgi_names import UWSGI_2_0_NAMES

BY_NAME: dict[str, Option] = {}
BY_SHORT: dict[str, Option] = {}
_FAMILIES: list[tuple[str, Option]] = []


def _norm(key: str) -> str:
    return key.replace("_", "-")


def _index() -> None:
    for opt in OPTIONS:
        names = (opt.name, *opt.aliases) if "*" not in opt.name else opt.aliases
        for n in names:
            if n in BY_NAME:
                raise RuntimeError(f"option name {n!r} declared twice")
            BY_NAME[n] = opt
        if opt.short:
            if opt.short in BY_SHORT:
                raise RuntimeError(f"short option -{opt.short} declared twice")
            BY_SHORT[opt.short] = opt
        for p in opt.prefixes:
            _FAMILIES.append((p, opt))


_index()


def lookup(key: str) -> Option | None:
    """The option called ``key`` (a name or long alias; ``-`` and ``_`` alike), or None.

    One-letter command-line shorts are not names: see ``lookup_short``.
    """
    key = _norm(key.strip())
    opt = BY_NAME.get(key)
    if opt is not None:
        return opt
    # families (hook-*, route-*, ...) only cover real uWSGI names, so that a custom
    # key such as cache_dir stays a custom key
    for prefix, fam in _FAMILIES:
        if key.startswith(prefix) and is_uwsgi_option(key):
            return fam
    return None


def lookup_short(letter: str) -> Option | None:
    """The option of a one-letter command-line flag such as ``p`` in ``-p 4``."""
    return BY_SHORT.get(letter)


def socket_options() -> dict[str, str]:
    """Socket option name -> the protocol its sockets speak, in table order."""
    return {o.name: o.protocol for o in OPTIONS if o.protocol}


def watch_options() -> dict[str, str]:
    """Watched-path option name -> what a change asks for, in table order."""
    return {o.name: o.watch for o in OPTIONS if o.watch}


def all_names() -> list[str]:
    """Every name and long alias procmaster declares (for suggestions)."""
    return [n for n in BY_NAME]


def suggest(key: str) -> str | None:
    """The declared option name closest to a mistyped ``key`` (difflib), or None."""
    import difflib  # lazily: only a mistyped option needs it

    low = _norm(key.strip()).lower()
    if low in BY_NAME:
        return low
    found = difflib.get_close_matches(low, all_names(), n=1, cutoff=0.75)
    if not found:
        return None
    opt = BY_NAME[found[0]]
    # suggest the alias the user was close to when it is the closer spelling
    return found[0] if found[0] in opt.aliases else opt.name


def did_you_mean(key: str) -> str:
    """`` (did you mean 'x'?)`` or the empty string."""
    s = suggest(key)
    return f" (did you mean '{s}'?)" if s else ""


_uwsgi_names: frozenset[str] | None = None


def is_uwsgi_option(key: str) -> bool:
    """True if uWSGI 2.0 (core or any bundled plugin) has an option of this name."""
    global _uwsgi_names
    if _uwsgi_names is None:
        _uwsgi_names = frozenset(UWSGI_2_0_NAMES.split())
    return _norm(key) in _uwsgi_names


# uWSGI's one-letter flags that procmaster does not declare, for a clear message.
UWSGI_SHORTS = {
    "a": "abstract-socket",
    "c": "cgi-mode",
    "r": "reaper",
    "v": "max-vars",
    "J": "test",
    "O": "optimize",
}
