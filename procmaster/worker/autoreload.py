"""The ready pipe in a worker, WSGI or ASGI alike: say the worker accepts, and
for py-autoreload tell the master where the worker's modules come from.

Theory of operation
-------------------
``say_ready`` writes the worker's ready line once its loop accepts. The master
image that forked the worker may have re-executed meanwhile (a reload while the
worker started): the pipe is broken then, and the new image, which adopted the
worker as an old one, asks it to stop; so a broken pipe is never fatal here.
The master watches files; only a worker knows which modules its app imported
(at start, and lazily later). ``report_modules`` is called at start and at each
sweep: when ``sys.modules`` grew since the last call, it writes the source file of
each new module to the ready pipe, one ``ipc`` line each, written whole.

Must not know: what the master does with a file, how the worker serves.
"""

from __future__ import annotations

import os
import sys

from ..ipc import encode_module, encode_ready

__all__ = ["report_modules", "say_ready"]


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


def say_ready(proc) -> None:
    """The ready line, then the pipe kept for py-autoreload's reports or closed.
    ``proc`` (a worker) has ``ready_fd`` and ``autoreload``."""
    try:
        os.write(proc.ready_fd, encode_ready(os.getpid()))
    except OSError:
        pass  # the image that forked us is gone (re-executed): it asks us to stop
    if proc.autoreload:
        report_modules(proc)
    else:
        os.close(proc.ready_fd)
