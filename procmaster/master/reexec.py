"""A full reload across an exec: the check (probe), handing over, taking over.

Theory of operation
-------------------
A full reload re-reads the INI and re-imports the app, so it needs a fresh
interpreter. ``FullReload.start_probe`` first runs ``procmaster`` again with
``PROCMASTER_PROBE`` set: it loads the new config and app and exits (0: they
load). The probe is a child of the master, so its exit wakes the master's loop
through SIGCHLD like a worker's; ``reaped`` takes its status and ``result``
hands it to the planner once. No polling. The probe writes its error, as one
message, to its stdout, an anonymous temporary file (never a pipe the probe
could block on); ``detail`` is that message, for the reload's outcome.

Both run the installed package, never a ``procmaster`` in the working directory
(``procmaster.process.procmaster_command``). ``execute`` re-executes the master (same pid) with what the next image needs in
its environment: the listening sockets (``sockets.export_fds``), the stats socket,
and an ``ipc.ReexecState`` with the reload's state, the old workers and their
scoreboard slots and the scoreboard's memory fd. In the next image ``inherited``
is that state, and ``boards`` maps the scoreboard again: the old workers keep
their slots (harakiri watches them while they drain); the same memory serves
the new workers when its size and cores still fit, else a new one does. Only
the current scoreboard is handed on: after two full reloads that changed
``processes`` or ``threads`` within one drain, the oldest workers have no slot.

Must not know: what a worker does, how the reload goes on after the exec.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

from .. import sockets as sockets_mod
from ..ipc import PROBE_ENV, REEXEC_ENV, ReexecState
from ..process import procmaster_command
from ..scoreboard import Scoreboard
from .workers import WorkerProc

__all__ = ["FullReload"]


class FullReload:
    def __init__(self, argv: list[str], cwd: str, log: Callable[[str], None]) -> None:
        self.argv = argv
        self.cwd = cwd
        self.log = log
        self.inherited = ReexecState.decode(os.environ.pop(REEXEC_ENV, None))
        self.probe: subprocess.Popen | None = None
        self.probe_out = None  # the probe's stdout: its error in one message
        self.detail = ""  # the last probe's error message ("" when it passed)
        self.waiting: ReexecState | None = None  # an exec waiting for the daemons to stop

    def boards(self, nslots: int, cores: int) -> tuple[Scoreboard | None, Scoreboard]:
        """(the previous image's scoreboard or None, this image's): the same
        memory when it still fits."""
        state = self.inherited
        old = None
        if state is not None and state.board:
            fd, n, c = state.board
            try:
                old = Scoreboard(n, fd=fd, cores=c)
            except (OSError, ValueError):
                old = None
        if old is not None and old.nslots >= nslots and old.cores == cores:
            return old, old
        return old, Scoreboard(nslots, cores=cores)

    # -- the probe -------------------------------------------------------------------

    def start_probe(self, log_fd: int, shed: Callable[[], int] | None = None) -> bool:
        """Start the check. Out of descriptors (EMFILE, ENFILE), ``shed`` may free
        some (it closes the master's own service clients, returns how many), and
        the check is tried once more; else the reload fails with one line."""
        env = dict(os.environ)
        env[PROBE_ENV] = "1"
        env[REEXEC_ENV] = ""  # read the config as the re-executed image will (if-reload)
        for attempt in (1, 2):
            try:
                # lazily: only a full reload starts the probe (in the try: out of
                # descriptors, the import fails too, and shedding clients helps)
                import subprocess

                # a file, not a pipe: the probe never blocks on a master busy elsewhere
                # (a memfd: out of descriptors it fails with EMFILE, which tempfile hides)
                self.probe_out = os.fdopen(
                    os.memfd_create("procmaster-check-out", os.MFD_CLOEXEC), "w+b"
                )
                self.probe = subprocess.Popen(
                    procmaster_command(self.argv),
                    env=env,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=self.probe_out,
                    stderr=log_fd,
                    close_fds=True,
                )
                return True
            except OSError as exc:
                if self.probe_out is not None:
                    self.probe_out.close()
                    self.probe_out = None
                starved = exc.errno in (errno.EMFILE, errno.ENFILE)
                freed = shed() if starved and shed is not None and attempt == 1 else 0
                if freed:
                    self.log(
                        f"reload: out of descriptors ({exc.strerror}); closed {freed} "
                        "stats client(s) to start the check"
                    )
                    continue
                self.log(f"reload failed: cannot start the check: {exc}; still serving")
                return False
        return False  # pragma: no cover - the loop returns

    def reaped(self, pid: int, status: int) -> bool:
        """True when ``pid`` was the probe (the master's ``waitpid`` reaped it)."""
        if self.probe is None or pid != self.probe.pid:
            return False
        self.probe.returncode = os.waitstatus_to_exitcode(status)
        return True

    def result(self) -> bool | None:
        """Once, after the probe ended: did the new config and app load?"""
        probe = self.probe
        if probe is None or probe.returncode is None:
            return None
        self.probe = None
        self.detail = ""
        if self.probe_out is not None:
            try:
                self.probe_out.seek(0)
                self.detail = self.probe_out.read(8192).decode("utf-8", "replace").strip()
            finally:
                self.probe_out.close()
                self.probe_out = None
        return probe.returncode == 0

    def kill_probe(self) -> None:
        if self.probe is not None and self.probe.returncode is None:
            self.probe.kill()

    # -- the exec --------------------------------------------------------------------

    def execute(
        self,
        workers: Iterable[WorkerProc],
        board: Scoreboard,
        listeners: list,
        stats,
        blocked: tuple[int, ...],
    ) -> None:
        """Re-execute the master with ``self.waiting``; returns only when that failed
        (said in the log; signals are then handled again)."""
        state, self.waiting = self.waiting, None
        assert state is not None
        workers = list(workers)
        state.old = [(w.pid, w.wid) for w in workers]
        state.old_slots = [w.slot if w.board is board else -1 for w in workers]
        state.board = (board.inheritable(), board.nslots, board.cores)
        env = dict(os.environ)
        sockets_mod.export_fds(listeners, env)
        if stats is not None:
            stats.export(env)
        env[REEXEC_ENV] = state.encode()
        # Signals that arrive while the next image starts stay pending (the mask
        # survives exec) until it has its handlers: a SIGHUP then must not kill it.
        signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        wakeup = signal.set_wakeup_fd(-1)
        try:
            os.chdir(self.cwd)
        except OSError:
            pass
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            os.execve(sys.executable, procmaster_command(self.argv), env)
        except OSError as exc:  # pragma: no cover - the interpreter is there
            self.log(f"reload failed: cannot re-execute: {exc}")
            signal.set_wakeup_fd(wakeup, warn_on_full_buffer=False)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
