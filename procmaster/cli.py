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
from .ipc import EMPEROR_FD_ENV, EXIT_APP_FAILED, EXIT_FATAL, PROBE_ENV, REEXEC_ENV

__all__ = ["main"]

BARE = (
    "procmaster: nothing to run: give an INI file (procmaster site.ini) or options "
    "(procmaster --http-socket :8000 --module app:application); see procmaster --help"
)


def _probe(cfg) -> int:
    """Reload check (and ``--check``'s import check), in a fresh interpreter: does
    the new config's app load? The error goes to the log (stderr) and, as one
    message, to stdout, which the caller reads; what the app prints while it is
    imported goes nowhere (the real start prints it)."""
    from . import api
    from .app import AppLoadError, load_apps, prepare_process
    from .check import transport_problems
    from .logs import log
    from .logs.files import log_problems

    report = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    problems = log_problems(cfg) + transport_problems(cfg)
    try:
        if problems:
            raise AppLoadError("\n".join(problems))
        prepare_process(cfg)
        api.install(api.Runtime.for_probe(cfg))  # the app may import uwsgi, as in the master
        load_apps(cfg)
    except api.CONFIG_ERRORS as exc:
        log(f"error: {exc}")
        return EXIT_FATAL
    except AppLoadError as exc:
        log(f"error: {exc}")
        os.write(report, f"{exc}\n".encode("utf-8", "replace"))
        return EXIT_APP_FAILED
    # the app's exit hooks (atexit) belong to the processes that serve it, not to
    # this check: leave without running them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _reload_and_wait(cfg) -> int:
    """``--reload PIDFILE --wait``: 0 once the new workers serve, else 1 and why."""
    from .control import PidfileError, ReloadFailed, reload_and_wait

    path = cfg.get("reload")
    try:
        pid, status = reload_and_wait(path, cfg.get("wait-timeout"))
    except (PidfileError, ReloadFailed) as exc:
        print(f"procmaster: --reload: {exc}", file=sys.stderr)
        return EXIT_FATAL
    print(f"procmaster: reload of master pid {pid} done ({status.detail})")
    return 0


def _start_problems(cfg) -> bool:
    """Files the master opens first (the log): a clear error now, not a traceback
    later (and before ``daemonize`` takes the terminal away)."""
    from .logs.files import log_problems

    problems = log_problems(cfg)
    for problem in problems:
        print(f"procmaster: error: {problem}", file=sys.stderr)
    return bool(problems)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv and not any(k.startswith("UWSGI_") for k in os.environ):
        print(BARE, file=sys.stderr)
        return EXIT_FATAL
    try:
        cfg = load(argv)
    except ConfigError as exc:
        print(f"procmaster: {exc}", file=sys.stderr)
        if os.environ.get(PROBE_ENV):
            print(exc)  # the probe's one message (see _probe)
        return EXIT_FATAL
    if cfg.get("help"):
        from .helpdoc import render_help

        sys.stdout.write(render_help())
        return 0
    if cfg.get("version"):
        print(f"procmaster {__version__}")
        return 0
    if cfg.get("wait"):
        if not cfg.get("reload"):
            print("procmaster: --wait goes with --reload PIDFILE", file=sys.stderr)
            return EXIT_FATAL
        return _reload_and_wait(cfg)
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
    if _start_problems(cfg):
        return EXIT_FATAL
    if cfg.get("emperor"):
        from .emperor import run as run_emperor

        return run_emperor(cfg)
    # a reload's re-executed master is already detached; a vassal is not detached
    # (as uWSGI: its emperor supervises it, daemonize only names its log)
    umask = cfg.get("umask")  # an int (the table's mode type), None when unset
    if umask is not None:
        os.umask(umask)
    if (
        cfg.get("daemonize")
        and not os.environ.get(REEXEC_ENV)
        and not os.environ.get(EMPEROR_FD_ENV)
    ):
        from .daemonize import detach

        detach()
        if umask is None:
            os.umask(0)  # as uWSGI's daemonize, unless umask is set
    # the composition root: the master gets the worker's entry point, so it imports
    # nothing of the worker (lazy, as above: the other commands never load them)
    from .master import run
    from .worker import preload, worker_main

    preload(cfg)
    return run(cfg, worker_main)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
