"""py-autoreload in a worker, WSGI or ASGI alike: tell the master where the
worker's modules come from.

Theory of operation
-------------------
The master watches files; only a worker knows which modules its app imported
(at start, and lazily later). ``report_modules`` is called at start and at each
sweep: when ``sys.modules`` grew since the last call, it writes the source file of
each new module to the ready pipe, one ``ipc`` line each, written whole.

Must not know: what the master does with a file, how the worker serves.
"""

from __future__ import annotations

import os
import sys

from ..ipc import encode_module

__all__ = ["report_modules"]


def report_modules(proc) -> None:
    """``proc`` (a worker) has ``nmodules``, ``modules_seen`` and ``ready_fd``."""
    if len(sys.modules) == proc.nmodules:
        return
    # lazy: watch needs inotify_simple, which only py-autoreload uses
    from ..watch import module_files

    proc.nmodules = len(sys.modules)
    for path in module_files(proc.modules_seen):
        try:
            os.write(proc.ready_fd, encode_module(path))
        except OSError:
            return
