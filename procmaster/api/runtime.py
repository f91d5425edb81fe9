"""What the ``uwsgi`` module knows about the process it runs in, and when its hooks run.

Theory of operation
-------------------
The master makes one ``Runtime`` before it loads the app (so ``import uwsgi`` works
while a preloaded app is imported) and installs it (``procmaster.api.install``).
A forked worker inherits it and calls ``enter_worker``: from then on the facts are
the worker's (its id, its scoreboard slot), and uWSGI's ``post_fork_hook`` runs
there, before a lazy app is imported (as in uWSGI, a ``@postfork`` registered by
a lazy app's own import runs only in later forks, which there are none of).
``exiting`` runs ``uwsgi.atexit`` and then Python's ``atexit`` handlers (unless
``skip-atexit``) when a worker leaves on a request to stop: gracefully or on
``SIGINT``/``SIGQUIT``. A worker killed by harakiri or ``SIGKILL`` runs neither.

Must not know: sockets, protocols, the worker's loop, how the master reloads (it
asks with a signal, as ``procmaster --reload`` does).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import time
import traceback
from typing import Any

from ..ipc import CACHE_FDS_ENV, SHAREDAREA_FDS_ENV
from ..logs import log
from .caches import Caches
from .locks import Locks
from .mules import Queues, mule_table
from .rpc import Rpc
from .sharedarea import Area, export, make_areas, parse_lines
from .signals import Hub, Local

__all__ = ["Runtime", "SpoolConfigError", "current", "service_problems"]

_current: Runtime | None = None


class SpoolConfigError(ValueError):
    """A spooler directory that cannot be used (it must exist, as in uWSGI)."""


def check_spoolers(cfg: Any, base: str) -> None:
    for directory in cfg.spooler:
        if not os.path.isdir(os.path.join(base, directory)):
            raise SpoolConfigError(
                f"{cfg.origin('spooler')}: spooler = {directory}: no such directory "
                f"(from {base}); create it first"
            )


def service_problems(cfg: Any, base: str) -> list[str]:
    """What would stop the caches, spoolers or mules from starting (for --check),
    relative paths taken from ``base``; nothing is created."""
    problems = []
    checks = (
        Caches.specs,
        lambda c: mule_table(c, base),
        lambda c: check_spoolers(c, base),
        lambda c: parse_lines(c.sharedarea, c.origin("sharedarea")),
    )
    for check in checks:
        try:
            check(cfg)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def current() -> Runtime | None:
    """The runtime installed in this process (None outside procmaster's own processes)."""
    return _current


class Runtime:
    """The facts of one procmaster process, as the ``uwsgi`` module reports them."""

    def __init__(
        self,
        cfg: Any,
        scoreboard: Any,
        master_pid: int,
        started_on: int,
        is_reload: bool,
        role_is_master: bool = True,
    ) -> None:
        self.cfg = cfg
        self.scoreboard = scoreboard
        self.master_pid = master_pid
        self.started_on = started_on
        self.is_reload = is_reload
        self.locks = Locks(cfg.locks + 1)
        mules, farms = mule_table(cfg)
        self.queues = Queues(mules, farms) if role_is_master else Queues([], {})
        check_spoolers(cfg, os.getcwd())
        self.mule_id = 0
        if role_is_master:
            self.caches = Caches.from_config(cfg)
            self.areas: list[Area] = make_areas(cfg.sharedarea, cfg.origin("sharedarea"))
        else:  # a reload's check: the config must be right, the live caches stay untouched
            Caches.specs(cfg)
            self.caches = Caches([], 3600.0)
            # scratch areas of the same sizes: the app's import may use them
            self.areas = [Area(n) for n in parse_lines(cfg.sharedarea, cfg.origin("sharedarea"))]
        self.signals = Local()
        self.rpc = Rpc(cfg.rpc_max, lambda: self.role in ("master", "worker"))
        self.hub: Hub | None = None  # the master's side of the signal framework
        if role_is_master:
            self.hub = Hub(self.signals, lambda: ())
            self.signals.hub = self.hub
            self.hub.side_channels(len(mules), farms, bool(cfg.spooler))
        self.role = "master"
        self.spooler_dir = ""
        self.wid = 0
        self.slot = -1
        self.module: Any = None  # the ``uwsgi`` module object (api.install sets it)

    @classmethod
    def for_master(cls, cfg: Any, scoreboard: Any, is_reload: bool) -> Runtime:
        return cls(cfg, scoreboard, os.getpid(), int(time.time()), is_reload)

    @classmethod
    def for_probe(cls, cfg: Any) -> Runtime:
        """In a reload's check of the new app (a child of the master)."""
        return cls(cfg, None, os.getppid(), int(time.time()), True, role_is_master=False)

    def activate(self) -> None:
        global _current
        _current = self

    # -- in a worker -------------------------------------------------------------

    def enter_worker(self, wid: int, slot: int) -> None:
        """In a freshly forked worker: become that worker, run the post-fork hook."""
        self.role = "worker"
        self.wid = wid
        self.slot = slot
        self.locks.after_fork()
        for area in self.areas:
            area.after_fork()
        signal.signal(signal.SIGALRM, self._user_harakiri)
        if self.hub is not None:
            self.hub.enter_worker(wid)
            self.hub = None
        self._post_fork(f"worker {wid}")

    def _post_fork(self, who: str) -> None:
        """uWSGI's post-fork hook, in every worker, mule and spooler."""
        hook = getattr(self.module, "post_fork_hook", None)
        if callable(hook):
            try:
                hook()
            except Exception:
                log(f"{who}: uwsgi.post_fork_hook failed:\n{traceback.format_exc().rstrip()}")

    # -- in the master ------------------------------------------------------------

    def before_fork(self, wid: int) -> None:
        """Just before the master forks worker ``wid``: its signal channel exists."""
        if self.hub is not None:
            self.hub.channel(wid)

    def tick(self) -> None:
        """From the master's loop: timers, cron, file monitors, cache upkeep."""
        if self.hub is not None:
            self.hub.tick()
        self.caches.tick()

    def next_deadline(self) -> float | None:
        due = [
            d
            for d in (self.caches.next_deadline(), self.hub.next_deadline() if self.hub else None)
            if d is not None
        ]
        return min(due) if due else None

    def enter_spooler(self, directory: str) -> None:
        """In a freshly forked spooler process."""
        self._enter_other("spooler")
        self.spooler_dir = directory
        if self.hub is not None:
            self.hub.enter_spooler()
            self.hub = None
        self._post_fork(f"spooler {directory}")

    def enter_mule(self, mule_id: int) -> None:
        """In a freshly forked mule."""
        self._enter_other("mule")
        self.mule_id = mule_id
        if self.hub is not None:
            self.hub.enter_mule(mule_id, self.queues.farms_of(mule_id))
            self.hub = None
        self._post_fork(f"mule {mule_id}")

    def _enter_other(self, role: str) -> None:
        self.role = role
        self.wid = 0
        self.slot = -1
        self.locks.after_fork()
        for area in self.areas:
            area.after_fork()
        signal.signal(signal.SIGALRM, self._user_harakiri)

    def set_user_harakiri(self, seconds: int) -> None:
        """``uwsgi.set_user_harakiri``: this process ends ``seconds`` from now unless
        called again (0 disarms). The kernel's alarm, so no request pays for it."""
        if not self.cfg.master:
            log("!!! unable to set user harakiri without the master process !!!")
            return
        signal.alarm(max(0, seconds))

    def _user_harakiri(self, *_: object) -> None:
        who = f"mule {self.mule_id}" if self.mule_id else self.role
        who = f"worker {self.wid}" if self.role == "worker" else who
        log(
            f"HARAKIRI: {who} (pid {os.getpid()}) ran past uwsgi.set_user_harakiri(): "
            "killed (the master starts another)"
        )
        os.kill(os.getpid(), signal.SIGKILL)

    def export_memory(self, env: Any, undo: bool = False) -> None:
        """Before the master's re-exec: the caches' and shared areas' memory goes
        with ``env``; ``undo`` (the exec failed) takes it back out."""
        if undo:
            env.pop(CACHE_FDS_ENV, None)
            env.pop(SHAREDAREA_FDS_ENV, None)
            return
        self.caches.export(env)
        export(self.areas, env)

    def spool_dirs(self) -> list[str]:
        """The spooler directories, absolute (``spooler`` options, in order)."""
        return [os.path.abspath(d) for d in self.cfg.spooler]

    def exiting(self) -> None:
        """A worker leaving on request: ``uwsgi.atexit``, then Python's atexit handlers."""
        hook = getattr(self.module, "atexit", None)
        if callable(hook):
            try:
                hook()
            except Exception:
                log(f"worker {self.wid}: uwsgi.atexit failed:\n{traceback.format_exc().rstrip()}")
        if not self.cfg.skip_atexit:
            atexit._run_exitfuncs()
        sys.stdout.flush()
