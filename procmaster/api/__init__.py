"""uWSGI's Python API for apps written for uWSGI: ``import uwsgi``, ``uwsgidecorators``.

Theory of operation
-------------------
uWSGI's ``uwsgi`` module exists only inside uWSGI's processes; apps use an
ImportError to tell whether they run under it. So here: ``install(runtime)``
puts a finder first on ``sys.meta_path`` of procmaster's own master (before the
app is loaded) and, through the fork, of its workers. It serves two names:
``uwsgi`` (``face.build``: one module per process, bound to the runtime) and
``uwsgidecorators`` (``decorators``), ahead of any ``uwsgidecorators.py`` that
an installed uWSGI left on ``sys.path``. Nowhere else (``procmaster --check``'s
own process, a test importing procmaster) does ``import uwsgi`` succeed.

Parts: ``runtime`` (the process's facts and hooks), ``face`` (the module's
functions), ``decorators``, ``locks`` (user locks across processes), ``cache``
(one shared-memory cache) and ``caches`` (an instance's caches, kept across a
reload), ``signals``, ``spooler``/``spool_files``, ``mules``, ``sharedarea``,
``rpc``, ``logvars``. ``SUBSYSTEMS`` says what of uWSGI's API is served (for
``--check``): one row per subsystem with the options that configure it.

Must not know: sockets, protocols, the worker's loop, the master's reload plan.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

from .caches import CacheConfigError
from .mules import MuleConfigError
from .runtime import Runtime, SpoolConfigError, current, service_problems
from .sharedarea import SharedAreaError

__all__ = [
    "CONFIG_ERRORS",
    "Runtime",
    "SUBSYSTEMS",
    "current",
    "install",
    "service_problems",
    "subsystems",
]

# (subsystem, what is served, the options that configure it)
SUBSYSTEMS = (
    ("uwsgi module", "import uwsgi in workers, mules and spoolers (ImportError elsewhere); "
     "uwsgi.procmaster holds procmaster's version", ()),
    ("uwsgidecorators", "postfork, atexit, lock, thread, harakiri, signal, timer, rbtimer, "
     "cron, filemon, spool, spoolforever, spoolraw, mulefunc, mule, muleloop, mulemsg, farm, "
     "rpc", ()),
    ("cache", "cache_get/set/update/del/exists/clear/keys/inc/dec/mul/div/num",
     ("cache2", "cache")),
    ("spooler", "uwsgi.spool, spoolers supervised by the master", ("spooler",)),
    ("mules", "mule scripts, programmed mules, farms, mule_msg/mule_get_msg",
     ("mule", "mules", "farm")),
    ("signals/timers/cron", "register_signal, signal, add_timer, add_rb_timer, add_cron, "
     "add_file_monitor; targets worker(s), mule(s), farms, spooler", ()),
    ("locks", "lock/unlock/is_locked across processes", ("locks",)),
    ("sharedarea", "sharedarea_read/write/8..64/inc/dec/memoryview/locks", ("sharedarea",)),
    ("rpc", "register_rpc, call, rpc_list, rpc on the local node (not to other nodes)",
     ("rpc-max",)),
    ("log variables", "set_logvar/get_logvar as %(name) in log-format", ("log-format",)),
)  # fmt: skip


def subsystems() -> list[tuple[str, str, tuple[str, ...]]]:
    """``SUBSYSTEMS``, plus WebSockets when this build has them (``api.websocket``)."""
    rows = list(SUBSYSTEMS)
    if importlib.util.find_spec(f"{__name__}.websocket") is not None:
        rows.append(("websockets", "websocket_handshake/recv/recv_nb/send/send_binary", ()))
    return rows


# what a config can get wrong about the services (the message names file:line)
CONFIG_ERRORS = (CacheConfigError, MuleConfigError, SpoolConfigError, SharedAreaError)

_DECORATORS = os.path.join(os.path.dirname(__file__), "decorators.py")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``uwsgi`` and ``uwsgidecorators`` in this process."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if name == "uwsgi":
            return ModuleSpec(name, self, origin="procmaster")
        if name == "uwsgidecorators":
            return importlib.util.spec_from_file_location(name, _DECORATORS)
        return None

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return self.runtime.module

    def exec_module(self, module: ModuleType) -> None:
        pass


def install(runtime: Runtime) -> None:
    """Make ``import uwsgi`` and ``import uwsgidecorators`` work in this process."""
    # lazily: the module's functions (face, with the spooler's, the mules', the shared
    # areas' and the WebSocket names) are loaded by the processes that install it,
    # not by ``--check``, which only reads SUBSYSTEMS and the service problems
    from .face import build

    runtime.module = build(runtime)
    runtime.activate()
    sys.meta_path.insert(0, _Finder(runtime))
