"""The master's start-up steps that are not its loop: descriptor limit, sockets,
pidfiles, privileges, the preloaded app.

Each step logs what it did or what went wrong in the master's words, and says
whether start-up may go on; the master's ``run`` calls them in uWSGI's order.

Must not know: workers, reloads, the loop.
"""

from __future__ import annotations

import os
import selectors
from collections.abc import Callable

from .. import daemons as daemons_mod
from .. import sockets as sockets_mod
from ..api.kept import KeptProcesses
from ..app import AppLoadError, debugger_note, load_apps, prepare_process
from ..ipc import EXIT_APP_FAILED, EXIT_FATAL, ReloadStatus, reload_status_path
from ..logs import log
from ..pidfile import remove_pidfile, write_atomically, write_pidfile
from ..privileges import PrivilegeError, drop_privileges
from ..process import set_max_fd
from ..scoreboard import STATUS_IDLE

__all__ = [
    "attach_api",
    "bind_listeners",
    "extra_processes",
    "load_app",
    "prepare_master",
    "remove_pidfiles",
    "write_pidfiles",
    "write_reload_status",
]

PIDFILE_OPTIONS = ("pidfile", "pidfile2", "safe-pidfile")


def bind_listeners(cfg, inherited: bool) -> list | None:
    """``max-fd``, then the listening sockets (bound, or handed over by systemd or
    our previous image); None when one cannot be set up (said in the log)."""
    if cfg.max_fd:
        note = set_max_fd(cfg.max_fd)
        if note:
            log(note)
    try:
        listeners = sockets_mod.bind_all(cfg)
    except sockets_mod.SocketError as exc:
        log(f"error: {exc}")
        return None
    for listener in listeners:
        how = "inherited" if listener.inherited else "bound"
        log(
            f"{listener.proto} socket {listener.address} {how} "
            f"(fd {listener.fileno()}, {listener.origin})"
        )
        if listener.option == "http" and not inherited:
            log(
                f"note: http = {listener.address} is served by the workers directly "
                "(uWSGI would start a separate HTTP router process)"
            )
    return listeners


def write_pidfiles(cfg, pid: int) -> None:
    for option in PIDFILE_OPTIONS:
        path = cfg.get(option)
        if path:
            try:
                write_pidfile(path, pid)
            except OSError as exc:
                log(
                    f"warning: {cfg.origin(option)}: cannot write {option} {path!r}: {exc.strerror}"
                )


def remove_pidfiles(cfg, pid: int) -> None:
    for option in PIDFILE_OPTIONS:
        path = cfg.get(option)
        if path:
            if remove_pidfile(path, pid):
                _remove_status(reload_status_path(path), pid)


def _remove_status(path: str, pid: int) -> None:
    status = ReloadStatus.read(path)
    if status is not None and status.pid == pid:
        try:
            os.unlink(path)
        except OSError:
            pass


def write_reload_status(
    cfg, pid: int, reloads: Callable[[], int], state: str, reason: str, detail: str
) -> None:
    """A reload's outcome beside each pidfile (``ipc.ReloadStatus``), written whole,
    for ``procmaster --reload PIDFILE --wait``."""
    for option in PIDFILE_OPTIONS:
        path = cfg.get(option)
        if path:
            status = ReloadStatus(pid, reloads(), state, reason, detail)
            try:
                write_atomically(reload_status_path(path), status.encode())
            except OSError as exc:
                log(f"warning: cannot write {reload_status_path(path)!r}: {exc.strerror}")


def prepare_master(cfg) -> int:
    """Drop privileges, then ``env``/``chdir``/``pythonpath``...: 0, or the exit code."""
    try:
        for line in drop_privileges(cfg):
            log(line)
        log.open_logto2(cfg)
        prepare_process(cfg)
    except (PrivilegeError, AppLoadError) as exc:
        log(f"error: {exc}")
        return EXIT_FATAL
    return 0


def load_app(cfg, inherited: bool):
    """The preloaded app (None when it did not load and ``need-app`` is off), or
    the exit code (an int) when start-up must stop."""
    try:
        apps = load_apps(cfg)
    except AppLoadError as exc:
        log(f"error: {exc}")
        if cfg.need_app:
            log("no app loaded: exiting (need-app)")
            return EXIT_APP_FAILED
        return None
    if not inherited:
        note = debugger_note(apps, cfg)
        if note:
            log(note)
    return apps


def attach_api(runtime, sel: selectors.BaseSelector, table) -> None:
    """The uwsgi module's master side: signal channels read in the master's
    selector, signals routed to the current workers (idle ones first)."""
    board = table.board

    def workers() -> list[tuple[int, bool]]:
        return [(w.wid, board.read(w.slot).status == STATUS_IDLE) for w in table.current()]

    def register(sock, handler) -> None:
        sel.register(sock, selectors.EVENT_READ, handler)

    runtime.hub.workers = workers
    runtime.hub.attach(register)


def extra_processes(cfg, runtime, fork_spooler, fork_mule):
    """What the master runs besides workers: attach-daemon/cron (``daemons``), the
    spoolers and the mules (``api``), as one group, or None when there is none."""
    members = []
    daemons = daemons_mod.from_config(cfg, log)
    if daemons is not None:
        members.append(daemons)
    spoolers = [
        (f"spooler {d}", d) for d in runtime.spool_dirs() for _ in range(cfg.spooler_processes)
    ]
    if spoolers:
        members.append(KeptProcesses(spoolers, fork_spooler, log))
    mules = [(f"mule {mid}", mid) for mid in range(1, len(runtime.queues.mules) + 1)]
    if mules:
        members.append(KeptProcesses(mules, fork_mule, log))
    if not members:
        return None
    return members[0] if len(members) == 1 else daemons_mod.Group(members)
