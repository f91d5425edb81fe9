"""The ``procmaster`` command: read the config, then run a master, or an emperor
with ``--emperor`` (or answer ``--help``, ``--version``, ``--check``, or signal a
running master named in a pidfile: ``--reload``/``--stop``/``--chain-reload PIDFILE``).

Every command's modules are imported lazily, inside ``main``: ``--help`` or
``--stop`` must not pay for importing the master, the worker or the emperor, and
the emperor never loads the worker. ``main`` is also the composition root: it
hands the worker's entry point to the master.

Owns: the process exit codes of the command and the one place where a
``ConfigError`` becomes a message on stderr. Must not know: how anything is served.
"""

from __future__ import annotations

import os
import sys

from . import __version__
from .config import ConfigError, load
from .ipc import EXIT_APP_FAILED, EXIT_FATAL, PROBE_ENV, REEXEC_ENV

__all__ = ["main"]


def _probe(cfg) -> int:
    """Reload check, in a fresh interpreter: does the new config's app load?"""
    from . import api
    from .app import AppLoadError, load_apps, prepare_process
    from .logs import log

    try:
        prepare_process(cfg)
        api.install(api.Runtime.for_probe(cfg))  # the app may import uwsgi, as in the master
        load_apps(cfg)
    except api.CONFIG_ERRORS as exc:
        log(f"error: {exc}")
        return EXIT_FATAL
    except AppLoadError as exc:
        log(f"error: {exc}")
        return EXIT_APP_FAILED
    # the app's exit hooks (atexit) belong to the processes that serve it, not to
    # this check: leave without running them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        cfg = load(argv)
    except ConfigError as exc:
        print(f"procmaster: {exc}", file=sys.stderr)
        return EXIT_FATAL
    if cfg.get("help"):
        from .helpdoc import render_help

        sys.stdout.write(render_help())
        return 0
    if cfg.get("version"):
        print(f"procmaster {__version__}")
        return 0
    for command in ("reload", "stop", "chain-reload"):
        if cfg.get(command):
            from .control import PidfileError, signal_pidfile

            try:
                pid = signal_pidfile(command, cfg.get(command))
            except PidfileError as exc:
                print(f"procmaster: --{command}: {exc}", file=sys.stderr)
                return EXIT_FATAL
            print(f"procmaster: {command} sent to master pid {pid}")
            return 0
    if os.environ.pop(PROBE_ENV, None):
        return _probe(cfg)
    if cfg.get("check"):
        from .check import render_check

        text, ok = render_check(cfg)
        sys.stdout.write(text)
        return 0 if ok else 1
    for item in cfg.print:
        print(item, flush=True)
    if cfg.get("show-config"):
        sys.stdout.write(cfg.as_ini())
        sys.stdout.flush()
    if cfg.get("emperor"):
        from .emperor import run as run_emperor

        return run_emperor(cfg)
    if cfg.get("daemonize") and not os.environ.get(REEXEC_ENV):
        from .daemonize import detach

        detach()  # a reload's re-executed master is already detached
    # the composition root: the master gets the worker's entry point, so it imports
    # nothing of the worker (lazy, as above: the other commands never load them)
    from .master import run
    from .worker import worker_main

    return run(cfg, worker_main)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
