"""A spooler process: runs the tasks of one directory through ``uwsgi.spooler``.

Theory of operation
-------------------
The master forks it (``spoolers.Spoolers``) from its own image, so a preloaded
app's ``uwsgi.spooler`` (set by ``@spool`` or by hand) is there. The loop: list
the directory (``spool_files.scan``), claim each task in turn, skip one whose
``at`` is in the future, call the handler with the task's vars (bytes keys and
values, plus ``spooler_task_name`` and ``body`` as uWSGI gives them) and act on
its answer: ``SPOOL_OK`` (-2) removes the task; ``SPOOL_RETRY`` (-1), an
exception (logged with its traceback) or no answer keep it for the next scan;
``SPOOL_IGNORE`` (0) leaves it for another handler. Then it waits: for a new
file in the directory (inotify, so a spooled task starts at once) or
``spooler-frequency`` seconds, whichever comes first; a uWSGI signal routed to
the ``spooler`` target runs its handler in that wait.

``spooler-harakiri`` arms an alarm around each task: a task running longer is
killed with its process, said in the log, and runs again later (its file is
still there). ``spooler-max-tasks`` makes the process exit after that many tasks
to be replaced. ``SIGTERM``/``SIGHUP`` (a graceful stop or reload) let the
current task finish; ``SIGINT``/``SIGQUIT`` end the process at once.

Must not know: sockets, workers, the master's loop, the reload plan.
"""

from __future__ import annotations

import os
import select
import signal
import time
import traceback
from collections.abc import Callable
from typing import Any

from ..ipc import STOP_SIGNALS
from ..logs import log
from ..process import die_with_parent, set_process_name, signal_pipe, signalled
from .spool_files import SpoolError, claim, decode_task, scan

__all__ = ["run_spooler"]

SPOOL_OK, SPOOL_RETRY, SPOOL_IGNORE = -2, -1, 0


def _watch(directory: str):
    """An inotify fd that becomes readable when a task lands in ``directory``."""
    try:
        import inotify_simple  # noqa: PLC0415 - only spooler processes need it

        ino = inotify_simple.INotify()
        flags = inotify_simple.flags
        ino.add_watch(directory, flags.MOVED_TO | flags.CLOSE_WRITE)
        return ino
    except (OSError, ImportError):
        return None


def run_spooler(runtime: Any, directory: str, master_pid: int) -> None:
    """The spooler process's life; never returns."""
    code = 1
    try:
        die_with_parent(master_pid)
        set_process_name("uwsgi spooler")
        runtime.enter_spooler(directory)
        code = _Spooler(runtime, directory).run()
    except BaseException:
        log(f"spooler {directory} (pid {os.getpid()}) failed:\n{traceback.format_exc().rstrip()}")
    finally:
        os._exit(code)


class _Spooler:
    def __init__(self, runtime: Any, directory: str) -> None:
        cfg = runtime.cfg
        self.runtime = runtime
        self.directory = directory
        self.frequency = max(float(cfg.spooler_frequency), 0.05)
        self.ordered = bool(cfg.spooler_ordered)
        self.max_tasks = int(cfg.spooler_max_tasks)
        self.harakiri = int(cfg.spooler_harakiri)
        self.stopping = False
        self.done = 0
        self.invalid: set[str] = set()

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)  # the master's handlers, not ours
        wake_r = signal_pipe(STOP_SIGNALS)
        ino = _watch(self.directory)
        log(f"spooler on {self.directory} (pid {os.getpid()}) ready")
        while not self.stopping:
            self.run_due_tasks()
            if self.stopping or (self.max_tasks and self.done >= self.max_tasks):
                break
            inbox = self.runtime.signals.inbox
            fds = [wake_r, *inbox] + ([ino.fileno()] if ino is not None else [])
            ready, _, _ = select.select(fds, [], [], self.frequency)
            if wake_r in ready and signalled(wake_r, STOP_SIGNALS):
                self.stopping = True
            for sock in inbox:
                if sock in ready and not self.stopping:
                    self.runtime.signals.take(sock)  # a uWSGI signal for the spooler
            if ino is not None and ino.fileno() in ready:
                ino.read(timeout=0)
        if self.max_tasks and self.done >= self.max_tasks and not self.stopping:
            log(
                f"spooler {self.directory} (pid {os.getpid()}): {self.done} tasks done "
                "(spooler-max-tasks): exiting to be replaced"
            )
        self.runtime.exiting()
        return 0

    def run_due_tasks(self) -> None:
        for path in scan(self.directory, self.ordered):
            if self.stopping or (self.max_tasks and self.done >= self.max_tasks):
                return
            self.run_task(path)

    def run_task(self, path: str) -> None:
        if path in self.invalid:
            return
        claimed = claim(path)
        if claimed is None:
            return
        fd, data = claimed
        try:
            try:
                task, body = decode_task(data)
            except SpoolError as exc:
                self.invalid.add(path)
                log(
                    f"spooler {self.directory}: {path} is not a task I can read ({exc}): "
                    "left in place"
                )
                return
            at = task.get(b"at")
            if at and _number(at) > time.time():
                return
            handler: Callable[[dict], Any] | None = getattr(self.runtime.module, "spooler", None)
            if not callable(handler):
                log(f"spooler {self.directory}: no uwsgi.spooler handler: task kept")
                return
            args: dict = {"spooler_task_name": os.path.basename(path).encode(), **task}
            if body:
                args["body"] = body
            if self.harakiri:
                name = os.path.basename(path)
                signal.signal(signal.SIGALRM, lambda *_: _harakiri(self.directory, name))
                signal.alarm(self.harakiri)
            try:
                result = handler(args)
            except Exception:
                log(
                    f"spooler {self.directory}: task {os.path.basename(path)} raised "
                    f"(kept for a retry):\n{traceback.format_exc().rstrip()}"
                )
                result = SPOOL_RETRY
            finally:
                if self.harakiri:
                    signal.alarm(0)
            self.done += 1
            if result == SPOOL_OK:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        finally:
            os.close(fd)


def _number(raw: bytes) -> float:
    try:
        return float(raw)
    except ValueError:
        return 0.0


def _harakiri(directory: str, name: str) -> None:
    log(
        f"HARAKIRI: spooler {directory} (pid {os.getpid()}): task {name} ran past "
        "spooler-harakiri: the process ends, the task runs again later"
    )
    os._exit(1)
