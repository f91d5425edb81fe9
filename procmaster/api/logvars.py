"""``uwsgi.set_logvar``/``get_logvar``: variables an app sets for its request's log line.

Theory of operation
-------------------
uWSGI 2.0 keeps a list of (key, value) pairs per request; ``log-format`` names a
pair as ``%(key)`` (any name that is not one of its own variables, ``var.X`` or
``metric.X``), written ``-`` when the request did not set it. Here the pairs
live in the request's environ under ``ENVIRON_KEY`` (a dict, made by the first
``set_logvar`` of a request), so they end with the request, and the request log
(``logs.request``) reads them only for a format that names one: a plain request
and a format without logvars pay nothing.

Which request is "this one" is found without the app passing its environ, as in
uWSGI: ``current_environ`` walks the calling thread's frames outwards and takes
the outermost WSGI environ held in a local named ``env`` or ``environ`` (the one
the server handed to the app: in a worker thread, the app callable's argument;
in the worker's own thread, the server's call of the app). Only frames whose code
has such a local are looked at, so the walk costs a few attribute reads per frame,
and only when the app calls these functions. Outside a request uWSGI raises
SystemError; so does this.

Must not know: the worker's loop, the request log's format machinery.
"""

from __future__ import annotations

import sys
from typing import Any

from ..logs.request import LOGVARS as ENVIRON_KEY

__all__ = ["ENVIRON_KEY", "MAX_LEN", "current_environ", "get_logvar", "set_logvar"]

MAX_LEN = 255  # uWSGI keeps each key and value in a 256-byte buffer
_NAMES = frozenset(("env", "environ"))


def current_environ() -> dict:
    """The environ of the request this thread is serving (SystemError outside one)."""
    frame = sys._getframe(1)
    found = None
    while frame is not None:
        if not _NAMES.isdisjoint(frame.f_code.co_varnames):
            local = frame.f_locals
            for name in ("environ", "env"):
                value = local.get(name)
                if type(value) is dict and "wsgi.input" in value and "REQUEST_METHOD" in value:
                    found = value
                    break
        frame = frame.f_back
    if found is None:
        raise SystemError("you can call uwsgi api function only from the main callable")
    return found


def _text(value: Any, what: str) -> str:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "surrogateescape")
    if not isinstance(value, str):
        raise TypeError(f"set_logvar: the {what} must be str or bytes, not {type(value).__name__}")
    if len(value.encode("utf-8", "surrogateescape")) > MAX_LEN:
        raise ValueError(f"set_logvar: the {what} holds at most {MAX_LEN} bytes")
    return value


def set_logvar(key: Any, value: Any) -> None:
    """Set ``%(key)`` of this request's log line to ``value``."""
    key, value = _text(key, "key"), _text(value, "value")
    # one log line per request: a value cannot start a second line
    value = value.replace("\r", "\\r").replace("\n", "\\n")
    environ = current_environ()
    logvars = environ.get(ENVIRON_KEY)
    if logvars is None:
        logvars = environ[ENVIRON_KEY] = {}
    logvars[key] = value


def get_logvar(key: Any) -> bytes | None:
    """This request's value of ``key`` (bytes, as uWSGI), None when it was not set."""
    key = _text(key, "key")
    value = (current_environ().get(ENVIRON_KEY) or {}).get(key)
    return None if value is None else value.encode("utf-8", "surrogateescape")
