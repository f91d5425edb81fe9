"""The arbiter: the master's loop and its handlers.

Theory of operation
-------------------
One selector: the signal wake-up pipe, the workers' ready pipe, the inotify fd,
the emperor's pipe, the stats socket, the master FIFO. Each registration's data
is the bound method that handles it, so the loop is ``key.data()``. The timeout
is the earliest real deadline (a mercy, a respawn back-off, a debounced file, a
guard, a daemon, sd_notify's watchdog); nothing polls: the reload check is a
child, so its exit wakes the loop through SIGCHLD like a worker's. After every
wake-up ``after_wakeup`` reaps, murders, runs the guards and respawns.

Signals, FIFO letters, touched files and emperor words are rows of
``procmaster.master.triggers``, whose actions get this master as ``Controls``.
Every reload is a ``ReloadRequest`` to the ``ReloadPlanner``, which is handed
``TableOps`` (the worker table, the probe, the exec), never the master; guards,
stats and the FIFO likewise get narrow hooks. The worker's entry point comes
from the composition root (``cli``): the master imports nothing of the worker,
protocols, WSGI or static files, and runs no app code after the fork.

Must not know: HTTP, WSGI, protocols, what a worker does.
"""

from __future__ import annotations

import os
import selectors
import signal
import time
import traceback
from collections.abc import Callable
from functools import partial
from itertools import zip_longest

from .. import api
from .. import daemons as daemons_mod
from .. import sockets as sockets_mod
from ..control import MasterFifo
from ..guards import GuardHooks, MasterGuards, initial_workers
from ..hooks import HookError, hooks_for
from ..ipc import (
    CWD_ENV,
    EXIT_FATAL,
    MASTER_ASKS,
    SIG_PAUSE,
    SIG_PRINT_REQUEST,
    SIG_REOPEN_LOG,
    SIG_RESUME,
    LineReader,
    ModuleMessage,
    ReexecState,
    decode_ready_pipe,
    describe_exit,
    recycled,
)
from ..logs import log
from ..process import (
    process_name,
    read_signals,
    reap_children,
    send_signal,
    set_process_name,
    signal_pipe,
)
from ..routing.rules import RouteError, check_routes
from ..systemd import Notifier
from .children import ForkedChildren
from .observe import start_stats
from .reexec import FullReload
from .reload import ReloadPlanner, ReloadRequest
from .startup import (
    attach_api,
    bind_listeners,
    extra_processes,
    load_app,
    prepare_master,
    remove_pidfiles,
    write_pidfiles,
    write_reload_status,
)
from .triggers import EMPEROR_ACTIONS, FIFO_LETTERS, SIGNAL_ACTIONS, FileTriggers
from .vassal import VassalLink
from .workers import TableOps, WorkerProc, WorkerTable, forker, worker_ceiling

__all__ = ["Master", "WorkerEntry", "run"]

# (wid, cfg, listeners, apps, ready fd, scoreboard, slot, master pid, lazy loader); never returns
WorkerEntry = Callable[..., None]
HANDLED_SIGNALS = tuple(SIGNAL_ACTIONS)
DAEMON_MERCY = 5.0  # seconds attached daemons get to stop before SIGKILL


class Master(ForkedChildren):
    def __init__(self, cfg, worker_main: WorkerEntry) -> None:
        log.configure(cfg)
        self.cfg = cfg
        self.worker_main = worker_main
        self.pid = os.getpid()
        self.start_cwd = os.environ.get(CWD_ENV) or os.getcwd()
        os.environ[CWD_ENV] = self.start_cwd
        self.full = FullReload(cfg.argv, self.start_cwd, log)
        self.lazy = cfg.lazy_apps  # ``lazy`` stores into lazy-apps
        self.notifier = Notifier()
        self.listeners: list = []
        self.apps = None
        self.sel = selectors.DefaultSelector()
        self.signal_r = -1
        self.ready_r = self.ready_w = -1
        self.ready_lines = LineReader()
        self.stopping = False  # graceful or immediate shutdown in progress
        self.exit_code = 0
        self.paused = False
        processes = initial_workers(cfg)  # SIGTTIN/SIGTTOU and cheaper change it
        ceiling = worker_ceiling(max(processes, cfg.processes))
        self.old_board, board = self.full.boards(3 * ceiling + 8, cfg.threads)
        blocked = (*HANDLED_SIGNALS, *MASTER_ASKS)  # pending in a new worker until its loop runs
        fork = forker(self._run_worker, blocked, self._before_fork, self._after_fork)
        self.table = WorkerTable(board, fork, log, processes, ceiling)
        self.mercy = cfg.worker_reload_mercy
        ops = TableOps(
            self.table,
            self.mercy,
            lambda request: self.full.start_probe(log.fd, self.shed_clients),
            self.exec_master,
            self.notifier.reloading,
        )
        report = partial(write_reload_status, cfg, self.pid, lambda: self.planner.reloads)
        self.planner = ReloadPlanner(ops, log, lazy=self.lazy, report=report)
        self.files = FileTriggers()  # touch-reload, fs-reload, py-autoreload ...
        self.guards = MasterGuards(
            cfg,
            GuardHooks(
                workers=self.table.all,
                current=self.table.current,
                processes=lambda: self.table.processes,
                change_workers=self.change_workers,
                resting=lambda: self.stopping or self.planner.busy,
                threads=board.cores,
            ),
        )
        self.emperor = VassalLink.from_environ()  # this master is a vassal of an emperor
        self.daemons: daemons_mod.Daemons | None = None  # attach-daemon, cron ...
        self.stats = None  # the stats.StatsServer, when stats is set (observe)
        self.pushers = None  # stats-push, carbon (stats.push.Pushers)
        self.runtime: api.Runtime  # what the uwsgi module knows, and the caches (set by run)
        self.fifo: MasterFifo | None = None

    # -- start-up ------------------------------------------------------------------

    def run(self) -> int:
        # started as a shell's background job, SIGINT is ignored: it means "stop now"
        # here from the first moment, the app's import included (our handler is set later)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        cfg = self.cfg
        inherited = self.full.inherited
        if not inherited:
            for line in cfg.warnings:
                log(f"warning: {line}")
        try:  # hook-* and route lines: every syntax error before anything runs
            hooks = self.hooks = hooks_for(cfg)
            check_routes(cfg)
        except (HookError, RouteError, ValueError) as exc:
            log(f"error: {exc}")
            return EXIT_FATAL
        # as uWSGI: the as-root hooks before the sockets are bound (they may make
        # the socket's directory); as-user once privileges are dropped
        listeners = hooks.run_all("asap", "pre-jail", "in-jail", "post-jail", "as-root") and (
            bind_listeners(cfg, inherited is not None)
        )
        if not listeners:
            return EXIT_FATAL
        self.listeners[:] = listeners
        write_pidfiles(cfg, self.pid)
        code = prepare_master(cfg) or (0 if hooks.run("as-user") else EXIT_FATAL)
        if code:
            return code
        # the uwsgi module (and its caches), for the app imported here or in the workers
        try:
            self.runtime = api.Runtime.for_master(cfg, self.table.board, inherited is not None)
        except api.CONFIG_ERRORS as exc:
            log(f"error: {exc}")
            return EXIT_FATAL
        api.install(self.runtime)
        attach_api(self.runtime, self.sel, self.table)
        with self.capturing(inherited):  # log-master: the app's prints while it imports
            if not self.lazy:
                apps = load_app(cfg, inherited is not None) if hooks.run("pre-app") else EXIT_FATAL
                if isinstance(apps, int) or not hooks.run("post-app"):
                    return apps if isinstance(apps, int) else EXIT_FATAL
                self.apps = apps
        name = process_name(cfg, "master")
        if name:
            set_process_name(name)
        self.setup_signals()
        if self.files.setup(cfg, log):
            self.sel.register(self.files.fileno(), selectors.EVENT_READ, self.files.on_readable)
        self.setup_control()
        if self.emperor is not None:
            self.sel.register(self.emperor.fileno(), selectors.EVENT_READ, self.handle_emperor)
        if inherited:
            self.adopt(inherited)
        for wid in range(1, self.table.processes + 1):
            self.table.spawn(wid)
        self.daemons = extra_processes(cfg, self.runtime, self._fork_spooler, self._fork_mule)
        if self.daemons is not None:
            self.daemons.start()
        if not hooks.run("master-start"):
            self.exit_code = EXIT_FATAL
            self.stop_now("hook-master-start failed")
        log(
            f"procmaster master pid {self.pid}: {self.table.processes} worker(s), "
            f"{'lazy apps (loaded in each worker)' if self.lazy else 'app preloaded'}"
        )
        return self.loop()

    def setup_signals(self) -> None:
        self.signal_r = signal_pipe(HANDLED_SIGNALS)
        # blocked by our previous image across a reload's exec: deliver them now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
        self.sel.register(self.signal_r, selectors.EVENT_READ, self.handle_signals)
        self.ready_r, self.ready_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sel.register(self.ready_r, selectors.EVENT_READ, self.handle_ready)

    def setup_control(self) -> None:
        """The stats server, the stats pushers and the master FIFO (see their modules)."""
        cfg = self.cfg
        self.stats, self.pushers = start_stats(self)
        fifos = cfg.master_fifo
        letters = {k: (what, partial(act, self)) for k, (what, act) in FIFO_LETTERS.items()}
        try:
            if fifos:
                self.fifo = MasterFifo(fifos, letters, self.sel)
        except OSError as exc:
            log(f"warning: {cfg.origin('master-fifo', 0)}: cannot open {fifos[0]!r}: {exc}")

    def shed_clients(self) -> int:
        """Out of descriptors for a reload's check: close the stats clients."""
        return self.stats.shed() if self.stats is not None else 0

    def adopt(self, state: ReexecState) -> None:
        """Workers of our previous image (before a reload's exec): they keep their
        scoreboard slots and serve until the new ones are ready."""
        board = self.old_board
        for (pid, wid), slot in zip_longest(state.old, state.old_slots, fillvalue=-1):
            try:
                os.kill(pid, 0)
            except OSError:
                continue
            self.table.adopt(pid, wid, slot if board is not None else -1, board)
        self.planner.adopt(state)

    # -- the loop ------------------------------------------------------------------

    def loop(self) -> int:
        while True:
            for key, _ in self.sel.select(self.next_timeout()):
                key.data()
            self.after_wakeup()
            if self.stopping and not self.table and self.daemons_stopped():
                return self.shutdown_done()

    def after_wakeup(self) -> None:
        now = time.monotonic()
        for action, reason in self.files.due(now):
            action(self, reason)
        for part in (self.stats, self.pushers):
            if part is not None:
                part.tick(now)
        self.reap_workers()
        self.check_probe()
        self.runtime.tick()
        self.table.murder()
        self.guards.check()
        if not self.stopping:
            self.table.respawn_due()
            if self.daemons is not None:
                self.daemons.tick()
        if self.full.waiting is not None and self.daemons_stopped():
            self.reexec()
        if self.notifier.enabled:
            self.notify_systemd()

    def next_timeout(self) -> float | None:
        deadlines = [
            self.table.next_deadline(),
            self.files.deadline(),
            self.guards.next_deadline(),
            self.notifier.deadline(),
            self.stats and self.stats.deadline(),
            self.pushers and self.pushers.deadline(),
            self.runtime.next_deadline(),
        ]
        daemons = self.daemons
        if daemons is not None and (daemons.halted or not self.stopping):
            deadlines.append(daemons.next_deadline())
        due = [d for d in deadlines if d is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def handle_signals(self) -> None:
        for signum in read_signals(self.signal_r):
            action = SIGNAL_ACTIONS.get(self.hooks.signal_map.get(signum, signum))
            if action is not None:
                action(self, signal.Signals(signum).name)

    def handle_ready(self) -> None:
        try:
            data = os.read(self.ready_r, 4096)
        except BlockingIOError:
            return
        for message in decode_ready_pipe(self.ready_lines.feed(data)):
            if isinstance(message, ModuleMessage):  # a worker imported it (py-autoreload)
                self.files.module_imported(message.path)
            else:
                self.table.mark_ready(message.pid)
                if self.paused:  # a worker started (respawned) while we are paused
                    send_signal(message.pid, SIG_PAUSE)
        self.planner.progress()
        self.tell_emperor_ready()

    def handle_emperor(self) -> None:
        """Words from our emperor; end of file: the emperor is gone."""
        words = self.emperor.read()
        if words is None:
            self.sel.unregister(self.emperor.fileno())
            self.emperor = None
            log("the emperor is gone: stopping")
            self.graceful_stop()
            return
        for word in words:
            action = EMPEROR_ACTIONS.get(word)
            if action is not None:
                action(self, "the emperor")

    def tell_emperor_ready(self) -> None:
        """Tell our emperor once every worker of this image is ready."""
        link = self.emperor
        if link is not None and not link.ready_sent and not self.planner.busy:
            if self.table.all_ready():
                link.ready()

    def reap_workers(self) -> None:
        for pid, status in reap_children():
            if self.full.reaped(pid, status):
                continue
            if self.daemons is not None and self.daemons.reaped(pid, status):
                continue
            proc = self.table.ended(pid, status)
            if proc is not None and not proc.stop_sent and not self.stopping:
                self.worker_exited(proc, status)

    def worker_exited(self, proc: WorkerProc, status: int) -> None:
        """A worker ended on its own: log it, respawn it, or abort a reload."""
        how = describe_exit(status)
        if proc.generation != self.table.generation:
            log(f"old worker {proc.wid} (pid {proc.pid}) {how}")
            return
        if recycled(status) and proc.ready:
            log(f"worker {proc.wid} (pid {proc.pid}) stopped to be replaced; respawning")
            self.table.respawn_now(proc.wid)
        elif not proc.ready and self.planner.replacing:
            log(f"new worker {proc.wid} (pid {proc.pid}) {how} before it was ready")
            self.planner.abort("the new workers do not start")
            return
        else:
            age = time.monotonic() - proc.born
            log(f"worker {proc.wid} (pid {proc.pid}) {how} after {age:.1f}s; respawning")
            self.table.schedule_respawn(proc, how)
        self.planner.progress()

    # -- Controls: what signals, FIFO letters, touched files and the emperor ask ----

    def reload(self, request: ReloadRequest) -> None:
        if not self.stopping:
            self.planner.request(request)

    def change_workers(self, delta: int) -> None:
        """SIGTTIN / SIGTTOU / FIFO ``+``/``-``: one worker more or less."""
        self.table.resize(delta, self.mercy)

    def log_requests(self) -> None:
        """SIGUSR2: each worker logs the request it is running (from its handler)."""
        log(f"SIGUSR2: current requests of {len(self.table)} worker(s):")
        self.table.signal_all(SIG_PRINT_REQUEST)

    def pause(self) -> None:
        """Master FIFO ``p``: the workers stop accepting (new connections wait in
        the listen queue), or accept again."""
        self.paused = not self.paused
        self.table.signal_all(SIG_PAUSE if self.paused else SIG_RESUME)
        log("paused: workers accept no new connections" if self.paused else "resumed")

    def log_stats(self) -> None:
        lines = [
            f"stats: {len(self.table)} worker(s), {self.table.board.total()} request(s) served"
        ]
        for proc in sorted(self.table.all(), key=lambda w: (w.generation, w.wid)):
            slot = proc.read_slot()
            if slot is not None:
                lines.append(
                    f"  worker {proc.wid} pid {proc.pid}: {slot.requests} requests, "
                    f"{slot.exceptions} exceptions"
                )
        log("\n".join(lines))

    def reopen_logs(self, reason: str) -> None:
        log.reopen()
        self.table.signal_all(SIG_REOPEN_LOG)
        log(f"log reopened ({reason})")

    def rotate_logs(self, reason: str) -> None:
        if not log.path:
            log(f"{reason}: no logto file to rotate")
            return
        try:
            backup = log.rotate()
        except OSError as exc:
            log(f"log rotation ({reason}) failed: {exc.strerror}")
            return
        self.reopen_logs(f"{reason}: rotated to {backup}")

    def graceful_stop(self) -> None:
        if self.stopping:
            return
        log("SIGTERM: graceful shutdown (workers finish their requests)")
        self._stop()
        for listener in self.listeners:  # the port closes once the workers drained it
            # (with reuse-port, the server sharing the port takes the new ones)
            listener.sock.close()
        self.table.stop_all(self.cfg.reload_mercy)

    def stop_now(self, what: str) -> None:
        log(f"{what}: immediate shutdown")
        self._stop()
        self.table.kill_all()

    def _stop(self) -> None:
        self.stopping = True
        self.full.waiting = None
        self.planner.close()
        self.notifier.stopping("stopping")
        self.full.kill_probe()

    # -- a full reload: the probe, then the exec --------------------------------------

    def check_probe(self) -> None:
        ok = self.full.result()
        if ok is not None:
            self.planner.probe_done(ok, self.full.detail)

    def exec_master(self, state: ReexecState) -> bool:
        """Re-execute once the attached daemons stopped (as uWSGI, they restart
        with a reload); ``after_wakeup`` does it."""
        self.full.waiting = state
        if self.daemons is not None:
            self.daemons.begin_stop(DAEMON_MERCY, smart=False)
        return True

    def reexec(self) -> None:
        table = self.table
        self.runtime.export_memory(os.environ)  # caches and shared areas go with the env
        self.full.waiting.log_pipes = self.capture.export() if self.capture else []  # type: ignore[union-attr]
        self.full.execute(table.all(), table.board, self.listeners, self.stats, HANDLED_SIGNALS)
        self.runtime.export_memory(os.environ, undo=True)
        self.planner.exec_failed()  # still here: the exec failed

    def daemons_stopped(self) -> bool:
        daemons = self.daemons
        if daemons is None:
            return True
        if not daemons.halted:
            daemons.begin_stop(DAEMON_MERCY)
        return daemons.stopped()

    # -- sd_notify and the end --------------------------------------------------------

    def status_line(self) -> str:
        return (
            f"{len(self.table.current())} worker(s), {self.table.board.total()} request(s) served"
        )

    def notify_systemd(self) -> None:
        """READY=1 once every current worker accepts (again after each reload),
        and the watchdog ping when due (see procmaster.systemd)."""
        notifier = self.notifier
        if not notifier.is_ready and not self.stopping:
            if not self.planner.busy and self.table.all_ready():
                notifier.ready(self.status_line())
        notifier.tick(self.status_line)

    def shutdown_done(self) -> int:
        for part in (self.stats, self.fifo, self.pushers, self.capture):
            if part is not None:
                part.close()
        for listener in self.listeners:
            try:
                listener.sock.close()
            except OSError:
                pass
        self.runtime.caches.close()
        if self.cfg.get("vacuum"):
            sockets_mod.vacuum(self.listeners)
            remove_pidfiles(self.cfg, self.pid)
        self.hooks.run("as-user-atexit")
        log("procmaster stopped")
        return self.exit_code


def run(cfg, worker_main: WorkerEntry) -> int:
    """Run a master for ``cfg`` until it stops; the exit code. ``worker_main`` is
    the worker's entry point (``procmaster.worker.worker_main``)."""
    try:
        return Master(cfg, worker_main).run()
    except KeyboardInterrupt:
        return 0
    except Exception:
        log(f"internal error in the master:\n{traceback.format_exc()}")
        return EXIT_FATAL
