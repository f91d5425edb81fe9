"""Mules: processes for background work (``mule``, ``mules``, ``farm``), and their queues.

Theory of operation
-------------------
``mule = FILE`` makes a mule that runs that script; ``mule`` with no value (or
``mules = N``) makes a *programmed* mule, which waits for messages and hands each
to ``uwsgi.mule_msg_hook`` (``@mulefunc`` sets it). Mules are numbered from 1 in
the order the config declares them; ``farm = NAME:1,2`` groups mules under a name.

Messages travel on datagram socket pairs the master makes before it forks
anything (``Queues``): one per mule, one per farm, and one shared by every
programmed mule. Every process of the instance inherits them: a worker's
``uwsgi.mule_msg(msg, target)`` writes a datagram to the mule's, the farm's
(``target`` a name) or the shared queue (no target: any mule, a script mule
included, as in uWSGI); a mule's
``mule_get_msg()`` waits on its own queue, its farms' and the shared one, and
one reader gets each message. A full queue refuses the message at once
(``mule_msg`` returns False) rather than blocking the request.

A mule runs forked from the master like a worker (so a preloaded app's code is
there) and is kept alive by ``kept.KeptProcesses``: a script that ends, or a
mule that dies, is started again. ``SIGTERM``/``SIGHUP`` end a programmed mule
after the message in hand; a script mule ends at once.

Must not know: sockets of clients, workers, the master's loop.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time
import traceback
from typing import Any

from ..ipc import STOP_SIGNALS
from ..logs import log
from ..process import die_with_parent, set_process_name, signal_pipe, signalled

__all__ = ["MuleConfigError", "Queues", "mule_table", "run_mule"]

MAX_MESSAGE = 65536


class MuleConfigError(ValueError):
    """A mule or farm line that cannot be used."""


def mule_table(cfg: Any, base: str = "") -> tuple[list[str], dict[str, list[int]]]:
    """([script or "" per mule id 1..N], {farm name: [mule ids]}); relative scripts
    are looked for from ``base`` (the master's directory after ``chdir``)."""
    base = base or os.getcwd()
    mules = [str(m or "") for m in cfg.mule] + [""] * cfg.mules
    for script in mules:
        if script and not os.path.isfile(os.path.join(base, script)):
            raise MuleConfigError(
                f"{cfg.origin('mule')}: mule = {script}: no such file (from {base})"
            )
    farms: dict[str, list[int]] = {}
    for line in cfg.farm:
        name, sep, ids = str(line).partition(":")
        name = name.strip()
        try:
            members = [int(x) for x in ids.split(",") if x.strip()]
        except ValueError:
            members = []
        if not sep or not name or not members:
            raise MuleConfigError(f"{cfg.origin('farm')}: farm = {line}: expected NAME:ID[,ID...]")
        for mid in members:
            if not 1 <= mid <= len(mules):
                raise MuleConfigError(
                    f"{cfg.origin('farm')}: farm = {line}: there is no mule {mid} "
                    f"({len(mules)} mule(s) declared)"
                )
        farms[name] = members
    return mules, farms


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for s in (a, b):
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return a, b  # (senders write here, readers read there)


class Queues:
    """The instance's mule queues (made once, in the master, before any fork)."""

    def __init__(self, mules: list[str], farms: dict[str, list[int]]) -> None:
        self.mules = mules
        self.farms = farms
        self.own = {mid: _pair() for mid in range(1, len(mules) + 1)}
        self.farm = {name: _pair() for name in farms}
        self.shared = _pair() if mules else None

    def send(self, msg: bytes, target: object = None) -> bool:
        """Queue ``msg`` for a mule (id), a farm (name) or any mule (None)."""
        if isinstance(target, int) and target > 0:
            pair = self.own.get(target)
        elif isinstance(target, (str, bytes)):  # uWSGI takes only bytes here; str is kinder
            name = target.decode() if isinstance(target, bytes) else target
            pair = self.farm.get(name)
            if pair is None:
                raise ValueError("unknown farm")
        else:
            pair = self.shared
        if pair is None:
            return False
        if len(msg) > MAX_MESSAGE:
            raise ValueError(f"a mule message holds at most {MAX_MESSAGE} bytes")
        try:
            pair[0].send(msg)
        except (BlockingIOError, OSError):
            return False
        return True

    def readers(self, mule_id: int, farms: bool = True) -> list[socket.socket]:
        out = [self.own[mule_id][1]]
        if farms:
            out += [self.farm[n][1] for n, ids in self.farms.items() if mule_id in ids]
        if self.shared is not None:
            out.append(self.shared[1])  # "any mule": whichever mule reads first, as uWSGI
        return out

    def farms_of(self, mule_id: int) -> list[str]:
        return [n for n, ids in self.farms.items() if mule_id in ids]


def get_message(
    readers: list[socket.socket], timeout: float, wake: int = -1, signals: Any = None
) -> bytes | None:
    """The next message on any of ``readers`` (None after ``timeout`` seconds, or when
    ``wake`` becomes readable first); ``timeout`` < 0 waits for ever. With
    ``signals`` (the process's ``signals.Local``), uWSGI signals for this mule that
    arrive meanwhile run their handlers here, as uWSGI's mule_get_msg does."""
    deadline = None if timeout < 0 else time.monotonic() + timeout
    inbox = list(signals.inbox) if signals is not None else []
    fds = [*readers, *inbox] + ([wake] if wake >= 0 else [])
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select(fds, [], [], left)
        if not ready:
            return None
        if wake >= 0 and wake in ready:
            return None
        for sock in inbox:
            if sock in ready:
                signals.take(sock)
        for sock in ready:
            if sock in inbox:
                continue
            try:
                return sock.recv(MAX_MESSAGE)
            except BlockingIOError:
                continue  # another mule of the farm took it


def run_mule(runtime: Any, mule_id: int, master_pid: int) -> None:
    """A mule process's life; never returns."""
    code = 1
    try:
        die_with_parent(master_pid)
        set_process_name(f"uwsgi mule {mule_id}")
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)  # before the post-fork hook (@muleloop ...)
        runtime.enter_mule(mule_id)
        script = runtime.queues.mules[mule_id - 1]
        if script:
            log(f"mule {mule_id} (pid {os.getpid()}) running {script}")
            import runpy  # lazily: only a mule with a script runs one

            runpy.run_path(script, run_name="__main__")
            code = 0
        else:
            code = _programmed(runtime, mule_id)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        log(f"mule {mule_id} (pid {os.getpid()}) failed:\n{traceback.format_exc().rstrip()}")
    finally:
        os._exit(code)


def _programmed(runtime: Any, mule_id: int) -> int:
    wake = signal_pipe(STOP_SIGNALS)
    readers = runtime.queues.readers(mule_id)
    log(f"mule {mule_id} (pid {os.getpid()}) waiting for messages")
    while True:
        msg = get_message(readers, -1, wake, runtime.signals)
        if msg is None:
            if signalled(wake, STOP_SIGNALS):
                runtime.exiting()
                return 0
            continue
        hook = getattr(runtime.module, "mule_msg_hook", None)
        if not callable(hook):
            log(f"mule {mule_id}: a message, but no uwsgi.mule_msg_hook to take it")
            continue
        try:
            hook(msg)
        except Exception:
            log(f"mule {mule_id}: uwsgi.mule_msg_hook failed:\n{traceback.format_exc().rstrip()}")
