"""Hooks: actions the config asks for at fixed moments of the start-up (uWSGI's
``hook-*``, ``exec-*``, ``call-*``).

Theory of operation
-------------------
``hook-PHASE = ACTION:ARGS`` lines (and ``exec-PHASE = CMD``, ``call-PHASE =
SYMBOL``, short for ``exec:CMD`` and ``call:SYMBOL``) are read once, in config
order, into ``Hooks`` (``Hooks.from_config``: an unknown phase or action, or a line
without ``:``, is a ``HookError`` naming file:line, before anything runs). The
master and the worker call ``run(phase)`` at the moments uWSGI runs them:

=====================  ============================================================
``asap``               the master, first thing
``pre-jail``,          the master, then, in this order, before the sockets are bound
``in-jail``,           (so they may make a unix socket's directory) and privileges
``post-jail``,         dropped; procmaster has no jail
``as-root``
``as-user``            the master, after privileges are dropped (which procmaster
                       does after binding, so privileged ports need no
                       shared-socket: uWSGI runs these before binding)
``pre-app``/``post-app``  around loading the app (the master; each worker with
                       lazy-apps)
``master-start``       the master, once its workers are forked
``post-fork``          each worker, right after the fork
``accepting``          each worker, when it starts accepting (``accepting1``:
                       worker 1 only; ``-once``: only the first time per
                       instance, not again after a respawn)
``as-user-atexit``     the master, when it exits (failures are only logged)
=====================  ============================================================

A failing action (non-zero exit of ``exec``, an OSError, a missing symbol) logs
``hook-PHASE = LINE (file:line) failed: why`` and, as in uWSGI, ends the
instance: ``run`` returns False and the caller stops (the master exits non-zero;
a worker asks the master to stop everything).

Actions: ``exec``/``safeexec`` (``/bin/sh -c``; safeexec ignores the exit code),
``cd``/``chdir``, ``mkdir``, ``putenv``, ``unlink``, ``create``, ``write``/
``writen``/``append``/``appendn`` (``FILE TEXT``), ``writefifo``, ``chmod``
(``FILE MODE`` octal), ``sticky``, ``chown`` (``FILE USER GROUP``), ``print``/
``log``, ``exit[:CODE]``, ``wait_for_file``/``wait_for_dir``/``wait_for_fs``
(60 s), ``call``/``callret``/``callint``/``callintret`` (a C symbol of the
process, through ctypes, as uWSGI's dlsym), ``pycall`` (``module.function
[ARG]``, a procmaster extension for Python code), ``unix_signal:N FUNCTION``
(the master: signal N does what uWSGI's ``gracefully_kill_them_all``,
``kill_them_all``, ``grace_them_all`` or ``reap_them_all`` does, through
``signal_map``).

Must not know: sockets, workers' loops, WSGI.
"""

from __future__ import annotations

import importlib
import mmap
import os
import signal
import stat
import time

from .logs import log

__all__ = ["HookError", "Hooks", "PHASES", "hooks_for"]

# phases that run; "fatal" is False only for atexit
PHASES = (
    "asap",
    "pre-jail",
    "in-jail",
    "post-jail",
    "as-root",
    "as-user",
    "pre-app",
    "post-app",
    "master-start",
    "post-fork",
    "accepting",
    "accepting1",
    "accepting-once",
    "accepting1-once",
    "as-user-atexit",
)
_FAMILIES = {"hook-": None, "exec-": "exec", "call-": "call"}

# uWSGI's functions named by unix_signal -> the signal procmaster's master reads
# as the same request (graceful stop, immediate stop, graceful reload)
UWSGI_FUNCTIONS = {
    "gracefully_kill_them_all": signal.SIGTERM,
    "kill_them_all": signal.SIGINT,
    "grace_them_all": signal.SIGHUP,
    "reap_them_all": signal.SIGHUP,
    "uwsgi_reload": signal.SIGHUP,
}
WAIT_FOR_FS = 60  # seconds, as uWSGI's default


class HookError(ValueError):
    """A hook line that cannot run; the message names file:line."""


class Hook:
    """One hook line; ``private`` (``!ACTION:``): its text is never logged."""

    __slots__ = ("phase", "action", "arg", "text", "where", "private")

    def __init__(self, phase: str, action: str, arg: str, text: str, where: str) -> None:
        self.phase = phase
        self.action = action
        self.arg = arg
        self.text = text
        self.where = where
        self.private = False


class Hooks:
    """Every hook line, by phase, in config order."""

    def __init__(self, hooks: list[Hook]) -> None:
        self.by_phase: dict[str, list[Hook]] = {}
        for hook in hooks:
            self.by_phase.setdefault(hook.phase, []).append(hook)
        # signal -> the signal the master treats it as (unix_signal)
        self.signal_map: dict[int, int] = {}
        # accepting-once: one byte per worker id, shared by all workers (mapped
        # before the fork); byte 0 for accepting1-once
        self.once = None
        if "accepting-once" in self.by_phase or "accepting1-once" in self.by_phase:
            self.once = mmap.mmap(-1, 4096)

    def __bool__(self) -> bool:
        return bool(self.by_phase)

    @classmethod
    def from_config(cls, entries) -> Hooks:
        hooks = []
        for entry in entries:
            hook = _parse(entry.key, entry.value, entry.origin)
            if hook is not None:
                hooks.append(hook)
        return cls(hooks)

    def run(self, phase: str) -> bool:
        """Run the phase's hooks in order; False when one failed (fatal phases)."""
        for hook in self.by_phase.get(phase, ()):
            if hook.private:
                log(f"running --- PRIVATE HOOK --- ({phase})...")
            else:
                log(f'running "{hook.action}:{hook.arg}" ({phase})...')
            try:
                why = ACTIONS[hook.action](self, hook.arg)
            except OSError as exc:
                why = exc.strerror or str(exc)
            except Exception as exc:  # a pycall target's own error
                why = f"{type(exc).__name__}: {exc}"
            if why:
                text = f"hook-{phase} (private)" if hook.private else hook.text
                log(f"error: {text} ({hook.where}) failed: {why if not hook.private else 'error'}")
                if phase != "as-user-atexit":
                    return False
        return True

    def run_all(self, *phases: str) -> bool:
        """Run several phases in order; False at the first that failed."""
        return all(self.run(phase) for phase in phases)

    def run_accepting(self, wid: int) -> bool:
        """The accepting phases for worker ``wid``."""
        if not self.run("accepting"):
            return False
        if wid == 1 and not self.run("accepting1"):
            return False
        once = self.once
        if once is not None:
            if 0 < wid < len(once) and not once[wid]:
                once[wid] = 1
                if not self.run("accepting-once"):
                    return False
            if wid == 1 and not once[0]:
                once[0] = 1
                return self.run("accepting1-once")
        return True


_cache: tuple[int, Hooks] | None = None


def hooks_for(cfg) -> Hooks:
    """The ``Hooks`` of ``cfg``, read once per process image: the master reads them
    before forking, and its workers find the same object (and its shared
    ``-once`` bytes) here."""
    global _cache
    if _cache is None or _cache[0] != id(cfg):
        _cache = (id(cfg), Hooks.from_config(cfg.entries))
    return _cache[1]


def _parse(key: str, value: str, where: str) -> Hook | None:
    family = next((f for f in _FAMILIES if key.startswith(f)), None)
    if family is None:
        return None
    phase, implied = key[len(family) :], _FAMILIES[family]
    text = f"{key} = {value}"
    if phase not in PHASES:
        raise HookError(
            f"{where}: {text}: the hook phase {phase!r} is not supported "
            f"(supported: {', '.join(PHASES)})"
        )
    private = False
    if implied is not None:
        action, arg = implied, value
    else:
        action, colon, arg = value.partition(":")
        if not colon:
            raise HookError(f"{where}: {text}: invalid hook syntax, must be ACTION:ARGS")
        private = action.startswith("!")
        action = action.lstrip("!")
        if private:
            text = f"{key} = !{action}:..."
    if action not in ACTIONS:
        raise HookError(
            f"{where}: {text}: unknown hook action {action!r} (supported: {', '.join(ACTIONS)})"
        )
    if action in _NEEDS_SPACE and " " not in arg.strip():
        raise HookError(f"{where}: {text}: {action} takes two values: {_NEEDS_SPACE[action]}")
    hook = Hook(phase, action, arg, text, where)
    hook.private = private
    return hook


# -- actions: each returns None (done) or why it failed ----------------------------------


def _exec(hooks, arg):
    import subprocess  # lazily: only exec-* hooks run commands

    code = subprocess.call(["/bin/sh", "-c", arg])
    return f'command "{arg}" exited with non-zero code: {code}' if code else None


def _safeexec(hooks, arg):
    _exec(hooks, arg)


def _chdir(hooks, arg):
    os.chdir(arg)


def _mkdir(hooks, arg):
    os.mkdir(arg, 0o777)


def _putenv(hooks, arg):
    name, eq, value = arg.partition("=")
    if not eq or not name:
        return "putenv takes NAME=VALUE"
    os.environ[name] = value


def _unlink(hooks, arg):
    os.unlink(arg)


def _create(hooks, arg):
    with open(arg, "wb"):
        pass


def _writer(mode: str, newline: bool):
    def write(hooks, arg):
        path, _, text = arg.partition(" ")
        with open(path, mode) as fh:
            fh.write(text.encode() + (b"\n" if newline else b""))

    return write


def _writefifo(hooks, arg):
    path, _, text = arg.partition(" ")
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _chmod(hooks, arg):
    path, _, mode = arg.partition(" ")
    try:
        os.chmod(path, int(mode.strip(), 8))
    except ValueError:
        return f"chmod takes FILE MODE (octal), got {mode!r}"


def _sticky(hooks, arg):
    os.chmod(arg, os.stat(arg).st_mode | stat.S_ISVTX)


def _chown(hooks, arg):
    import shutil  # lazily: only chown hooks need it

    path, user, group = (arg.split() + ["", ""])[:3]
    shutil.chown(path, user or None, group or None)


def _print(hooks, arg):
    log(arg)


def _exit(hooks, arg):
    log("exiting (hook exit)")
    os._exit(int(arg) if arg.strip().isdigit() else 0)


def _waiter(kind: str):
    def wait(hooks, arg):
        log(f"waiting for {arg} (max {WAIT_FOR_FS} seconds) ...")
        deadline = time.monotonic() + WAIT_FOR_FS
        while True:
            try:
                mode = os.stat(arg).st_mode
                if (
                    (kind == "file" and stat.S_ISREG(mode))
                    or (kind == "dir" and stat.S_ISDIR(mode))
                    or kind == "fs"
                ):
                    return None
            except OSError:
                pass
            if time.monotonic() > deadline:
                return f"{arg} unavailable after {WAIT_FOR_FS} seconds"
            time.sleep(1)

    return wait


def _caller(returns: bool, integer: bool):
    def call(hooks, arg):
        import ctypes  # lazily: only call hooks need it

        name, _, rest = arg.partition(" ")
        try:
            func = getattr(ctypes.CDLL(None), name)
        except AttributeError:
            return f'unable to find function "{name}"'
        if rest:
            value = int(rest) if integer else rest.encode()
            result = func(value)
        else:
            result = func()
        if returns and result != 0:
            return f"{name} returned {result}"
        return None

    return call


def _pycall(hooks, arg):
    target, _, rest = arg.strip().partition(" ")
    module, sep, func = target.replace(":", ".").rpartition(".")
    if not sep:
        return "pycall takes module.function [ARG]"
    fn = getattr(importlib.import_module(module), func)
    result = fn(rest) if rest else fn()
    if result is False:
        return f"{target} returned False"
    return None


def _unix_signal(hooks, arg):
    num, _, func = arg.strip().partition(" ")
    target = UWSGI_FUNCTIONS.get(func.strip())
    if target is None:
        return f'unable to find function "{func}" (known: {", ".join(UWSGI_FUNCTIONS)})'
    try:
        signum = int(num)
        signal.Signals(signum)
    except ValueError:
        return f"not a signal number: {num!r}"
    hooks.signal_map[signum] = target
    return None


ACTIONS = {
    "exec": _exec,
    "safeexec": _safeexec,
    "cd": _chdir,
    "chdir": _chdir,
    "mkdir": _mkdir,
    "putenv": _putenv,
    "unlink": _unlink,
    "create": _create,
    "creat": _create,
    "write": _writer("wb", False),
    "writen": _writer("wb", True),
    "append": _writer("ab", False),
    "appendn": _writer("ab", True),
    "writefifo": _writefifo,
    "chmod": _chmod,
    "sticky": _sticky,
    "chown": _chown,
    "print": _print,
    "log": _print,
    "exit": _exit,
    "wait_for_file": _waiter("file"),
    "wait_for_dir": _waiter("dir"),
    "wait_for_fs": _waiter("fs"),
    "call": _caller(False, False),
    "callret": _caller(True, False),
    "callint": _caller(False, True),
    "callintret": _caller(True, True),
    "pycall": _pycall,
    "unix_signal": _unix_signal,
}
_NEEDS_SPACE = {
    "write": "FILE TEXT",
    "writen": "FILE TEXT",
    "append": "FILE TEXT",
    "writefifo": "FILE TEXT",
    "chmod": "FILE MODE",
    "unix_signal": "SIGNUM FUNCTION",
}
