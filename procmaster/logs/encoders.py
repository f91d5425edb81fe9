"""Log encoders: ``log-encoder`` and ``log-req-encoder``, uWSGI's chain of
transformations a line goes through before a logger writes it.

Theory of operation
-------------------
A value is ``NAME[:LOGGER] [ARGS]``. Encoders run in the order given, each on the
previous one's output; one with ``:LOGGER`` runs only for the logger of that name
(``logger = LOGGER ...``), one without runs for every logger and for the plain
log. ``prefix ARGS`` and ``suffix ARGS`` add text, ``nl`` adds a newline,
``gzip`` and ``compress`` compress the line (gzip, zlib); ``format ARGS`` and
``json ARGS`` build a line from a template with uWSGI's variables: ``${msg}`` (the
line without its newline), ``${msgnl}`` (with it), ``${unix}`` (seconds),
``${millis}``, ``${micros}`` (since the epoch) and ``${strftime:FMT}`` (local
time). ``json`` escapes ``${msg}``, ``${msgnl}`` and ``${strftime:...}`` for a
JSON string. As in uWSGI neither adds a newline: add the ``nl`` encoder after
it.

The template is parsed once, at start: a line costs one pass over its parts.

Must not know: where lines go (``sinks``), requests.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Callable

__all__ = ["Encoder", "EncoderError", "parse_encoders"]

_VAR = re.compile(r"\$\{([^}]*)\}")


class EncoderError(ValueError):
    """A ``log-encoder`` value procmaster cannot read (the message says why)."""


def _json_text(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _plain(text: str) -> str:
    return text


def _template(args: str, escape: Callable[[str], str]) -> Callable[[bytes], bytes]:
    """``format``/``json``: the parts of ``args`` (text, and one callable per
    ``${var}``) joined for each line."""
    parts: list[object] = []
    pos = 0
    for match in _VAR.finditer(args):
        if match.start() > pos:
            parts.append(args[pos : match.start()])
        var = match.group(1)
        if var == "msg":
            parts.append(lambda msg: escape(msg[:-1] if msg.endswith("\n") else msg))
        elif var == "msgnl":
            parts.append(lambda msg: escape(msg))
        elif var == "unix":
            parts.append(lambda msg: str(int(time.time())))
        elif var == "millis":
            parts.append(lambda msg: str(time.time_ns() // 1_000_000))
        elif var == "micros":
            parts.append(lambda msg: str(time.time_ns() // 1000))
        elif var.startswith("strftime:"):
            fmt = var[len("strftime:") :]
            parts.append(lambda msg, fmt=fmt: escape(time.strftime(fmt)))
        # uWSGI writes nothing for an unknown variable
        pos = match.end()
    if pos < len(args):
        parts.append(args[pos:])

    def encode(data: bytes) -> bytes:
        msg = data.decode("utf-8", "backslashreplace")
        return "".join(p if type(p) is str else p(msg) for p in parts).encode(
            "utf-8", "backslashreplace"
        )

    return encode


def _build(name: str, args: str) -> Callable[[bytes], bytes]:
    if name == "prefix":
        head = args.encode()
        return lambda data: head + data
    if name == "suffix":
        tail = args.encode()
        return lambda data: data + tail
    if name == "nl":
        return lambda data: data + b"\n"
    if name == "format":
        return _template(args, _plain)
    if name == "json":
        return _template(args, _json_text)
    if name == "gzip":
        import gzip  # lazily: only a gzip log encoder needs it

        return gzip.compress
    if name == "compress":
        return zlib.compress
    raise EncoderError(
        f"log encoder {name!r} does not exist (prefix, suffix, nl, format, json, gzip, compress)"
    )


class Encoder:
    """One link of the chain: ``func`` applied to lines for ``use_for`` (a logger
    name) or for every logger when ``use_for`` is None."""

    __slots__ = ("name", "use_for", "func")

    def __init__(self, value: str) -> None:
        spec, _, args = value.partition(" ")
        name, sep, use_for = spec.partition(":")
        if not name:
            raise EncoderError(f"{value!r}: expected NAME[:LOGGER] [ARGS]")
        self.name = name
        self.use_for = use_for if sep else None
        self.func = _build(name, args)


def parse_encoders(values: list[str]) -> list[Encoder]:
    """The chain of ``log-encoder`` (or ``log-req-encoder``) values, in order."""
    return [Encoder(value) for value in values]


def encode(chain: list[Encoder], logger: str | None, data: bytes) -> bytes:
    """``data`` through the encoders that apply to the logger named ``logger``
    (None: an unnamed logger or the plain log: only encoders for everyone)."""
    for enc in chain:
        if enc.use_for is not None and enc.use_for != logger:
            continue
        data = enc.func(data)
    return data
