"""The ``uwsgi`` module an app imports: uWSGI 2.0's names, answered by procmaster.

Theory of operation
-------------------
``build(runtime)`` makes a fresh module object named ``uwsgi`` whose functions read
the ``Runtime`` (what this process is) and the scoreboard (what every worker did).
Names are uWSGI 2.0.31's, with its types: strings it gives as bytes are bytes here
(``opt``, ``version``, ``hostname``, a worker's ``status``). What procmaster does
not run (RPC to another node, ``sharedarea_object``, the legacy async loop) is
absent or refused rather than faked: a missing name raises AttributeError, which
is what an app that probes with ``hasattr`` expects. The shared areas come from
``sharedarea``, RPC on the local node from ``rpc``, log variables from
``logvars``, WebSockets from ``websocket``.

How an app tells procmaster from uWSGI: ``uwsgi.procmaster`` is procmaster's
version (uWSGI has no such name).

Must not know: sockets, protocols, the worker's loop, the option table.
"""

from __future__ import annotations

import os
import socket
import time
import types
from signal import SIGHUP, SIGQUIT
from typing import Any

from .. import __version__
from ..logs import log as _log
from ..process import set_process_name
from ..scoreboard import STATUS_FREE, STATUS_NAMES
from .logvars import get_logvar, set_logvar
from .mules import get_message
from .runtime import Runtime
from .sharedarea import functions as sharedarea_functions
from .spool_files import encode_task, spooler_jobs, write_task
from .websocket import names as websocket_names

__all__ = ["build", "opt_dict"]

VERSION = "2.0.31"  # the uWSGI release whose API this module follows
SPOOL_OK, SPOOL_RETRY, SPOOL_IGNORE = -2, -1, 0


def opt_dict(entries: list) -> dict[str, Any]:
    """``uwsgi.opt``: each option as given, in order, the last value of a repeated
    one winning; values as bytes, a flag given on the command line as True."""
    out: dict[str, Any] = {}
    for entry in entries:
        value = entry.value
        if value == "true" and entry.origin == "command line":
            out[entry.key] = True
        else:
            out[entry.key] = str(value).encode("utf-8", "surrogateescape")
    return out


def build(rt: Runtime) -> types.ModuleType:
    """A new ``uwsgi`` module bound to ``rt``."""
    cfg = rt.cfg
    mod = types.ModuleType("uwsgi", "uWSGI 2.0's Python API, as procmaster serves it")
    board = rt.scoreboard

    def worker_id() -> int:
        return rt.wid

    def mule_id() -> int:
        return rt.mule_id

    def masterpid() -> int:
        return rt.master_pid

    def total_requests() -> int:
        return board.total() if board is not None else 0

    def request_id() -> int:
        if board is None or rt.slot < 0:
            return 0
        return board.read(rt.slot).requests

    def reload() -> bool:
        """Ask the master for a graceful reload (as SIGHUP does)."""
        os.kill(rt.master_pid, SIGHUP)
        return True

    def stop() -> bool:
        """Ask the master to stop now (as SIGQUIT does)."""
        os.kill(rt.master_pid, SIGQUIT)
        return True

    def is_a_reload() -> bool:
        return rt.is_reload

    def log(message: object) -> bool:
        _log(str(message))
        return True

    def set_user_harakiri(seconds: int) -> None:
        if not isinstance(seconds, int):
            raise TypeError(f"an integer is required (got type {type(seconds).__name__})")
        rt.set_user_harakiri(seconds)

    def setprocname(name: str) -> None:
        set_process_name(str(name))

    def workers() -> tuple:
        """One dict per live worker, with uWSGI's keys."""
        if board is None:
            return ()
        now = int(time.time())
        out = []
        for index in range(board.nslots):
            slot = board.read(index)
            if slot.status == STATUS_FREE or not slot.pid:
                continue
            out.append(
                {
                    "id": board.wid(index),
                    "pid": slot.pid,
                    "requests": slot.requests,
                    "delta_requests": 0,
                    "signals": 0,
                    "exceptions": slot.exceptions,
                    "status": STATUS_NAMES.get(slot.status, "idle").encode(),
                    "rss": 0,
                    "vsz": 0,
                    "running_time": slot.rt_us,
                    "last_spawn": int(slot.spawned_at),
                    "respawn_count": 0,
                    "tx": slot.tx,
                    "avg_rt": slot.rt_us // slot.requests if slot.requests else 0,
                    "apps": (),
                    "uptime": max(0, now - int(slot.spawned_at)),
                }
            )
        return tuple(sorted(out, key=lambda w: w["id"]))

    locks = rt.locks

    def lock(n: int = 0) -> None:
        locks.lock(n)

    def unlock(n: int = 0) -> None:
        locks.unlock(n)

    def is_locked(n: int = 0) -> bool:
        return locks.is_locked(n)

    caches = rt.caches

    def cache_get(key: object, cache: object = None) -> bytes | None:
        c = caches.get(cache)
        return c.get(key) if c is not None else None

    def cache_exists(key: object, cache: object = None) -> bool | None:
        c = caches.get(cache)
        return True if c is not None and c.exists(key) else None

    def cache_set(key: object, value: object, expires: int = 0, cache: object = None):
        c = caches.get(cache)
        return True if c is not None and c.set(key, value, expires) else None

    def cache_update(key: object, value: object, expires: int = 0, cache: object = None):
        c = caches.get(cache)
        return True if c is not None and c.set(key, value, expires, update=True) else None

    def cache_del(key: object, cache: object = None) -> bool | None:
        c = caches.get(cache)
        return True if c is not None and c.delete(key) else None

    def cache_clear(cache: object = None) -> bool | None:
        c = caches.get(cache)
        if c is None:
            return None
        c.clear()
        return True

    def cache_keys(cache: object = None) -> list[bytes]:
        c = caches.get(cache)
        if c is None:
            raise ValueError("no local uWSGI cache available")
        return c.keys()

    def cache_num(key: object, cache: object = None) -> int:
        c = caches.get(cache)
        return c.num(key) if c is not None else 0

    def _math(op: str, default: int):
        def apply(key: object, amount: int = default, expires: int = 0, cache: object = None):
            c = caches.get(cache)
            return True if c is not None and c.math(key, op, int(amount), expires) else None

        apply.__name__ = f"cache_{op}"
        return apply

    signals = rt.signals

    def register_signal(num: int, target: str, func: Any) -> None:
        signals.register(num, target, func)

    def signal(num: int, remote: object = None) -> None:
        signals.raise_signal(num)

    def add_timer(num: int, seconds: float) -> None:
        signals.add("timer", num, seconds)

    def add_rb_timer(num: int, seconds: float, iterations: int = 0) -> None:
        signals.add("timer", num, seconds, int(iterations))

    def add_cron(num: int, minute: int, hour: int, day: int, month: int, weekday: int) -> None:
        signals.add("cron", num, minute, hour, day, month, weekday)

    def add_file_monitor(num: int, path: str) -> None:
        signals.add("monitor", num, str(path))

    spool_dirs = rt.spool_dirs()

    def spool(*args: dict, **kwargs: bytes) -> bytes:
        """Queue a task for a spooler; the task file's path (bytes)."""
        task: dict = {}
        for arg in args:
            if not isinstance(arg, dict):
                raise ValueError("uwsgi.spool() takes a dict (or keyword arguments)")
            task.update(arg)
        task.update({k.encode() if isinstance(k, str) else k: v for k, v in kwargs.items()})
        data = encode_task(task)
        target = task.get(b"spooler")
        if target is not None:
            directory = os.path.abspath(target.decode("utf-8", "surrogateescape"))
            if directory not in spool_dirs:
                raise ValueError(f"no spooler on {directory!r} in this instance")
        elif spool_dirs:
            directory = spool_dirs[0]
        else:
            raise ValueError("no spooler configured (set 'spooler = DIR')")
        priority = task.get(b"priority")
        if priority is not None and priority.isdigit():
            directory = os.path.join(directory, priority.decode())
            os.makedirs(directory, mode=0o700, exist_ok=True)
        try:
            return write_task(directory, data).encode("utf-8", "surrogateescape")
        except OSError as exc:
            raise ValueError(f"unable to spool job: {directory}: {exc.strerror or exc}") from None

    queues = rt.queues

    def mule_msg(msg: object, target: object = None) -> bool:
        """Queue ``msg`` (bytes or str) for mule ``target`` (id), a farm (name) or any
        programmed mule (None); False when that queue is full or does not exist."""
        data = msg.encode() if isinstance(msg, str) else bytes(msg)  # type: ignore[arg-type]
        return queues.send(data, target)

    def mule_get_msg(
        signals: bool = True, farms: bool = True, buffer_size: int = 65536, timeout: float = -1
    ) -> bytes | None:
        if rt.mule_id == 0:
            raise ValueError("uwsgi.mule_get_msg() can be called only in a mule")
        return get_message(queues.readers(rt.mule_id, farms), timeout, -1, signals and rt.signals)

    def farm_msg(farm: str | bytes, msg: object) -> None:
        mule_msg(msg, farm)  # uWSGI's answers None

    def farm_get_msg() -> bytes | None:
        if rt.mule_id == 0:
            raise ValueError("uwsgi.farm_get_msg() can be called only in a mule")
        readers = [queues.farm[n][1] for n in queues.farms_of(rt.mule_id)]
        return get_message(readers, -1) if readers else None  # waits, as uWSGI's

    def in_farm(name: object = None) -> bool | None:
        mine = queues.farms_of(rt.mule_id)
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return True if (mine if name is None else str(name) in mine) else None

    threads = cfg.threads if cfg.threads and cfg.threads > 1 else 1
    names: dict[str, Any] = {
        "version": VERSION.encode(),
        "version_info": (2, 0, 31, 0, b""),
        "procmaster": __version__,
        "hostname": socket.gethostname().encode(),
        "numproc": cfg.processes,
        "cores": threads,
        "has_threads": int(bool(cfg.enable_threads or threads > 1)),
        "buffer_size": cfg.buffer_size,
        "started_on": rt.started_on,
        "opt": opt_dict(cfg.entries),
        "magic_table": {},
        "SPOOL_OK": SPOOL_OK,
        "SPOOL_RETRY": SPOOL_RETRY,
        "SPOOL_IGNORE": SPOOL_IGNORE,
        "post_fork_hook": None,
        "atexit": None,
        "worker_id": worker_id,
        "mule_id": mule_id,
        "masterpid": masterpid,
        "total_requests": total_requests,
        "request_id": request_id,
        "reload": reload,
        "stop": stop,
        "is_a_reload": is_a_reload,
        "log": log,
        "set_logvar": set_logvar,
        "get_logvar": get_logvar,
        "setprocname": setprocname,
        "set_user_harakiri": set_user_harakiri,
        "workers": workers,
        "lock": lock,
        "unlock": unlock,
        "is_locked": is_locked,
        "i_am_the_spooler": lambda: rt.role == "spooler",
        "spool": spool,
        "mule_msg": mule_msg,
        "mule_get_msg": mule_get_msg,
        "farm_msg": farm_msg,
        "farm_get_msg": farm_get_msg,
        "in_farm": in_farm,
        "mule_msg_hook": None,
        "send_to_spooler": spool,
        "spooler": None,
        "register_signal": register_signal,
        "signal": signal,
        "signal_registered": lambda num: True if signals.registered(num) else None,
        "signal_received": lambda: signals.received,
        "add_timer": add_timer,
        "add_rb_timer": add_rb_timer,
        "add_cron": add_cron,
        "add_file_monitor": add_file_monitor,
        "cache_get": cache_get,
        "cache_exists": cache_exists,
        "cache_set": cache_set,
        "cache_update": cache_update,
        "cache_del": cache_del,
        "cache_clear": cache_clear,
        "cache_keys": cache_keys,
        "cache_num": cache_num,
        "cache_inc": _math("inc", 1),
        "cache_dec": _math("dec", 1),
        "cache_mul": _math("mul", 2),
        "cache_div": _math("div", 2),
    }
    if rt.areas:  # as uWSGI: the sharedarea functions exist when an area does
        names.update(sharedarea_functions(rt.areas))
    if spool_dirs:  # likewise uwsgi.spoolers and spooler_jobs, with a spooler
        names["spoolers"] = tuple(d.encode() for d in spool_dirs)
        names["spooler_jobs"] = lambda: spooler_jobs(spool_dirs[0])
    names.update(rt.rpc.names())
    names.update(websocket_names())
    mod.__dict__.update(names)
    return mod
