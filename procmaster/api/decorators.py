"""``uwsgidecorators``: uWSGI's decorators over the ``uwsgi`` module, written afresh.

Theory of operation
-------------------
Each decorator keeps uWSGI's documented behaviour:

* ``@postfork``: run the function in every worker right after it is forked
  (chained on ``uwsgi.post_fork_hook``, in the order they were declared).
* ``@atexit``: run the function when a worker leaves on a request to stop
  (chained on ``uwsgi.atexit``), never after harakiri or a kill.
* ``@lock`` / ``@lock(n)``: hold ``uwsgi.lock(n)`` around every call (across all
  processes of the instance).
* ``@thread``: run each call in a new daemon thread.

* ``@signal(n, target="")``: ``func(n)`` handles uWSGI signal ``n``.
* ``@timer(seconds, target="")``, ``@rbtimer(...)``: ``func(signum)`` runs every
  ``seconds`` (on a free signal number; ``signum=`` picks one).
* ``@cron(minute, hour, day, month, weekday, target="")``: at those times (-1 any,
  -N every N).
* ``@filemon(path, target="")``: when ``path`` changes.

Decorators for subsystems procmaster does not run (the spooler, mules) are not
defined: ``from uwsgidecorators import spool`` fails at import, where the app
author sees it, rather than later.

Must not know: anything but the ``uwsgi`` module it decorates for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import wraps
from typing import Any

import uwsgi  # served by procmaster.api in procmaster's processes only

__all__ = [
    "atexit",
    "cron",
    "filemon",
    "get_free_signal",
    "lock",
    "postfork",
    "rbtimer",
    "signal",
    "thread",
    "timer",
]

_postfork: list[Callable[[], Any]] = []
_atexit: list[Callable[[], Any]] = []


def _run_postfork() -> None:
    for func in _postfork:
        func()


def _run_atexit() -> None:
    for func in _atexit:
        func()


def postfork(func: Callable[[], Any]) -> Callable[[], Any]:
    """Run ``func`` in each worker just after the fork."""
    _postfork.append(func)
    uwsgi.post_fork_hook = _run_postfork
    return func


def atexit(func: Callable[[], Any]) -> Callable[[], Any]:
    """Run ``func`` when a worker stops on request (not after harakiri or a kill)."""
    _atexit.append(func)
    uwsgi.atexit = _run_atexit
    return func


class lock:  # noqa: N801 - uWSGI's name
    """``@lock`` or ``@lock(n)``: call the function holding ``uwsgi.lock(n)``."""

    def __init__(self, arg: Any = 0) -> None:
        self.func = None
        self.num = 0
        if callable(arg):
            self.func = arg
            wraps(arg)(self)
        else:
            self.num = arg

    def _locked(self, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        uwsgi.lock(self.num)
        try:
            return func(*args, **kwargs)
        finally:
            uwsgi.unlock(self.num)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.func is not None:
            return self._locked(self.func, args, kwargs)
        func = args[0]

        @wraps(func)
        def locked(*a: Any, **kw: Any) -> Any:
            return self._locked(func, a, kw)

        return locked


def thread(func: Callable[..., Any]) -> Callable[..., Any]:
    """Each call runs ``func`` in a new daemon thread; the call returns ``func``
    itself at once, as uWSGI's does (not the thread, nor its result)."""

    @wraps(func)
    def start(*args: Any, **kwargs: Any) -> Callable[..., Any]:
        threading.Thread(target=func, args=args, kwargs=kwargs, daemon=True).start()
        return func

    return start


def get_free_signal() -> int:
    """The lowest signal number without a handler in this process."""
    for num in range(256):
        if not uwsgi.signal_registered(num):
            return num
    raise ValueError("every uWSGI signal number has a handler")


class signal:  # noqa: N801 - uWSGI's name
    """``@signal(n, target="")``: the function handles uWSGI signal ``n``."""

    def __init__(self, num: int, **kwargs: Any) -> None:
        self.num = num
        self.target = kwargs.get("target", "")

    def __call__(self, func: Callable[[int], Any]) -> Callable[[int], Any]:
        uwsgi.register_signal(self.num, self.target, func)
        return func


class timer:  # noqa: N801 - uWSGI's name
    """``@timer(seconds, target="", signum=None)``: ``func(signum)`` every ``seconds``."""

    def __init__(self, seconds: float, **kwargs: Any) -> None:
        self.seconds = seconds
        self.num = kwargs.get("signum", get_free_signal())
        self.target = kwargs.get("target", "")

    def __call__(self, func: Callable[[int], Any]) -> Callable[[int], Any]:
        uwsgi.register_signal(self.num, self.target, func)
        uwsgi.add_timer(self.num, self.seconds)
        return func


class rbtimer(timer):  # noqa: N801 - uWSGI's name
    """``@rbtimer(seconds, target="", signum=None)``: as ``timer`` (procmaster's timers
    are all kept by the master's loop)."""

    def __call__(self, func: Callable[[int], Any]) -> Callable[[int], Any]:
        uwsgi.register_signal(self.num, self.target, func)
        uwsgi.add_rb_timer(self.num, self.seconds)
        return func


class cron:  # noqa: N801 - uWSGI's name
    """``@cron(minute, hour, day, month, weekday, target="")``."""

    def __init__(
        self, minute: int, hour: int, day: int, month: int, weekday: int, **kwargs: Any
    ) -> None:
        self.when = (minute, hour, day, month, weekday)
        self.num = kwargs.get("signum", get_free_signal())
        self.target = kwargs.get("target", "")

    def __call__(self, func: Callable[[int], Any]) -> Callable[[int], Any]:
        uwsgi.register_signal(self.num, self.target, func)
        uwsgi.add_cron(self.num, *self.when)
        return func


class filemon:  # noqa: N801 - uWSGI's name
    """``@filemon(path, target="")``: ``func(signum)`` when ``path`` changes."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        self.path = path
        self.num = kwargs.get("signum", get_free_signal())
        self.target = kwargs.get("target", "")

    def __call__(self, func: Callable[[int], Any]) -> Callable[[int], Any]:
        uwsgi.register_signal(self.num, self.target, func)
        uwsgi.add_file_monitor(self.num, self.path)
        return func
