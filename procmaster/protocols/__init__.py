"""Wire protocols: bytes in, request events out; response in, bytes out (sans-IO).

See ``base.py`` for the contract. ``PROTOCOLS`` maps a socket kind of the option
table to the module and class that speak it; modules are imported on first use so
start-up pays only for the protocols a config names.
"""

from __future__ import annotations

import importlib

from .base import ProtocolBase, ProtocolError, Request, Sink, WireProtocol, released
from .head import HeadError

__all__ = [
    "HeadError",
    "ProtocolBase",
    "ProtocolError",
    "Request",
    "Sink",
    "WireProtocol",
    "protocol_class",
    "released",
]

PROTOCOLS = {
    "http": ("http", "HTTPProtocol"),
    "uwsgi": ("uwsgi", "UwsgiProtocol"),
    "fastcgi": ("fastcgi", "FastCGIProtocol"),
    "scgi": ("scgi", "SCGIProtocol"),
}


def protocol_class(kind: str) -> type[ProtocolBase]:
    """The class serving sockets of ``kind`` (``http``, ``uwsgi``, ``fastcgi``, ``scgi``)."""
    module, name = PROTOCOLS[kind]
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
