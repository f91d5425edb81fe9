"""The Emperor's loop: one process that runs a procmaster master ("vassal") per
INI file, started, reloaded, restarted and stopped as the files come and go.

Theory of operation
-------------------
``procmaster --emperor DIR`` (or a glob, repeatable, or ``emperor =`` in an INI)
supervises one ``procmaster --ini FILE`` per ``*.ini`` found. A vassal is just
that command: the Emperor knows nothing of sockets, protocols, WSGI or workers.

The loop waits on one selector: the signal wake-up pipe, the inotify fd
(``procmaster.watch``), each vassal's pipe and the ``emperor-stats`` socket, with
a timeout only for the deadlines it has (a debounced re-scan, a throttled
restart, a vassal late to stop). After each wake-up it reaps, re-scans when due,
kills the late, restarts the due and tells systemd once everything has started.

* **Finding vassals** is ``discovery``'s: the patterns -> the files and the
  directories to watch -> a diff against the running vassals. An event on an
  interesting name schedules a re-scan (debounced: a burst of events makes one).
  A new path starts a vassal, a changed signature reloads it (``touch``,
  ``touch --no-dereference`` on a link, an editor's save), a vanished path stops
  it; a rename is a stop and a start (the new vassal waits until the old one,
  same file, has gone, so it can bind the same ports). Other vassals are not
  touched. A vassal is started with its file's real path, so its ``%d`` and
  ``%n`` are the real file's.
* **Starting** is ``spawn``'s (command line, environment, emperor-tyrant).
* **Config errors.** Before a vassal starts or reloads, its config is read
  (``procmaster.config.load`` never starts anything). An invalid INI is logged
  once with file:line, and tried again only when the file changes: no crash loop.
  A running vassal whose INI became invalid keeps running.
* **Supervision** (``vassal``'s state machine and back-off): a vassal that dies is
  started again at once after a healthy run, else after a growing delay. The
  Emperor is a child subreaper, so the workers of a vassal killed with SIGKILL
  are reaped here too.
* **The pipe.** Each vassal gets one end of a socketpair (``EMPEROR_FD_ENV``);
  it says ``ready``, the Emperor says ``stop`` or ``reload``. A vassal asks the
  kernel for SIGKILL when the Emperor dies (``PR_SET_PDEATHSIG``) and also stops
  when the pipe reaches EOF: no orphans.
* **Signals.** SIGHUP: re-scan (and retry vassals waiting out a back-off or an
  invalid INI). SIGTERM: ``stop`` to every vassal, wait, exit 0. SIGINT/SIGQUIT:
  immediate stop of every vassal.
* **systemd.** With ``NOTIFY_SOCKET`` set, ``READY=1`` is sent once every vassal
  that can start has started (ready, or known broken); ``STOPPING=1`` on stop.
* **On demand** (``emperor-on-demand-directory``/``-extension``/``-exec``): a
  vassal with an on-demand socket is not started: its socket is bound and
  watched here, and the vassal starts on the first connection with the socket
  as its fd 0 (``ondemand``); when it exits, the socket is watched again.
* **Stats.** ``emperor-stats = ADDRESS``: each connection gets one JSON document
  (every vassal's INI, pid, state, restarts, last start) and is closed; served by
  ``procmaster.stats.StatsServer`` as the master's are (a deadline per client, a cap
  on clients, accepting paused with one log line when out of descriptors).

Must not know: protocols, WSGI, workers (a vassal is just ``procmaster --ini``).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
import traceback
from functools import partial

from ..ipc import (
    EMPEROR_RELOAD,
    EMPEROR_STOP,
    VASSAL_READY,
    describe_exit,
)
from ..logs import log
from ..pidfile import remove_pidfile, write_pidfile
from ..process import become_subreaper, read_signals, reap_children, send_signal, signal_pipe
from ..stats import StatsServer
from ..systemd import Notifier
from ..watch import Watcher
from .discovery import Signature, diff, discover
from .ondemand import OnDemand, bind_on_demand, close_on_demand, socket_name
from .spawn import Launcher
from .vassal import STARTABLE, Vassal, VassalState

__all__ = ["Emperor", "run"]

DEBOUNCE = 0.1  # seconds of quiet after a file event before re-scanning
DEBOUNCE_MAX = 1.0  # ... but never later than this after the first event
HANDLED_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD)
VASSAL_FILES = "vassal files"  # our tag for the watched directories


class Emperor:
    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.pid = os.getpid()
        cwd = os.getcwd()
        self.patterns: list[str] = [os.path.join(cwd, p) for p in cfg.emperor]
        self.throttle = max(cfg.emperor_throttle, 1) / 1000.0
        self.max_throttle = max(cfg.emperor_max_throttle / 1000.0, self.throttle)
        self.stop_mercy = cfg.reload_mercy + 5.0
        self.tyrant = cfg.emperor_tyrant and os.geteuid() == 0
        self.launcher = Launcher(
            emperor_pid=self.pid,
            inherit=[os.path.join(cwd, p) for p in cfg.vassals_inherit],
            include=[os.path.join(cwd, p) for p in cfg.vassals_include],
            sets=list(cfg.vassal_set),
            tyrant=self.tyrant,
            allow_root=cfg.emperor_tyrant_allow_root,
        )
        self.pidfile: str | None = cfg.emperor_pidfile
        self.on_demand = OnDemand(
            cfg.emperor_on_demand_directory,
            cfg.emperor_on_demand_extension,
            cfg.emperor_on_demand_exec,
        )
        self.vassals: dict[str, Vassal] = {}  # path -> vassal
        self.leaving: list[Vassal] = []  # stopping, replaced or removed
        self.by_pid: dict[int, Vassal] = {}
        self.sel = selectors.DefaultSelector()
        self.signal_r = -1
        self.watcher: Watcher | None = None
        self.notifier = Notifier()
        self.scan_due = 0.0
        self.scan_first = 0.0
        self.stopping = False
        self.notified_ready = False
        self.stats_server: StatsServer | None = None

    # -- start-up ----------------------------------------------------------------------

    def run(self) -> int:
        log.configure(self.cfg)
        for line in self.cfg.warnings:
            log(f"warning: {line}")
        if self.cfg.sockets_in_order() or self.cfg.get("module") or self.cfg.get("wsgi-file"):
            log("warning: the emperor serves no app itself: its socket and app options are ignored")
        if self.cfg.emperor_tyrant and not self.tyrant:
            log("warning: emperor-tyrant has no effect: the emperor does not run as root")
        become_subreaper()
        self.setup_signals()
        self.watcher = Watcher()
        self.sel.register(self.watcher.fileno(), selectors.EVENT_READ, self.handle_inotify)
        if self.cfg.get("emperor-stats"):
            error = self.setup_stats(self.cfg.get("emperor-stats"))
            if error:
                log(f"error: {self.cfg.origin('emperor-stats')}: emperor-stats: {error}")
                return 1
        if self.pidfile:
            try:
                write_pidfile(self.pidfile, self.pid)
            except OSError as exc:
                log(f"warning: cannot write emperor-pidfile {self.pidfile!r}: {exc.strerror}")
        log(f"emperor pid {self.pid}: watching {', '.join(self.patterns)}")
        self.scan()
        return self.loop()

    def setup_signals(self) -> None:
        self.signal_r = signal_pipe(HANDLED_SIGNALS)
        self.sel.register(self.signal_r, selectors.EVENT_READ, self.handle_signals)

    def setup_stats(self, address: str) -> str | None:
        """``emperor-stats``: the master's bounded stats server (deadlines, a cap on
        clients, a pause when out of descriptors), serving this emperor's document."""
        try:
            self.stats_server = StatsServer(
                address,
                False,
                None,
                self.sel,
                document=lambda: json.dumps(self.stats(), indent=1).encode() + b"\n",
            )
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            return f"cannot bind {address}: {why}"
        return None

    # -- the loop ---------------------------------------------------------------------------

    def loop(self) -> int:
        while True:
            for key, _ in self.sel.select(self.next_timeout()):
                key.data()  # the handler registered with the descriptor
            self.reap()
            now = time.monotonic()
            if self.stats_server is not None:
                self.stats_server.tick(now)
            if self.scan_due and now >= self.scan_due and not self.stopping:
                self.scan()
            self.kill_late(now)
            self.restart_due(now)
            self.check_all_started()
            if self.stopping and not self.by_pid:
                return self.stopped()

    def next_timeout(self) -> float | None:
        deadlines = [v.kill_at for v in self.by_pid.values() if v.kill_at]
        if not self.stopping:
            deadlines.extend(
                v.restart_at for v in self.vassals.values() if v.state is VassalState.THROTTLED
            )
            if self.scan_due:
                deadlines.append(self.scan_due)
        stats_due = self.stats_server and self.stats_server.deadline()
        if stats_due:
            deadlines.append(stats_due)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def handle_signals(self) -> None:
        for signum in read_signals(self.signal_r):
            if signum == signal.SIGHUP:
                self.rescan_all()
            elif signum == signal.SIGTERM:
                self.stop_all(signal.SIGTERM)
            elif signum in (signal.SIGINT, signal.SIGQUIT):
                self.stop_all(signum)

    def handle_inotify(self) -> None:
        """A watched name changed: re-scan soon (a burst of events makes one scan)."""
        if self.watcher is None or not self.watcher.read():
            return
        now = time.monotonic()
        if not self.scan_due:
            self.scan_first = now
        self.scan_due = min(now + DEBOUNCE, self.scan_first + DEBOUNCE_MAX)

    # -- scanning -----------------------------------------------------------------------------

    def scan(self) -> None:
        """Compare what the patterns match now with the running vassals, and act."""
        self.scan_due = 0.0
        found = discover(self.patterns)
        if self.watcher is not None:
            self.watcher.watch_names(VASSAL_FILES, found.watch)
        change = diff({path: v.sig for path, v in self.vassals.items()}, found.files)
        for path in change.removed:
            self.remove(self.vassals[path], "its file was removed")
        for path in change.retargeted:
            sig = found.files[path]
            self.remove(self.vassals[path], f"it now points to {sig.real}")
            self.add(path, sig)
        for path in change.added:
            self.add(path, found.files[path])
        for path in change.changed:
            vassal = self.vassals[path]
            vassal.sig = found.files[path]
            self.changed(vassal)

    def rescan_all(self) -> None:
        if self.stopping:
            return
        log("SIGHUP: scanning the vassal files again")
        for vassal in self.vassals.values():
            if vassal.state is VassalState.THROTTLED:
                vassal.restart_at = time.monotonic()
            elif vassal.state is VassalState.INVALID:
                self.start(vassal)
        self.scan()

    # -- vassal life ----------------------------------------------------------------------------

    def add(self, path: str, sig: Signature) -> None:
        vassal = Vassal(path, sig)
        self.vassals[path] = vassal
        for old in self.leaving:
            if old.proc is not None and (old.path == path or old.sig.file_id == sig.file_id):
                vassal.wait_for = old  # the same file, renamed or replaced: let it go first
        if vassal.wait_for is not None:
            vassal.state = VassalState.WAITING
            return
        self.start(vassal)

    def changed(self, vassal: Vassal) -> None:
        if vassal.state in STARTABLE:
            self.start(vassal)
        elif vassal.state is VassalState.WAITING:
            pass
        elif vassal.proc is not None:
            if not self.launcher.check(vassal):
                vassal.state = VassalState.READY if vassal.ready_once else VassalState.STARTING
                log(f"vassal {vassal.name}: keeps running with its previous configuration")
                return
            log(f"vassal {vassal.name}: file changed: graceful reload")
            vassal.state = VassalState.RELOADING
            vassal.send(EMPEROR_RELOAD)

    def start(self, vassal: Vassal) -> None:
        if self.on_demand and self.arm(vassal):
            return
        if self.stopping or not self.launcher.check(vassal):
            return
        self.spawn(vassal)

    def arm(self, vassal: Vassal) -> bool:
        """An on-demand vassal: watch its socket (bound here) instead of starting
        it. False when the vassal has no on-demand socket."""
        if vassal.on_demand is None:
            name = socket_name(vassal.path, self.on_demand)
            if name is None:
                return False
            if self.stopping or not self.launcher.check(vassal):
                return True
            try:
                vassal.on_demand = bind_on_demand(name)
            except OSError as exc:
                vassal.invalid(f"cannot bind its on-demand socket {name}: {exc.strerror}")
                log(f"vassal {vassal.name}: cannot bind its on-demand socket {name}: {exc}")
                return True
            vassal.socket_name = name
        if self.stopping:
            return True
        self.sel.register(vassal.on_demand, selectors.EVENT_READ, partial(self.wake, vassal))
        vassal.state = VassalState.ON_DEMAND
        log(f"vassal {vassal.name}: on demand: waiting for connections on {vassal.socket_name}")
        return True

    def wake(self, vassal: Vassal) -> None:
        """The first connection on an on-demand socket: start the vassal with it."""
        self.sel.unregister(vassal.on_demand)
        if not self.launcher.check(vassal):
            return  # logged; the file's next change arms it again
        log(f"vassal {vassal.name}: connection on {vassal.socket_name}: starting it")
        self.spawn(vassal, vassal.on_demand.fileno())  # type: ignore[union-attr]

    def disarm(self, vassal: Vassal) -> None:
        """Close and remove an on-demand socket (the file went, or we stop)."""
        sock, vassal.on_demand = vassal.on_demand, None
        if sock is None:
            return
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        close_on_demand(sock)

    def spawn(self, vassal: Vassal, stdin: int | None = None) -> None:
        try:
            launched = self.launcher.launch(vassal, stdin)
        except (OSError, subprocess.SubprocessError) as exc:
            log(f"vassal {vassal.name}: cannot start: {exc}")
            self.died(vassal, None)
            return
        if launched is None:  # emperor-tyrant refused it
            return
        proc, link = launched
        vassal.started(proc, link, time.time(), time.monotonic())
        self.by_pid[proc.pid] = vassal
        self.sel.register(link, selectors.EVENT_READ, partial(self.handle_link, vassal))
        log(f"vassal {vassal.name}: started (pid {proc.pid}) from {vassal.real}")

    def handle_link(self, vassal: Vassal) -> None:
        if vassal.link is None:
            return
        words = vassal.read()
        if words is None:  # the vassal closed its end; its exit is seen by reap()
            self.sel.unregister(vassal.link)
            vassal.close_link()
            return
        for word in words:
            if word == VASSAL_READY:
                what = vassal.ready(time.time())
                if what:
                    log(f"vassal {vassal.name}: {what} (pid {vassal.pid})")

    def remove(self, vassal: Vassal, why: str) -> None:
        self.vassals.pop(vassal.path, None)
        self.disarm(vassal)
        if vassal.proc is None:
            log(f"vassal {vassal.name}: removed ({why})")
            return
        log(f"vassal {vassal.name}: {why}: graceful stop (pid {vassal.pid})")
        self.stop(vassal, signal.SIGTERM)
        self.leaving.append(vassal)

    def stop(self, vassal: Vassal, how: int) -> None:
        if vassal.proc is None:
            return
        vassal.state = VassalState.STOPPING
        if how == signal.SIGTERM:
            if not vassal.kill_at:
                vassal.kill_at = time.monotonic() + self.stop_mercy
            vassal.send(EMPEROR_STOP)
        else:
            vassal.kill_at = time.monotonic() + 5.0
            send_signal(vassal.proc.pid, how)

    def kill_late(self, now: float) -> None:
        for vassal in list(self.by_pid.values()):
            if vassal.kill_at and now >= vassal.kill_at:
                log(f"vassal {vassal.name} (pid {vassal.pid}) did not stop in time: SIGKILL")
                vassal.kill_at = now + 5.0
                send_signal(vassal.pid, signal.SIGKILL)  # type: ignore[arg-type]

    def reap(self) -> None:
        for pid, status in reap_children():
            vassal = self.by_pid.pop(pid, None)
            if vassal is None:
                continue  # a worker of a dead vassal, reparented to us (subreaper)
            if vassal.proc is not None:
                vassal.proc.returncode = os.waitstatus_to_exitcode(status)
            self.died(vassal, status)

    def died(self, vassal: Vassal, status: int | None) -> None:
        if vassal.link is not None:
            self.sel.unregister(vassal.link)
            vassal.close_link()
        pid = vassal.pid
        vassal.proc = None
        vassal.kill_at = 0.0
        how = "did not start" if status is None else describe_exit(status)
        if vassal in self.leaving:
            self.leaving.remove(vassal)
            log(f"vassal {vassal.name} (pid {pid}) stopped: {how}")
            for waiting in self.vassals.values():
                if waiting.wait_for is vassal:
                    waiting.wait_for = None
                    self.start(waiting)
            return
        if self.stopping:
            log(f"vassal {vassal.name} (pid {pid}) stopped: {how}")
            vassal.state = VassalState.STOPPED
            return
        delay = vassal.died(time.monotonic(), self.throttle, self.max_throttle)
        again = "waiting for connections again" if vassal.on_demand else "starting it again"
        log(
            f"vassal {vassal.name} (pid {pid}) {how}; "
            + (f"{again} in {delay:.1f}s (throttle)" if delay else again)
        )

    def restart_due(self, now: float) -> None:
        if self.stopping:
            return
        for vassal in list(self.vassals.values()):
            if vassal.state is VassalState.THROTTLED and now >= vassal.restart_at:
                self.start(vassal)

    def check_all_started(self) -> None:
        """systemd: READY=1 once every vassal that can start has started."""
        if self.notified_ready or self.stopping:
            return
        if any(vassal.holds_up_ready for vassal in self.vassals.values()):
            return
        self.notified_ready = True
        ready = sum(1 for v in self.vassals.values() if v.state is VassalState.READY)
        self.notifier.send(f"READY=1\nSTATUS={ready} of {len(self.vassals)} vassal(s) ready")
        log(f"emperor: {ready} of {len(self.vassals)} vassal(s) ready")

    # -- stats ---------------------------------------------------------------------------------------

    def stats(self) -> dict:
        return {
            "pid": self.pid,
            "emperor": self.patterns,
            "throttle_ms": int(self.throttle * 1000),
            "max_throttle_ms": int(self.max_throttle * 1000),
            "vassals": [v.stats() for v in sorted(self.vassals.values(), key=lambda v: v.path)],
            "leaving": [v.stats() for v in self.leaving],
        }

    # -- stopping --------------------------------------------------------------------------------------

    def stop_all(self, signum: int) -> None:
        if self.stopping and signum == signal.SIGTERM:
            return
        how = "graceful" if signum == signal.SIGTERM else "immediate"
        log(f"{signal.Signals(signum).name}: {how} stop of every vassal")
        if not self.stopping:
            self.notifier.send("STOPPING=1")
        self.stopping = True
        for vassal in list(self.by_pid.values()):
            self.stop(vassal, signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    def stopped(self) -> int:
        for vassal in self.vassals.values():
            self.disarm(vassal)
        if self.stats_server is not None:
            self.stats_server.close()
        if self.pidfile:
            remove_pidfile(self.pidfile, self.pid)
        if self.watcher is not None:
            self.watcher.close()
        log("emperor stopped")
        return 0


def run(cfg) -> int:
    """Run the Emperor for ``cfg`` (its ``emperor`` patterns) until it stops."""
    try:
        return Emperor(cfg).run()
    except KeyboardInterrupt:
        return 0
    except Exception:
        log(f"internal error in the emperor:\n{traceback.format_exc()}")
        return 1
