"""The master: the arbiter that binds, forks, watches, reloads and stops.

The parts:

* ``arbiter`` -- ``Master``, the loop and its ``handle_*`` handlers; ``run``.
* ``workers`` -- the worker table: fork, reap, respawn back-off, stop, murder.
* ``reload`` -- ``ReloadRequest`` and the ``ReloadPlanner`` state machine.
* ``reexec`` -- a full reload's probe and exec, and taking over after it.
* ``triggers`` -- signals, FIFO letters, touched files, emperor words -> actions.
* ``startup`` -- descriptor limit, sockets, pidfiles, privileges, the preloaded app.
* ``vassal`` -- the pipe to our emperor when this master is a vassal.

Must not know: HTTP, WSGI, protocols, static files, what a worker does (the
worker's entry point is handed to ``run`` by ``procmaster.cli``).
"""

from __future__ import annotations

from .arbiter import Master, WorkerEntry, run
from .reload import ReloadKind, ReloadPlanner, ReloadRequest

__all__ = ["Master", "ReloadKind", "ReloadPlanner", "ReloadRequest", "WorkerEntry", "run"]
