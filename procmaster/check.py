"""``procmaster --check site.ini``: the resolved configuration and a migration
report (what procmaster does with each option the file uses), without starting.

Theory of operation
-------------------
The verdict "would start" must hold when the start is tried, so ``--check``
finds what the start would refuse, with the start's own words:

* the config itself (no socket, no app), here;
* the files the master opens before anything else (``logto``, ``logto2``,
  ``daemonize``, ``logger``/``req-logger = file:PATH``): ``logs.files.log_problems``,
  which the start (``cli``) also calls first (without importing this module), so a
  missing log directory is one clear line there too;
* the paths of the app (``chdir``, ``virtualenv``, ``wsgi-file``): the app part's
  ``path_problems``;
* the app import itself, in a forked child that does what the master does
  before it forks its workers (the same ``env``, ``chdir``, ``virtualenv`` and
  ``pythonpath`` set-up, then the import), so nothing the app does at import
  time happens in this process. It costs the app's import time (a fork, not a
  new interpreter); ``--check-no-import`` leaves it out.

Owns: the report's wording and the verdict "would start / would not start".
Must not know: how anything is served; it reads the option table and the Config.
"""

from __future__ import annotations

import importlib.util
import os
import select
import signal
import sys
import time

from . import options as _options
from .api import service_problems, subsystems
from .app import AppLoadError, asgi_not_applied, load_apps, path_problems, prepare_process
from .hooks import Hooks
from .ipc import describe_exit
from .logs.files import log_problems
from .options.differences import RULES, differs
from .privileges import PrivilegeError, drop_privileges
from .routing.rules import check_routes
from .sockets import SocketError, check_transports, socket_specs

__all__ = [
    "IMPORT_TIMEOUT",
    "import_problems",
    "log_problems",
    "render_check",
    "transport_problems",
]

IMPORT_TIMEOUT = 120.0  # seconds the app import may take in --check

_HEADINGS = {
    _options.FULL: "supported",
    _options.PARTIAL: "partly supported",
    _options.ACCEPTED: "accepted without effect",
    _options.UNSUPPORTED: "not supported",
}


def _problems(cfg) -> list[str]:
    """Why procmaster would not start with this config (empty: it would)."""
    problems = []
    if cfg.emperor:
        return problems  # an emperor serves nothing itself: its vassals do
    if not cfg.sockets_in_order():
        problems.append(
            "no socket: set http-socket (e.g. 127.0.0.1:8000), socket (uwsgi protocol), "
            "fastcgi-socket or scgi-socket"
        )
    if not (cfg.module or cfg.wsgi_file or cfg.mount or cfg.asgi):
        problems.append(
            "no app: set module (pkg.mod:app), wsgi-file (path.py), mount, or asgi (pkg.mod:app)"
        )
    known = set(_options.socket_options().values())
    if cfg.protocol and cfg.protocol not in known | {"http11"}:  # as sockets.default_protocol
        problems.append(
            f"{cfg.origin('protocol')}: option 'protocol': {cfg.protocol!r} is not a protocol "
            f"procmaster speaks ({', '.join(sorted(known))})"
        )
    else:
        problems += transport_problems(cfg)
    try:  # route, add-header and hook lines, read as the master reads them at start
        check_routes(cfg)
        Hooks.from_config(cfg.entries)
    except ValueError as exc:  # RouteError, HookError
        problems.append(str(exc))
    problems += service_problems(cfg, cfg.chdir or os.getcwd())  # caches, spoolers, mules
    return problems


def transport_problems(cfg) -> list[str]:
    """TLS fields and files, the PROXY protocol's trusted networks, checked as the
    start checks them (also by a reload's probe: a certificate swapped for a broken
    one fails the reload, and the old workers go on serving)."""
    try:
        check_transports(cfg, socket_specs(cfg))
    except SocketError as exc:
        return [str(exc)]
    return []


def _watch_problems(cfg) -> list[str]:
    """Watched paths whose directory does not exist: such a watch never fires. In
    the order the config declares them (the table says which options are watches)."""
    watched = _options.watch_options()
    problems = []
    for entry in cfg.entries:
        if entry.key not in watched:
            continue
        path = entry.value
        if not os.path.isabs(path) and cfg.chdir:
            path = os.path.join(cfg.chdir, path)  # relative to chdir, as the master
        if os.path.isdir(path):
            continue
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            problems.append(
                f"{entry.origin}: option '{entry.key}': {path!r} can never be "
                f"watched: directory {directory!r} does not exist"
            )
    return problems


def import_problems(cfg, timeout: float = IMPORT_TIMEOUT) -> list[str]:
    """Import the app in a forked child, as the master does before it forks its
    workers (``uid``/``gid``, ``env``, ``chdir``, ``virtualenv``, ``pythonpath``,
    then the import):
    the error the start would give, or nothing. What the app prints while it is
    imported goes nowhere (the real start shows it)."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read_end)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            try:
                drop_privileges(cfg)  # uid/gid first, as the master: the app as that user
                prepare_process(cfg)
                load_apps(cfg)
                code = 0
            except (AppLoadError, PrivilegeError) as exc:
                os.write(write_end, str(exc).encode("utf-8", "replace"))
            except BaseException as exc:  # SystemExit, KeyboardInterrupt from the app
                why = f"importing the app raised {type(exc).__name__}: {exc}"
                os.write(write_end, why.encode("utf-8", "replace"))
        finally:
            os._exit(code)
    os.close(write_end)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return [f"the app import did not finish within {timeout:g}s (the start would wait)"]
            chunk = os.read(read_end, 65536)
            if not chunk:
                break  # the child exited (or closed the pipe)
            chunks.append(chunk)
    finally:
        os.close(read_end)
    status = os.waitpid(pid, 0)[1]
    if os.waitstatus_to_exitcode(status) == 0:
        return []
    text = b"".join(chunks).decode("utf-8", "replace").strip()
    return [text or f"the app import check ended: {describe_exit(status)}"]


def _start_problems(cfg) -> list[str]:
    """Everything the start would refuse, in the order the start meets it."""
    problems = _problems(cfg)
    if cfg.emperor:
        return problems
    problems += log_problems(cfg)
    if problems:
        return problems
    problems += path_problems(cfg)
    if problems or cfg.get("check-no-import"):
        return problems
    return import_problems(cfg)


def _asgi_report(cfg) -> list[str]:
    """``asgi = ...``: how the app is run, and the options it does not apply."""
    harakiri = (
        f"harakiri {cfg.harakiri}s cancels a request's task (the worker is killed only "
        "when its loop is blocked)"
        if cfg.harakiri
        else "no harakiri"
    )
    loop = cfg.asgi_loop
    if loop == "auto":
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    lines = [
        f" app runner: ASGI 3 ({cfg.origin('asgi')}: asgi = {cfg.asgi}): one {loop} loop per "
        f"worker, http, websocket and lifespan scopes; lifespan startup before accepting, shutdown "
        f"within worker-reload-mercy ({cfg.worker_reload_mercy:g}s); {harakiri}",
    ]
    ignored = asgi_not_applied(cfg)
    if ignored:
        lines.append(f" not applied to an ASGI app ({len(ignored)}): {', '.join(ignored)}")
    return lines


def render_check(cfg) -> tuple[str, bool]:
    """(report text, True when procmaster would start with ``cfg``)."""
    out = [cfg.as_ini(), ""]
    seen: dict[_options.Option, list] = {}  # families (hook-*) have no BY_NAME entry
    for entry in cfg.entries:
        opt = _options.lookup(entry.key)
        if opt is None or opt.cli_only or entry.key == "ini":
            continue  # (--check, --check-no-import ... are not the site's options)
        seen.setdefault(opt, []).append(entry)
    by_status: dict[str, list[str]] = {status: [] for status in _HEADINGS}
    for opt, uses in seen.items():
        note = f": {opt.note}" if opt.note else ""
        if opt.status != _options.PARTIAL or opt.name not in RULES:
            by_status[opt.status].append(f"  {opt.name} ({uses[0].origin}){note}")
            continue
        # a PARTIAL row whose difference is the value's: each use that differs, at
        # its file:line, with what differs; the others are read as uWSGI reads them
        differ = [(e, differs(opt.name, e.key, str(e.value), i)) for i, e in enumerate(uses)]
        for e, what in differ:
            if what:
                by_status[opt.status].append(f"  {e.key} ({e.origin}): {what}")
        if not all(what for _, what in differ):
            same = next(e for e, what in differ if not what)
            by_status[_options.FULL].append(
                f"  {opt.name} ({same.origin}): as uWSGI with this value"
            )
    out.append("migration report")
    for status, heading in _HEADINGS.items():
        rows = by_status[status]
        if rows:
            out.append(f" {heading} ({len(rows)}):")
            out.extend(rows)
    if cfg.asgi:
        out.extend(_asgi_report(cfg))
    rows, given = subsystems(), {_options.lookup(e.key) for e in cfg.entries}
    out.append(f" uWSGI API for apps, supported ({len(rows)}):")
    for name, _, opts in rows:  # (what each serves: the README and api.SUBSYSTEMS)
        used = [o for o in opts if _options.lookup(o) in given]
        out.append(f"  {name}" + (f" [configured here: {', '.join(used)}]" if used else ""))
    if cfg.warnings:
        out.append(f" warnings ({len(cfg.warnings)}):")
        out.extend(f"  {w}" for w in cfg.warnings)
    unwatchable = _watch_problems(cfg)
    if unwatchable:
        out.append(f" watched paths that do not work ({len(unwatchable)}):")
        out.extend(f"  {p}" for p in unwatchable)
    problems = _start_problems(cfg)
    if problems:
        out.append(" procmaster would NOT start:")
        out.extend("  " + p.replace("\n", "\n  ") for p in problems)
    else:
        imported = "" if cfg.emperor or cfg.get("check-no-import") else " (the app imports)"
        out.append(f" procmaster would start with this configuration{imported}.")
    return "\n".join(out) + "\n", not problems
