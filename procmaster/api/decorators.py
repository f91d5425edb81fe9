"""``uwsgidecorators``: uWSGI's decorators over the ``uwsgi`` module, written afresh.

Theory of operation
-------------------
Each decorator keeps uWSGI's documented behaviour:

* ``@postfork``: run the function in every worker, mule and spooler right after
  it is forked (chained on ``uwsgi.post_fork_hook``, in the order they were
  declared); ``@postfork(N)`` only in worker N.
* ``@mule(N)``, ``@muleloop(N)``, ``@mulemsg(N)``, ``@farm(name)``: post-fork
  entries that run in mule N (once, in a loop, per message) or in each mule of a
  farm (per farm message).
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

* ``@spool`` / ``@spool(pass_arguments=True)``, ``@spoolforever``, ``@spoolraw``:
  ``func.spool(...)`` (or calling ``func``) queues a task for the spooler; the
  spooler calls ``func`` with the task's arguments as a dict of strings (or, with
  ``pass_arguments``, with the original arguments, pickled in between). ``@spool``
  then removes the task, ``@spoolforever`` keeps it to run again, ``@spoolraw``
  does what ``func`` returns (``uwsgi.SPOOL_OK``, ``SPOOL_RETRY``, ``SPOOL_IGNORE``).
  The keys ``spooler``, ``priority``, ``at`` and ``body`` steer the spooler.

* ``@rpc(name)``: register the function for ``uwsgi.call``/``uwsgi.rpc``.

* ``@mulefunc`` / ``@mulefunc(target)``: calling the function anywhere but in a
  mule queues the call (pickled) for a programmed mule (any, mule ``target`` or
  farm ``target``), which runs it; ``mule_msg_dispatcher`` is the hook that does.

Must not know: anything but the ``uwsgi`` module it decorates for.
"""

from __future__ import annotations

import pickle
import sys
import threading
from collections.abc import Callable
from functools import wraps
from typing import Any

import uwsgi  # served by procmaster.api in procmaster's processes only

__all__ = [  # what ``from uwsgidecorators import *`` gives, as uWSGI's module does
    "atexit",
    "cron",
    "farm",
    "filemon",
    "get_free_signal",
    "harakiri",
    "lock",
    "mule",
    "mule_msg_dispatcher",
    "mulefunc",
    "muleloop",
    "mulemsg",
    "postfork",
    "rbtimer",
    "rpc",
    "signal",
    "spool",
    "spoolforever",
    "spoolraw",
    "thread",
    "timer",
    "uwsgi",
]

_postfork: list[Callable[[], Any]] = []
_atexit: list[Callable[[], Any]] = []


def _run_postfork() -> None:
    for func in _postfork:
        func()


def _run_atexit() -> None:
    for func in _atexit:
        func()


def _chain(func: Callable[[], Any]) -> None:
    _postfork.append(func)
    uwsgi.post_fork_hook = _run_postfork


def postfork(arg: Any) -> Any:
    """``@postfork``: run the function in every worker, mule and spooler just after
    its fork (as uWSGI's post-fork hook); ``@postfork(N)``: only in worker N."""
    if callable(arg):
        _chain(arg)
        return arg
    wid = int(arg)

    def decorate(func: Callable[[], Any]) -> Callable[[], Any]:
        _chain(lambda: func() if wid <= 0 or uwsgi.worker_id() == wid else None)
        return func

    return decorate


def _in_mule(num: int, body: Callable[[], Any], forever: bool) -> Callable[[], None]:
    """A post-fork entry: in mule ``num``, run ``body`` (once, or again and again);
    an exception ends the mule (the master starts it again), as in uWSGI."""

    def run() -> None:
        if uwsgi.mule_id() != num:
            return
        try:
            body()
            while forever:
                body()
        except Exception:
            sys.excepthook(*sys.exc_info())
            sys.exit(1)

    return run


class mule:  # noqa: N801 - uWSGI's name
    """``@mule(N)``: mule N runs the function once after its fork (then its usual loop)."""

    forever = False

    def __init__(self, num: int) -> None:
        self.num = num

    def __call__(self, func: Callable[[], Any]) -> Callable[[], Any]:
        _chain(_in_mule(self.num, func, self.forever))
        return func


class muleloop(mule):  # noqa: N801 - uWSGI's name
    """``@muleloop(N)``: mule N calls the function again and again."""

    forever = True


class mulemsg:  # noqa: N801 - uWSGI's name
    """``@mulemsg(N)``: mule N hands every message it receives to the function."""

    def __init__(self, num: int) -> None:
        self.num = num

    def __call__(self, func: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        def one() -> None:
            message = uwsgi.mule_get_msg()
            if message:
                func(message)

        _chain(_in_mule(self.num, one, True))
        return func


class farm:  # noqa: N801 - uWSGI's name
    """``@farm(name)``: every mule of farm ``name`` hands the farm's messages to it."""

    def __init__(self, name: Any = None, **_: Any) -> None:
        self.name = name

    def __call__(self, func: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        def loop() -> None:
            if uwsgi.mule_id() == 0 or not uwsgi.in_farm(self.name):
                return
            while True:
                message = uwsgi.farm_get_msg()
                if message:
                    func(message)

        _chain(loop)
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


# -- the spooler ---------------------------------------------------------------------

_spool_functions: dict[str, _Spooled] = {}
_STEERING = ("spooler", "priority", "at", "body")


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _run_spooled(task: dict) -> Any:
    """``uwsgi.spooler``: run the task with the function that spooled it."""
    name = task.get(b"ud_spool_func")
    spooled = _spool_functions.get(name.decode("utf-8", "replace")) if name else None
    if spooled is None:
        uwsgi.log(f"spooler: no @spool function named {name!r} here: task kept")
        return uwsgi.SPOOL_RETRY
    if spooled.pass_arguments:
        args = pickle.loads(task.get(b"args", pickle.dumps(())))
        kwargs = pickle.loads(task.get(b"kwargs", pickle.dumps({})))
        result = spooled.func(*args, **kwargs)
    else:
        decoded: dict[str, Any] = {}
        for key, value in task.items():
            text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
            decoded[text] = value.decode("utf-8", "replace")  # body too, as uWSGI's
        result = spooled.func(decoded)
    code = task.get(b"ud_spool_ret")
    return result if code is None else int(code)


class _Spooled:
    """A function the spooler runs; ``spool(...)`` (or a call) queues it."""

    def __init__(self, func: Callable[..., Any], code: int | None, pass_arguments: bool) -> None:
        self.func = func
        self.code = code
        self.pass_arguments = pass_arguments
        wraps(func)(self)
        _spool_functions[func.__name__] = self
        uwsgi.spooler = _run_spooled

    def spool(self, *args: Any, **kwargs: Any) -> bytes:
        task: dict[bytes, bytes] = {b"ud_spool_func": self.func.__name__.encode()}
        if self.code is not None:
            task[b"ud_spool_ret"] = str(self.code).encode()
        steering = {k: kwargs.pop(k) for k in _STEERING if k in kwargs}
        if self.pass_arguments:
            task[b"args"] = pickle.dumps(args)
            task[b"kwargs"] = pickle.dumps(kwargs)
        else:
            for arg in args:
                kwargs = {**dict(arg), **kwargs}
            task.update({_as_bytes(k): _as_bytes(v) for k, v in kwargs.items()})
        task.update({k.encode(): _as_bytes(v) for k, v in steering.items()})
        return uwsgi.spool(task)

    __call__ = spool


def _spool_decorator(code: int | None):
    def decorate(func: Callable[..., Any] | None = None, pass_arguments: bool = False):
        if func is None:
            return lambda f: _Spooled(f, code, pass_arguments)
        return _Spooled(func, code, pass_arguments)

    return decorate


spool = _spool_decorator(uwsgi.SPOOL_OK)
spoolforever = _spool_decorator(uwsgi.SPOOL_RETRY)
spoolraw = _spool_decorator(None)


class harakiri:  # noqa: N801 - uWSGI's name
    """``@harakiri(seconds)``: a call running longer ends its process
    (``uwsgi.set_user_harakiri`` around it)."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            uwsgi.set_user_harakiri(self.seconds)
            try:
                return func(*args, **kwargs)
            finally:
                uwsgi.set_user_harakiri(0)

        return guarded


class rpc:  # noqa: N801 - uWSGI's name
    """``@rpc(name)``: register the function as RPC function ``name`` (uwsgi.register_rpc)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        uwsgi.register_rpc(self.name, func)
        return func


# -- mules -------------------------------------------------------------------------------

_mule_functions: dict[str, Callable[..., Any]] = {}


def mule_msg_dispatcher(message: bytes) -> Any:
    """``uwsgi.mule_msg_hook`` of a programmed mule: run a queued ``@mulefunc`` call."""
    try:
        call = pickle.loads(message)
    except Exception:  # noqa: BLE001 - not one of ours: said, not fatal
        uwsgi.log(f"mule {uwsgi.mule_id()}: a message that is not a @mulefunc call")
        return None
    if not isinstance(call, dict) or call.get("service") != "uwsgi_mulefunc":
        return None
    func = _mule_functions.get(call.get("func"))
    if func is None:
        uwsgi.log(f"mule {uwsgi.mule_id()}: no @mulefunc named {call.get('func')!r} here")
        return None
    return func(*call.get("args", ()), **call.get("kwargs", {}))


class mulefunc:  # noqa: N801 - uWSGI's name
    """``@mulefunc`` or ``@mulefunc(target)``: calls run in a mule."""

    def __init__(self, arg: Any = None) -> None:
        self.target: Any = None
        self.func: Callable[..., Any] | None = None
        if callable(arg):
            self._bind(arg)
        else:
            self.target = arg

    def _bind(self, func: Callable[..., Any]) -> None:
        self.func = func
        wraps(func)(self)
        _mule_functions[func.__name__] = func
        uwsgi.mule_msg_hook = mule_msg_dispatcher

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.func is None:
            self._bind(args[0])
            return self
        if uwsgi.mule_id():
            return self.func(*args, **kwargs)
        call = {
            "service": "uwsgi_mulefunc",
            "func": self.func.__name__,
            "args": args,
            "kwargs": kwargs,
        }
        uwsgi.mule_msg(pickle.dumps(call), self.target)
        return None  # as uWSGI's: the call is queued, its result stays in the mule
