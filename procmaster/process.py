"""What a procmaster process does to itself, through Linux's ``prctl`` and
``setrlimit``: die with its parent (``PR_SET_PDEATHSIG``: a worker with its
master, a vassal with its emperor), carry a name (``PR_SET_NAME``: ``procname``,
``auto-procname``), reap orphaned descendants (``PR_SET_CHILD_SUBREAPER``: the
emperor) and raise its descriptor limit (``max-fd``); and how it runs procmaster
again (``procmaster_command``: a reload's re-exec and check, a vassal).

Running procmaster again loads the package this process was loaded from, whatever
the working directory: ``python -m procmaster`` would put the working directory
first on ``sys.path``, so a ``procmaster.py`` or ``procmaster/`` planted there (the
start directory, a vassal's INI directory) would run, as root, on the next reload.
The command is ``python -c BOOTSTRAP PACKAGE_PARENT ARGS...``: the bootstrap puts
the installed package's parent directory first on ``sys.path``, drops the working
directory (``''``) and imports ``procmaster.cli``; ``PYTHONPATH``, site and user site stay as they were
(a venv or a ``PYTHONPATH`` install keeps working; Python 3.10 has no ``-P``, and
``-I`` would drop them). The app's directory is added later by the app loader,
after procmaster's own modules are bound to their package.

Must not know: which kind of process it is beyond the role name it is given.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from collections.abc import Iterable, Iterator

__all__ = [
    "BOOTSTRAP",
    "is_procmaster_argv",
    "procmaster_command",
    "become_subreaper",
    "read_signals",
    "signal_pipe",
    "signalled",
    "SIGNAL_SEEN",
    "reap_children",
    "send_signal",
    "die_with_parent",
    "process_name",
    "set_max_fd",
    "set_process_name",
]

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

# ``python -c BOOTSTRAP PACKAGE_PARENT ARGS...``: procmaster from PACKAGE_PARENT only
BOOTSTRAP = (
    "import sys; p = sys.argv.pop(1); sys.path[:] = [p, *(x for x in sys.path if x)]; "
    "from procmaster.cli import main; sys.exit(main())"
)
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INTERPRETER_ARG_OPTIONS = (b"-X", b"-W", b"-Q")  # options of python that take a value


def procmaster_command(args: Iterable[str]) -> list[str]:
    """The command line running procmaster with ``args`` from the package this
    process runs, never from the working directory (see the module's docstring)."""
    return [sys.executable, "-c", BOOTSTRAP, _PACKAGE_PARENT, *args]


def is_procmaster_argv(argv: list[bytes]) -> bool:
    """Whether a command line (``/proc/PID/cmdline`` split at NULs) runs procmaster:
    ``python [options] -m procmaster``, ``python -c BOOTSTRAP`` (our own re-exec)
    or the ``procmaster`` entry script; never because the word appears in an
    argument (``pytest --cov=procmaster``, a path in a venv named so)."""
    if not argv:
        return False
    if os.path.basename(argv[0]) == b"procmaster":
        return True
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == b"-m":
            return argv[i + 1 : i + 2] == [b"procmaster"]
        if arg == b"-c":
            return argv[i + 1 : i + 2] == [BOOTSTRAP.encode()]
        if arg in _INTERPRETER_ARG_OPTIONS:
            i += 2
            continue
        if not arg.startswith(b"-") or arg == b"-":
            return os.path.basename(arg) == b"procmaster"  # the script python runs
        i += 1
    return False


def set_process_name(name: str) -> None:
    """The kernel's name of this process (``ps -o comm``, ``top``; 15 bytes)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - Linux has prctl
        pass


def process_name(cfg, role: str) -> str | None:
    """``procname-prefix`` + the role when ``auto-procname`` (uWSGI's names);
    ``procname-master`` names the master, ``procname`` every process."""
    prefix = cfg.procname_prefix
    given = (role == "master" and cfg.get("procname-master")) or cfg.get("procname")
    if given:
        return prefix + given
    if cfg.get("auto-procname"):
        return prefix + role
    return prefix + "procmaster" if prefix else None


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL us when the master dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - Linux has prctl
        pass
    if os.getppid() != parent_pid:  # the master died before prctl took effect
        os._exit(1)


def become_subreaper() -> None:
    """Adopt our descendants orphaned by their parent's death (``PR_SET_CHILD_SUBREAPER``:
    the emperor reaps the workers of a vassal killed with SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - Linux has prctl
        pass


def set_max_fd(want: int) -> str | None:
    """``max-fd``: the descriptor limit (RLIMIT_NOFILE) of this process and so of
    the children it forks. Raising the hard limit needs root (as in uWSGI);
    without it the soft limit goes as high as the hard one allows, and the
    returned line says so (None when all went as asked)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        got = min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (got, hard))
        return f"max-fd {want}: cannot raise the hard limit ({hard}); using {got}"
    return None


def reap_children() -> Iterator[tuple[int, int]]:
    """``(pid, wait status)`` of every child that has ended, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def signal_pipe(signals: Iterable[int]) -> int:
    """Signals as bytes on a pipe, for a loop that waits on descriptors: each of
    ``signals`` gets a handler that does nothing, so ``signal.set_wakeup_fd``
    writes its number to the pipe and the loop acts on it; SIGPIPE is ignored (a
    gone peer is an EPIPE, never a death). Returns the read end (non-blocking,
    close-on-exec)."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    for sig in signals:
        signal.signal(sig, _wake_only)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    return r


def signalled(fd: int, wanted: Iterable[int]) -> bool:
    """Whether one of ``wanted`` is among the signals waiting on a ``signal_pipe``.
    Others are read and dropped: a forked child (spooler, mule) still has the
    master's handlers for some signals, and the wake-up descriptor is written for
    every handled signal, such as the SIGCHLD of a process the app started."""
    return not set(read_signals(fd)).isdisjoint(wanted)


def read_signals(fd: int) -> bytes:
    """The signal numbers waiting on a ``signal_pipe`` (empty when none)."""
    try:
        return os.read(fd, 256)
    except BlockingIOError:
        return b""


# set by a ``signal_pipe`` signal's handler (run in the main thread soon after the
# signal): a loop busy since its last poll sees from it, without a system call,
# that a signal came in meanwhile (``Worker.accept`` reads it before each client)
SIGNAL_SEEN = [False]


def _wake_only(signum, frame) -> None:
    SIGNAL_SEEN[0] = True  # the wake-up fd carries the signal itself to the loop


def send_signal(pid: int, sig: int) -> bool:
    """``kill(pid, sig)``; False when the process is already gone (not an error)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True
