"""The arbiter: binds the sockets, forks the workers, watches them, reloads.

Theory of operation
-------------------
The master waits on one selector for the signal wake-up pipe and the workers'
"ready" pipe, with a timeout only when it has a deadline (a worker to kill after
its mercy, a respawn waiting out its back-off). It never runs app code after the
fork (in the default preload mode the app is imported once, before forking).

Handlers, one per event, in the style of gunicorn's arbiter:

* ``handle_hup`` / touched files / any reload request -> ``request``: a full reload first checks
  the new config and app in a fresh interpreter (``PROCMASTER_PROBE``); if they
  load, the master re-executes itself (same pid, listening sockets and worker pids
  handed over in the environment), so new code and the re-read INI take effect;
  the new image forks new workers and, once every one says it is ready, asks the
  old ones to finish their requests and stop. The listening sockets never close,
  so no client is refused. A reload whose config or app fails keeps the old
  workers serving. A reload asked for during a reload is queued (one), not lost.
  ``touch-workers-reload`` forks new workers from this master; ``touch-chain-reload``
  replaces them one at a time, each replacement ready before its old one stops.
  New workers that die before they are ready abort the reload (old ones stay).
* ``handle_term``: graceful stop (workers finish what they are doing; uWSGI 2.1
  semantics, not 2.0's "brutal reload on SIGTERM"). ``handle_int``: immediate stop.
* ``reap_workers``: log how a worker ended, respawn it (with back-off when it
  keeps dying young), never let a crash reach the master.
* ``murder_workers``: SIGKILL for stopping workers past their mercy.
* ``guards.check``: harakiri, evil-reload-on-rss, cheaper (``procmaster.guards``);
  a worker that stopped to be replaced (max-requests, reload-on-rss, ...) is
  respawned at once, without crash back-off.
* ``handle_emperor`` (when this master is a vassal, ``procmaster.emperor``): the
  emperor's ``stop`` is ``handle_term``, its ``reload`` a ``request``, EOF on its
  pipe a graceful stop; ``tell_emperor_ready`` says ``ready`` once the workers are.
* Operations: the stats server (``procmaster.stats``) and the master FIFO
  (``procmaster.control``) register callables in the selector; a FIFO letter calls
  the same handler as its signal. ``notify_systemd`` says READY=1 once every
  current worker accepts, and sd_notify's watchdog is one more deadline.

Must not know: HTTP, WSGI, protocols.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import traceback

from . import daemons as daemons_mod
from . import sockets as sockets_mod
from .app import AppLoadError, debugger_note, load_apps, prepare_process
from .control import MasterFifo
from .emperor import EmperorLink
from .guards import MasterGuards, initial_workers
from .ipc import (
    CWD_ENV,
    EXIT_APP_FAILED,
    EXIT_FATAL,
    PROBE_ENV,
    REEXEC_ENV,
    SIG_PAUSE,
    SIG_REOPEN_LOG,
    SIG_RESUME,
    describe_exit,
    recycled,
)
from .logs import log
from .privileges import PrivilegeError, drop_privileges
from .process import process_name, set_process_name
from .scoreboard import Scoreboard
from .stats import StatsServer
from .systemd import Notifier
from .watch import Watcher, module_files
from .worker import worker_main

__all__ = ["Master", "run"]

DEBOUNCE = 0.2  # seconds: events on watched files this close together make one action
# watched-file option -> what its change asks for
WATCH_OPTIONS = {
    "touch-reload": "reload",
    "fs-reload": "reload",
    "touch-chain-reload": "chain",
    "touch-workers-reload": "workers",
    "touch-logrotate": "logrotate",
    "touch-logreopen": "logreopen",
}
# when two reloads are queued, the stronger one is kept
STRENGTH = {"workers": 1, "chain": 2, "reload": 3}
HANDLED_SIGNALS = (
    signal.SIGHUP,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGCHLD,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGURG,
)
SIGNAMES = {getattr(signal, n): n for n in dir(signal) if n.startswith("SIG") and "_" not in n}


class WorkerProc:
    __slots__ = ("wid", "pid", "slot", "generation", "born", "ready", "stop_sent", "kill_at")

    def __init__(self, wid: int, pid: int, slot: int, generation: int) -> None:
        self.wid = wid
        self.pid = pid
        self.slot = slot
        self.generation = generation
        self.born = time.monotonic()
        self.ready = False
        self.stop_sent = 0.0
        self.kill_at = 0.0


class Master:
    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.pid = os.getpid()
        self.start_cwd = os.environ.get(CWD_ENV) or os.getcwd()
        os.environ[CWD_ENV] = self.start_cwd
        self.listeners: list = []
        self.apps = None
        self.workers: dict[int, WorkerProc] = {}
        self.generation = 1
        self.sel = selectors.DefaultSelector()
        self.signal_r = -1
        self.ready_r = -1
        self.ready_w = -1
        self.ready_buf = b""
        self.scoreboard: Scoreboard | None = None
        self.stopping = False  # graceful shutdown in progress
        self.reload_state: dict | None = None  # a reload in progress
        self.pending_reload: tuple[str, str] | None = None  # (kind, reason)
        self.watcher: Watcher | None = None
        self.watch_due: dict[str, tuple[str, float]] = {}  # kind -> (what, when)
        self.watch_options: dict[str, str] = {}  # path -> option that watches it
        self.modules_seen: set[str] = set()
        self.probe: subprocess.Popen | None = None
        self.probe_reason = ""
        self.respawn_at: dict[int, float] = {}  # wid -> when
        self.young_deaths: dict[int, int] = {}
        self.exit_code = 0
        self.processes = initial_workers(cfg)  # SIGTTIN/SIGTTOU and cheaper change it
        self.guards: MasterGuards | None = None
        self.emperor = EmperorLink.from_environ()  # this master is a vassal of an emperor
        self.daemons: daemons_mod.Daemons | None = None  # attach-daemon, cron ...
        # operations (procmaster.control, .stats, .systemd); read by the stats server
        self.notifier = Notifier()
        self.stats: StatsServer | None = None
        self.fifo: MasterFifo | None = None
        self.respawns: dict[int, int] = {}  # wid -> times forked
        self.reloads = 0
        self.brutal_reload = False
        self.paused = False

    # -- start-up ------------------------------------------------------------------

    def run(self) -> int:
        cfg = self.cfg
        log.configure(cfg)
        set_max_fd(cfg.get("max-fd"))
        inherited = self._take_reexec_state()
        for line in cfg.warnings:
            if not inherited:
                log(f"warning: {line}")
        try:
            self.listeners = sockets_mod.bind_all(cfg)
        except sockets_mod.SocketError as exc:
            log(f"error: {exc}")
            return EXIT_FATAL
        for listener in self.listeners:
            how = "inherited" if listener.inherited else "bound"
            log(
                f"{listener.proto} socket {listener.address} {how} (fd {listener.fileno()}, {listener.origin})"
            )
            if listener.option == "http" and not inherited:
                log(
                    f"note: http = {listener.address} is served by the workers directly "
                    "(uWSGI would start a separate HTTP router process)"
                )
        self.write_pidfiles()
        try:
            for line in drop_privileges(cfg):
                log(line)
        except PrivilegeError as exc:
            log(f"error: {exc}")
            return EXIT_FATAL
        try:
            prepare_process(cfg)
        except AppLoadError as exc:
            log(f"error: {exc}")
            return EXIT_FATAL
        if not self.lazy:
            try:
                self.apps = load_apps(cfg)
            except AppLoadError as exc:
                log(f"error: {exc}")
                if cfg.get("need-app") is not False:
                    log("no app loaded: exiting (need-app)")
                    return EXIT_APP_FAILED
            if self.apps is not None and not inherited:
                note = debugger_note(self.apps, cfg)
                if note:
                    log(note)
        name = process_name(cfg, "master")
        if name:
            set_process_name(name)
        self.setup_signals()
        self.setup_watches()
        self.setup_control()
        self.scoreboard = Scoreboard(
            max(self.processes, int(cfg.processes)) * 2 + 8, cores=int(cfg.get("threads") or 1)
        )
        self.guards = MasterGuards(self)
        if self.emperor is not None:
            self.sel.register(self.emperor.fileno(), selectors.EVENT_READ, "emperor")
        if inherited:
            self.adopt(inherited)
        for wid in range(1, self.processes + 1):
            self.spawn(wid)
        self.daemons = daemons_mod.from_config(cfg, log)
        if self.daemons is not None:
            self.daemons.start()
        log(
            f"procmaster master pid {self.pid}: {self.processes} worker(s), "
            f"{'lazy apps (loaded in each worker)' if self.lazy else 'app preloaded'}"
        )
        return self.loop()

    @property
    def lazy(self) -> bool:
        return bool(self.cfg.get("lazy-apps") or self.cfg.get("lazy"))

    def write_pidfiles(self) -> None:
        for option in ("pidfile", "pidfile2", "safe-pidfile"):
            path = self.cfg.get(option)
            if path:
                tmp = f"{path}.tmp{os.getpid()}"
                try:
                    with open(tmp, "w") as fh:
                        fh.write(f"{self.pid}\n")
                    os.replace(tmp, path)
                except OSError as exc:
                    log(
                        f"warning: {self.cfg.origin(option)}: cannot write {option} {path!r}: {exc.strerror}"
                    )

    def remove_pidfiles(self) -> None:
        for option in ("pidfile", "pidfile2", "safe-pidfile"):
            path = self.cfg.get(option)
            if path:
                try:
                    with open(path) as fh:
                        if fh.read().strip() != str(self.pid):
                            continue
                    os.unlink(path)
                except OSError:
                    pass

    def setup_signals(self) -> None:
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.signal_r = r
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, self._noop)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        # blocked by our previous image across a reload's exec: deliver them now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
        self.sel.register(r, selectors.EVENT_READ, "signal")
        self.ready_r, self.ready_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sel.register(self.ready_r, selectors.EVENT_READ, "ready")

    @staticmethod
    def _noop(signum, frame) -> None:
        pass  # the wake-up fd carries the signal to the loop

    def setup_control(self) -> None:
        """The stats server and the master FIFO, in the selector (see their modules)."""
        cfg = self.cfg
        try:
            if cfg.get("stats"):
                self.stats = StatsServer(
                    cfg.get("stats"), bool(cfg.get("stats-http")), self, self.sel
                )
            else:
                StatsServer.forget_inherited()
        except (OSError, ValueError) as exc:
            log(
                f"warning: {cfg.origin('stats')}: cannot serve stats on {cfg.get('stats')!r}: {exc}"
            )
        fifos = cfg.get("master-fifo") or []
        try:
            if fifos:
                self.fifo = MasterFifo(fifos[0], self, self.sel)
        except OSError as exc:
            log(f"warning: {cfg.origin('master-fifo', 0)}: cannot open {fifos[0]!r}: {exc}")

    def setup_watches(self) -> None:
        cfg = self.cfg
        watcher = Watcher()
        for option, kind in WATCH_OPTIONS.items():
            for index, path in enumerate(cfg.get(option) or []):
                problem = watcher.add(path, f"{kind}:{option}")
                if problem:
                    log(f"warning: {cfg.origin(option, index)}: option '{option}': {problem}")
        if cfg.get("py-autoreload"):
            self.watch_modules(module_files(self.modules_seen), watcher)
        if len(watcher) or cfg.get("py-autoreload"):
            self.watcher = watcher
            self.sel.register(watcher.fileno(), selectors.EVENT_READ, "watch")
        else:
            watcher.close()

    def watch_modules(self, paths: list[str], watcher: Watcher | None = None) -> None:
        watcher = self.watcher if watcher is None else watcher
        if watcher is None:
            watcher = self.watcher = Watcher()
        for path in paths:
            watcher.add(path, "reload:py-autoreload")

    def handle_watch(self) -> None:
        """Changed watched files: debounce, then act (see fire_watches)."""
        due = time.monotonic() + DEBOUNCE
        for kind, path in self.watcher.read():
            self.watch_due[kind] = (path, due)

    def fire_watches(self) -> None:
        now = time.monotonic()
        for kind, (path, when) in list(self.watch_due.items()):
            if now < when:
                continue
            del self.watch_due[kind]
            action, option = kind.split(":", 1)
            reason = f"{option} {path}"
            if action == "logreopen":
                self.reopen_logs(reason)
            elif action == "logrotate":
                self.rotate_logs(reason)
            else:
                self.request(action, reason)

    # -- workers -------------------------------------------------------------------

    def spawn(self, wid: int) -> None:
        cfg = self.cfg
        slot = self.scoreboard.free_slot()
        self.scoreboard.claim(slot)
        self.respawn_at.pop(wid, None)
        sys.stdout.flush()
        sys.stderr.flush()
        # the child inherits the mask: a SIGTERM that arrives before the worker has
        # its own handlers waits for them instead of hitting the master's no-op
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                self.sel.close()
                os.close(self.signal_r)
                os.close(self.ready_r)
                for part in (self.stats, self.fifo):
                    if part is not None:
                        part.close_in_child()
            except OSError:
                pass
            apps = self.apps
            worker_main(
                wid,
                cfg,
                self.listeners,
                apps,
                self.ready_w,
                self.scoreboard,
                slot,
                self.pid,
                self._lazy_loader,
            )
            os._exit(1)  # not reached
        self.scoreboard.claim(slot, pid)
        self.workers[pid] = WorkerProc(wid, pid, slot, self.generation)
        self.respawns[wid] = self.respawns.get(wid, 0) + 1

    def _lazy_loader(self):
        """Runs in a worker (lazy-apps): import the app there."""
        try:
            return load_apps(self.cfg)
        except AppLoadError as exc:
            log(f"error: {exc}")
            os._exit(EXIT_APP_FAILED)

    def adopt(self, state: dict) -> None:
        """Workers of our previous image (before a reload's exec): keep them serving
        until the new ones are ready."""
        for pid, wid in state.get("old", []):
            try:
                os.kill(pid, 0)
            except OSError:
                continue
            proc = WorkerProc(wid, pid, -1, 0)
            proc.ready = True
            self.workers[pid] = proc
        self.reload_state = {
            "reason": state.get("reason", "reload"),
            "t0": state.get("t0", time.time()),
            "old": [pid for pid, _ in state.get("old", [])],
            "mode": "exec",
            "brutal": state.get("brutal", False),
        }
        self.reloads = state.get("reloads", 0)
        pending = state.get("pending")
        self.pending_reload = tuple(pending) if pending else None

    def has_old_workers(self) -> bool:
        return any(w.generation != self.generation and not w.kill_at for w in self.workers.values())

    def current_workers(self) -> list[WorkerProc]:
        return [w for w in self.workers.values() if w.generation == self.generation]

    def stop_worker(self, proc: WorkerProc, mercy: float, sig: int = signal.SIGTERM) -> None:
        if proc.stop_sent:
            return
        proc.stop_sent = time.monotonic()
        proc.kill_at = proc.stop_sent + mercy
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass

    # -- the loop ------------------------------------------------------------------

    def loop(self) -> int:
        while True:
            timeout = self.next_timeout()
            for key, _ in self.sel.select(timeout):
                if key.data == "signal":
                    self.handle_signals()
                elif key.data == "ready":
                    self.handle_ready()
                elif key.data == "watch":
                    self.handle_watch()
                elif key.data == "emperor":
                    self.handle_emperor()
                elif callable(key.data):  # stats clients, master FIFO
                    key.data()
            self.fire_watches()
            self.reap_workers()
            self.murder_workers()
            self.guards.check()
            self.manage_workers()
            self.check_probe()
            if self.daemons is not None and not self.stopping:
                self.daemons.tick()
            if self.notifier.enabled:
                self.notify_systemd()
            if self.stopping and not self.workers:
                return self.shutdown_done()

    def next_timeout(self) -> float | None:
        deadlines = [w.kill_at for w in self.workers.values() if w.kill_at]
        deadlines.extend(self.respawn_at.values())
        deadlines.extend(when for _, when in self.watch_due.values())
        guard_deadline = self.guards.next_deadline()
        if guard_deadline is not None:
            deadlines.append(guard_deadline)
        if self.probe is not None:
            deadlines.append(time.monotonic() + 0.05)
        daemon_due = self.daemons.next_deadline() if self.daemons and not self.stopping else None
        if daemon_due is not None:
            deadlines.append(daemon_due)
        if self.notifier.deadline() is not None:
            deadlines.append(self.notifier.deadline())
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def handle_signals(self) -> None:
        try:
            data = os.read(self.signal_r, 256)
        except BlockingIOError:
            return
        for signum in data:
            if signum == signal.SIGCHLD:
                continue  # reap_workers runs after every wake-up
            if signum == signal.SIGHUP:
                self.request("reload", "SIGHUP")
            elif signum == signal.SIGTERM:
                self.handle_term()
            elif signum in (signal.SIGINT, signal.SIGQUIT):
                self.handle_int(signum)
            elif signum == signal.SIGUSR1:
                self.log_stats()
            elif signum == signal.SIGUSR2:
                self.log_requests()
            elif signum == signal.SIGURG:
                self.request("chain", "SIGURG")
            elif signum == signal.SIGTTIN:
                self.change_worker_count(+1)
            elif signum == signal.SIGTTOU:
                self.change_worker_count(-1)

    def handle_ready(self) -> None:
        try:
            data = os.read(self.ready_r, 4096)
        except BlockingIOError:
            return
        self.ready_buf += data
        *lines, self.ready_buf = self.ready_buf.split(b"\n")
        new_modules = []
        for line in lines:
            if line.startswith(b"M "):  # a worker imported a module (py-autoreload)
                path = line[2:].decode("utf-8", "surrogateescape")
                if path not in self.modules_seen:
                    self.modules_seen.add(path)
                    new_modules.append(path)
                continue
            if not line.isdigit():
                continue
            proc = self.workers.get(int(line))
            if proc is not None:
                proc.ready = True
                self.young_deaths.pop(proc.wid, None)
        if new_modules and self.watcher is not None:
            self.watch_modules(new_modules)
        self.check_reload_progress()
        self.tell_emperor_ready()

    def handle_emperor(self) -> None:
        """Messages from our emperor: ``stop``, ``reload``; EOF: the emperor is gone."""
        messages = self.emperor.read()
        if messages is None:
            self.sel.unregister(self.emperor.fileno())
            self.emperor = None
            log("the emperor is gone: stopping")
            self.handle_term()
            return
        for message in messages:
            if message == "stop":
                self.handle_term()
            elif message == "reload":
                self.request("reload", "the emperor")

    def tell_emperor_ready(self) -> None:
        """Tell our emperor once every worker of this image is ready."""
        link = self.emperor
        if link is None or link.ready_sent or self.reload_state is not None:
            return
        current = self.current_workers()
        if len(current) >= self.processes and all(w.ready for w in current):
            link.send("ready")

    def reap_workers(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.probe is not None and pid == self.probe.pid:
                self.probe.returncode = os.waitstatus_to_exitcode(status)
                continue
            if self.daemons is not None and self.daemons.reaped(pid, status):
                continue
            proc = self.workers.pop(pid, None)
            if proc is None:
                continue
            if proc.slot >= 0:
                self.scoreboard.release(proc.slot)
            if proc.stop_sent or self.stopping:
                continue
            if proc.generation != self.generation:
                log(f"old worker {proc.wid} (pid {pid}) {describe_exit(status)}")
                continue
            age = time.monotonic() - proc.born
            if recycled(status) and proc.ready:
                log(f"worker {proc.wid} (pid {pid}) stopped to be replaced; respawning")
                self.respawn_at[proc.wid] = time.monotonic()
                self.check_reload_progress()
                continue
            if not proc.ready and self.reload_state is not None and self.has_old_workers():
                log(
                    f"new worker {proc.wid} (pid {pid}) {describe_exit(status)} before it was ready"
                )
                self.abort_reload("the new workers do not start")
                continue
            log(
                f"worker {proc.wid} (pid {pid}) {describe_exit(status)} after {age:.1f}s; respawning"
            )
            if not proc.ready or age < 1.0:
                self.young_deaths[proc.wid] = self.young_deaths.get(proc.wid, 0) + 1
                # the back-off counts the young deaths of all workers: N workers of
                # an app that cannot start still make only a few forks a second
                n = sum(self.young_deaths.values())
                delay = min(0.25 * (2 ** min(n - 1, 10)), 10.0)
                if n >= 2:
                    log(
                        f"worker {proc.wid} keeps dying at start-up ({describe_exit(status)}; "
                        f"{n} times): next try in {delay:.1f}s"
                    )
                self.respawn_at[proc.wid] = time.monotonic() + delay
            else:
                self.respawn_at[proc.wid] = time.monotonic()
            self.check_reload_progress()

    def murder_workers(self) -> None:
        now = time.monotonic()
        for proc in list(self.workers.values()):
            if proc.kill_at and now >= proc.kill_at:
                log(f"worker {proc.wid} (pid {proc.pid}) did not stop within its mercy: SIGKILL")
                proc.kill_at = 0.0
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def manage_workers(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        for wid, when in list(self.respawn_at.items()):
            if now >= when:
                alive = {w.wid for w in self.current_workers()}
                if wid in alive or wid > self.processes:
                    self.respawn_at.pop(wid, None)
                    continue
                self.spawn(wid)

    def change_worker_count(self, delta: int) -> None:
        """SIGTTIN / SIGTTOU: one worker more or less (gunicorn's signals)."""
        current = self.processes
        new = max(1, current + delta)
        if new == current:
            return
        self.processes = new
        if delta > 0:
            self.spawn(new)
        else:
            for proc in self.current_workers():
                if proc.wid == current:
                    self.stop_worker(proc, float(self.cfg.worker_reload_mercy))
        log(f"workers: {current} -> {new}")

    def signal_workers(self, sig: int) -> None:
        for proc in list(self.workers.values()):
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass

    def log_requests(self) -> None:
        """SIGUSR2: each worker logs the request it is running (from its handler)."""
        log(f"SIGUSR2: current requests of {len(self.workers)} worker(s):")
        self.signal_workers(signal.SIGUSR2)

    def pause(self) -> None:
        """Master FIFO ``p``: the workers stop accepting (new connections wait in
        the listen queue), or accept again."""
        self.paused = not self.paused
        self.signal_workers(SIG_PAUSE if self.paused else SIG_RESUME)
        log("paused: workers accept no new connections" if self.paused else "resumed")

    def status_line(self) -> str:
        total = self.scoreboard.total() if self.scoreboard else 0
        return f"{len(self.current_workers())} worker(s), {total} request(s) served"

    def notify_systemd(self) -> None:
        """READY=1 once every current worker accepts (again after each reload),
        and the watchdog ping when due (see procmaster.systemd)."""
        notifier = self.notifier
        if not notifier.is_ready and not self.stopping:
            current = self.current_workers()
            if (
                self.reload_state is None
                and self.probe is None
                and len(current) >= self.processes
                and all(w.ready for w in current)
            ):
                notifier.ready(self.status_line())
        notifier.tick(self.status_line)

    def log_stats(self) -> None:
        total = self.scoreboard.total() if self.scoreboard else 0
        lines = [f"stats: {len(self.workers)} worker(s), {total} request(s) served"]
        for proc in sorted(self.workers.values(), key=lambda w: (w.generation, w.wid)):
            if proc.slot < 0:
                continue
            slot = self.scoreboard.read(proc.slot)
            lines.append(
                f"  worker {proc.wid} pid {proc.pid}: {slot.requests} requests, "
                f"{slot.exceptions} exceptions"
            )
        log("\n".join(lines))

    # -- reloads -------------------------------------------------------------------

    def request(self, kind: str, reason: str, brutal: bool = False) -> None:
        """Every way to ask for a reload ends here: ``kind`` is ``reload`` (re-read
        the INI, re-import the app: SIGHUP, touch-reload, fs-reload, py-autoreload),
        ``workers`` (new workers from this master) or ``chain`` (workers replaced
        one at a time). During a reload, one more request is queued: the strongest
        of those asked for. ``brutal`` (master FIFO ``R``/``W``): the old workers
        are killed as soon as the new ones are ready, without finishing requests."""
        if self.stopping:
            return
        if self.reload_state is not None or self.probe is not None:
            pending = self.pending_reload
            if pending is None or STRENGTH[kind] >= STRENGTH[pending[0]]:
                self.pending_reload = (kind, reason)
            if pending is None:
                log(f"reload requested ({reason}) during a reload: queued")
            return
        self.reloads += 1
        self.brutal_reload = brutal
        self.notifier.reloading(f"reloading ({reason})")
        if kind == "workers":
            self.reload_workers(reason)
        elif kind == "chain":
            self.chain_reload(reason)
        else:
            self.check_then_exec(reason)
        if self.reload_state is not None:
            self.reload_state["brutal"] = brutal

    def run_pending(self) -> None:
        if self.pending_reload is not None and self.reload_state is None and self.probe is None:
            kind, reason = self.pending_reload
            self.pending_reload = None
            self.request(kind, reason)

    def check_then_exec(self, reason: str) -> None:
        """A full reload: check the new config and app in a fresh interpreter, then
        re-execute the master with them (see the module docstring)."""
        log(f"reload requested ({reason}): checking the new configuration and app")
        env = dict(os.environ)
        env[PROBE_ENV] = "1"
        self.probe_reason = reason
        self.probe_t0 = time.time()
        try:
            self.probe = subprocess.Popen(
                [sys.executable, "-m", "procmaster", *self.cfg.argv],
                env=env,
                cwd=self.start_cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log.fd,
                close_fds=True,
            )
        except OSError as exc:
            log(f"reload failed: cannot start the check: {exc}")
            self.probe = None

    def reload_workers(self, reason: str) -> None:
        """New workers forked from this master (the app is re-imported only with
        lazy-apps, as uWSGI); the old ones stop once all new ones are ready."""
        old = [w.pid for w in self.current_workers()]
        self.generation += 1
        self.reload_state = {"reason": reason, "t0": time.time(), "old": old, "mode": "workers"}
        log(f"reload requested ({reason}): starting {self.processes} new worker(s)")
        for wid in range(1, self.processes + 1):
            self.respawn_at.pop(wid, None)
            self.spawn(wid)

    def chain_reload(self, reason: str) -> None:
        """One worker at a time: its replacement is up and accepting before the
        old one is asked to stop, so capacity never drops."""
        if not self.lazy:
            log(
                f"warning: {reason}: chain reload without lazy-apps forks the app the master "
                "loaded at start-up (new code needs lazy-apps, as in uWSGI)"
            )
        old = sorted(self.current_workers(), key=lambda w: w.wid)
        self.generation += 1
        self.reload_state = {
            "reason": reason,
            "t0": time.time(),
            "old": [w.pid for w in old],
            "mode": "chain",
            "queue": [w.pid for w in old],
        }
        log(f"chain reload requested ({reason}): replacing {len(old)} worker(s) one by one")
        self.check_reload_progress()

    def check_probe(self) -> None:
        probe = self.probe
        if probe is None or probe.returncode is None:
            return
        self.probe = None
        if probe.returncode != 0:
            log(
                f"reload ({self.probe_reason}) aborted: the new configuration or app does not load "
                "(see above); the running workers go on serving"
            )
            self.run_pending()
            return
        self.exec_reload(self.probe_reason, self.probe_t0)

    def exec_reload(self, reason: str, t0: float) -> None:
        env = dict(os.environ)
        sockets_mod.export_fds(self.listeners, env)
        if self.stats is not None:
            self.stats.export(env)
        env[REEXEC_ENV] = json.dumps(
            {
                "old": [[w.pid, w.wid] for w in self.workers.values()],
                "reason": reason,
                "t0": t0,
                "pending": self.pending_reload,
                "brutal": self.brutal_reload,
                "reloads": self.reloads,
            }
        )
        # Signals that arrive while the next image starts stay pending (the mask
        # survives exec) until it has its handlers: a SIGHUP then must not kill it.
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        signal.set_wakeup_fd(-1)
        try:
            os.chdir(self.start_cwd)
        except OSError:
            pass
        if self.daemons is not None:  # as uWSGI: attached daemons restart with a reload
            self.daemons.stop(smart=False)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            os.execve(sys.executable, [sys.executable, "-m", "procmaster", *self.cfg.argv], env)
        except OSError as exc:  # pragma: no cover - the interpreter is there
            log(f"reload failed: cannot re-execute: {exc}")

    def _take_reexec_state(self) -> dict | None:
        raw = os.environ.pop(REEXEC_ENV, None)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def check_reload_progress(self) -> None:
        """Once the new workers are ready, ask the old ones to finish and stop."""
        state = self.reload_state
        if state is None:
            return
        mercy = 0.0 if state.get("brutal") else float(self.cfg.worker_reload_mercy)
        if state.get("mode") == "chain":
            queue = state["queue"]
            while queue:
                old = self.workers.get(queue[0])
                if old is None:
                    queue.pop(0)
                    continue
                new = [w for w in self.current_workers() if w.wid == old.wid]
                if not new:
                    if old.wid not in self.respawn_at:
                        self.spawn(old.wid)
                    return
                if not new[0].ready:
                    return
                self.stop_worker(old, mercy)
                queue.pop(0)
            current = self.current_workers()
        else:
            current = self.current_workers()
            if len(current) < self.processes or not all(w.ready for w in current):
                return
            for proc in [w for w in self.workers.values() if w.generation != self.generation]:
                self.stop_worker(proc, mercy)
        took = time.time() - state["t0"]
        log(
            f"reload ({state['reason']}) done in {took:.2f}s: old workers "
            f"{sorted(state['old']) or '-'} stopping, new workers {sorted(w.pid for w in current)}"
        )
        self.reload_state = None
        self.run_pending()

    def abort_reload(self, why: str) -> None:
        """New workers cannot start: keep the old ones serving. (In a chain reload
        the new workers that are up already stay: each replaced an old one.)"""
        state = self.reload_state
        if state is None:
            return
        keep_ready = state.get("mode") == "chain"
        for proc in list(self.workers.values()):
            if proc.generation == self.generation and not (keep_ready and proc.ready):
                self.stop_worker(proc, 1.0, signal.SIGKILL)
                self.respawn_at.pop(proc.wid, None)
        for proc in self.workers.values():
            if not proc.stop_sent:
                proc.generation = self.generation  # the survivors are the current workers
        log(f"reload ({state['reason']}) aborted: {why}; the old workers go on serving")
        self.reload_state = None
        self.run_pending()

    def reopen_logs(self, reason: str) -> None:
        log.reopen()
        self.signal_workers(SIG_REOPEN_LOG)
        log(f"log reopened ({reason})")

    def rotate_logs(self, reason: str) -> None:
        path = log.path
        if not path:
            log(f"{reason}: no logto file to rotate")
            return
        backup = self.cfg.get("log-backupname") or f"{path}.{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            os.replace(path, backup)
        except OSError as exc:
            log(f"log rotation ({reason}) failed: {exc.strerror}")
            return
        self.reopen_logs(f"{reason}: rotated to {backup}")

    # -- stopping ------------------------------------------------------------------

    def handle_term(self) -> None:
        if self.stopping:
            return
        log("SIGTERM: graceful shutdown (workers finish their requests)")
        self.stopping = True
        self.notifier.stopping("stopping")
        self.respawn_at.clear()
        if self.probe is not None:
            self.probe.kill()
        mercy = float(self.cfg.reload_mercy)
        for proc in list(self.workers.values()):
            self.stop_worker(proc, mercy)

    def handle_int(self, signum: int) -> None:
        log(f"{SIGNAMES.get(signum, signum)}: immediate shutdown")
        self.stopping = True
        self.notifier.stopping("stopping")
        self.respawn_at.clear()
        if self.probe is not None:
            self.probe.kill()
        for proc in list(self.workers.values()):
            proc.stop_sent = proc.stop_sent or time.monotonic()
            proc.kill_at = time.monotonic() + 3.0
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def shutdown_done(self) -> int:
        if self.daemons is not None:
            self.daemons.stop()
        for part in (self.stats, self.fifo):
            if part is not None:
                part.close()
        for listener in self.listeners:
            try:
                listener.sock.close()
            except OSError:
                pass
        if self.cfg.get("vacuum"):
            sockets_mod.vacuum(self.listeners)
            self.remove_pidfiles()
        log("procmaster stopped")
        return self.exit_code


def set_max_fd(value) -> None:
    """``max-fd``: the descriptor limit (RLIMIT_NOFILE) of the master and so of the
    workers it forks. Raising the hard limit needs root (as in uWSGI); without it
    the soft limit goes as high as the hard one allows, and that is logged."""
    if not value:
        return
    import resource

    want = int(value)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        got = min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (got, hard))
        log(f"max-fd {want}: cannot raise the hard limit ({hard}); using {got}")


def run(cfg) -> int:
    """Run a master for ``cfg`` until it stops; the exit code."""
    try:
        return Master(cfg).run()
    except KeyboardInterrupt:
        return 0
    except Exception:
        log(f"internal error in the master:\n{traceback.format_exc()}")
        return EXIT_FATAL
