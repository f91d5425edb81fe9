"""uWSGI's RPC on the local node: ``register_rpc``, ``call``, ``rpc(None, ...)``, ``rpc_list``.

Theory of operation
-------------------
uWSGI keeps a table of named functions per process: one registered while the
master imports the app is inherited by every worker (and mules and spoolers see
the master's table); one registered in a worker stays that worker's. ``call(name,
*args)`` and ``rpc(node, name, *args)`` with no node (None or empty) call it here,
arguments and name as bytes, and answer its bytes result, or None when there is
no such function, it raised (the traceback is logged), or it answered anything
but non-empty bytes. The table is a dict of this process, so a fork copies it,
which is exactly uWSGI's inheritance. At most ``rpc-max`` names per table.

Not done: calling another node (``rpc(b"host:port", ...)``, uWSGI's modifier 173
over the network): it raises ValueError saying so, never answers a made-up None.

Must not know: workers, sockets, the config beyond ``rpc-max``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from ..logs import log

__all__ = ["Rpc"]

MAX_ARGS = 255
MAX_NAME = 255


class Rpc:
    """This process's RPC table and uWSGI's functions over it."""

    def __init__(self, limit: int, may_register: Callable[[], bool]) -> None:
        self.limit = limit
        self.table: dict[bytes, Callable[..., Any]] = {}
        self.may_register = may_register  # uWSGI: only the master and workers register

    def register_rpc(self, name: str, func: Callable[..., Any], argc: int = 0) -> bool:
        if isinstance(name, bytes):
            raise TypeError("register_rpc() argument 1 must be str, not bytes")
        key = str(name).encode()
        if (
            not self.may_register()
            or len(key) > MAX_NAME
            or (key not in self.table and len(self.table) >= self.limit)
        ):
            raise ValueError("unable to register rpc function")
        self.table[key] = func
        return True

    def rpc_list(self) -> tuple[bytes, ...]:
        return tuple(self.table)

    def call(self, name: object = None, *args: object) -> bytes | None:
        if type(name) is not bytes or len(args) > MAX_ARGS:
            raise ValueError("unable to call rpc function")
        for arg in args:
            if type(arg) is not bytes:
                raise ValueError("unable to call rpc function")
        func = self.table.get(name)
        if func is None:
            return None
        try:
            out = func(*args)
        except Exception:
            log(f"rpc function {name.decode(errors='replace')} failed:\n{traceback.format_exc()}")
            return None
        return out if type(out) is bytes and out else None

    def rpc(self, node: object = None, name: object = None, *args: object) -> bytes | None:
        if node not in (None, b"", ""):
            raise ValueError(
                f"rpc to node {node!r}: procmaster calls RPC functions on the local node "
                "only (node None or b'')"
            )
        return self.call(name, *args)

    def names(self) -> dict[str, Callable[..., Any]]:
        return {
            "register_rpc": self.register_rpc,
            "rpc_list": self.rpc_list,
            "call": self.call,
            "rpc": self.rpc,
        }
