"""What a child the master forks does first: drop the master's descriptors, then
become a worker, a spooler process or a mule.

Theory of operation
-------------------
``ForkedChildren`` is the part of ``Master`` that runs in a forked child, kept
apart so the loop in ``arbiter`` reads in one sitting. A worker child calls the
worker's entry point the master was given (it never imports the worker); a
spooler child runs ``api.spooler``. Both load a lazy app themselves (a load
failure ends the child with ``EXIT_APP_FAILED``, which the master's back-off
handles).

With ``log-master`` each child gets a pipe for its fd 1 and 2 just before its
fork (``logs.capture``; the worker table's fork calls ``_before_fork`` and
``_after_fork``), and the pipes of a previous image's workers are read on.

Must not know: the worker's code, HTTP, WSGI, what a spooler task does.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import nullcontext

from ..api.mules import run_mule
from ..app import AppLoadError, load_apps
from ..ipc import EXIT_APP_FAILED, ReexecState
from ..logs import log
from ..logs.capture import Capture

__all__ = ["ForkedChildren"]


class ForkedChildren:
    """Mixed into ``Master``: the fork children's side (uses the master's attributes)."""

    capture: Capture | None = None  # log-master: the children's fd 1 and 2

    def setup_capture(self, inherited: ReexecState | None) -> None:
        """log-master: every child's stdout/stderr through the master's log chain
        (and the pipes of the previous image's workers, read on after an exec)."""
        pipes = inherited.log_pipes if inherited else []
        if self.cfg.log_master or pipes:
            self.capture = Capture(self.sel, log.write_app, self.cfg.log_master_bufsize)
            self.capture.adopt(pipes)
            if self.cfg.log_master:
                log.detach_stderr()  # procmaster's own lines keep their way
                self.capture.own()

    def capturing(self, inherited: ReexecState | None):
        """log-master set up; the context reads the master's own prints (the
        preloaded app's import) until it ends."""
        self.setup_capture(inherited)
        return self.capture.pumping() if self.capture is not None else nullcontext()

    def _before_fork(self, wid: int) -> None:
        self.runtime.before_fork(wid)
        if self.capture is not None and self.cfg.log_master:
            self.capture.before_fork()

    def _after_fork(self, forked: bool) -> None:
        if self.capture is not None:
            self.capture.after_fork(forked)

    def _child_cleanup(self) -> None:
        """In a forked child (worker, spooler): drop the master's descriptors."""
        if self.capture is not None:
            log.detach_stderr()  # procmaster's own lines keep their way
            self.capture.in_child()
        try:
            signal.set_wakeup_fd(-1)
            self.sel.close()
            os.close(self.signal_r)
            os.close(self.ready_r)
            for part in (self.stats, self.fifo, self.pushers):
                if part is not None:
                    part.close_in_child()
        except OSError:
            pass

    def _run_worker(self, wid: int, slot: int) -> None:
        """In the forked child: drop the master's fds, become worker ``wid``."""
        self._child_cleanup()
        self.worker_main(
            wid,
            self.cfg,
            self.listeners,
            self.apps,
            self.ready_w,
            self.table.board,
            slot,
            self.pid,
            self._lazy_loader,
        )

    def _fork_spooler(self, directory: str) -> int:
        # lazily (before the fork, so each spooler shares it): only a master with
        # ``spooler`` directories runs the spooler process
        from ..api.spooler import run_spooler

        pid = self._fork_child()
        if pid == 0:
            self._child_cleanup()
            if self.apps is None:
                self.apps = self._lazy_loader()
            run_spooler(self.runtime, directory, self.pid)
        return pid

    def _fork_mule(self, mule_id: int) -> int:
        pid = self._fork_child()
        if pid == 0:
            self._child_cleanup()
            if self.apps is None:
                self.apps = self._lazy_loader()
            run_mule(self.runtime, mule_id, self.pid)
        return pid

    def _fork_child(self) -> int:
        """fork() for a spooler or a mule, with its log-master pipe."""
        sys.stdout.flush()
        sys.stderr.flush()
        capture = self.capture if self.cfg.log_master else None
        if capture is not None:
            capture.before_fork()
        try:
            pid = os.fork()
        except OSError:
            if capture is not None:
                capture.after_fork(False)
            raise
        if pid and capture is not None:
            capture.after_fork(True)
        return pid

    def _lazy_loader(self):
        """Runs in a worker (lazy-apps): import the app there."""
        try:
            return load_apps(self.cfg)
        except AppLoadError as exc:
            log(f"error: {exc}")
            os._exit(EXIT_APP_FAILED)
