"""One worker process: an event loop over its connections, calling the app.

Theory of operation
-------------------
The master forks a worker and calls ``worker_main`` in the child; it never
returns. The parts, from the socket to the app and back::

    loop.py        the Worker: epoll, accept, signals, deadlines, graceful stop, recycle
    listener.py    what the worker keeps of a listening socket (its protocol's capabilities)
    connection.py  one connection: reading, the write queue, linger
    transport.py   a socket's transport layers (PROXY header, TLS, forwarded headers)
    sink.py        the protocol's sink: a request's head, body (stored as it arrives), end
    glue.py        a complete request -> environ -> the app (here or in the threads)
    response.py    the response on its way out: pump, back-pressure, sendfile, errors
    asgi.py        the ASGI runner instead (``asgi = module:app``): an asyncio loop,
                   asgi_accept.py (the read at accept), asgi_http.py (connection,
                   receive/send), asgi_scope.py, asgi_ws.py,
                   asgi_lifespan.py
    roles.py       what each part needs of another (typing Protocols; imports none of them)

At run time the imports go one way, loop -> connection -> glue -> response ->
roles; a module further down is typed by the narrow Protocol of roles.py that
lists what it uses of an object from above it, never by that object's class.

A connection feeds what it reads to its protocol (sans-IO, ``procmaster.protocols``),
which reports request events back; bodies are stored as they arrive
(``wsgi.Body``); a complete request goes to the app; the response is framed by
the protocol and written as the socket takes it (one bounded buffer per
connection: an app iterator or a file waits for ``EPOLLOUT``). What differs
between protocols the protocol class says (``protocols.base``: Capabilities).

Must not know: other workers, reloads (it is told to stop), the config files,
protocol names. The master never imports this package (only the child runs it).
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import traceback

from .. import api
from ..hooks import hooks_for
from ..ipc import EXIT_FATAL, SIG_PRINT_REQUEST, SIG_STOP
from ..logs import log
from ..process import die_with_parent, process_name, set_process_name
from ..protocols import protocol_class
from ..sockets import SocketError, socket_specs
from .connection import Connection
from .loop import Worker

__all__ = ["Connection", "Worker", "preload", "worker_main"]


def preload(cfg) -> None:
    """Run by the master before it forks: import the protocol modules its sockets
    speak (``httptools`` for HTTP), so the workers share those pages instead of
    each importing them after the fork. A socket the master will refuse (its
    error comes at binding, with file:line) is simply not preloaded."""
    try:
        specs = socket_specs(cfg)
    except SocketError:
        return
    for proto in {spec.proto for spec in specs}:
        protocol_class(proto)


def worker_main(
    wid: int,
    cfg,
    listeners,
    apps,
    ready_fd: int,
    scoreboard,
    slot: int,
    master_pid: int,
    load_apps_here,
) -> None:
    """Entry point in the forked child; never returns."""
    try:
        die_with_parent(master_pid)
        # until the loop has its handlers (after a lazy app load, maybe seconds),
        # the fork's mask keeps the master's signals and requests (stop, reopen
        # the log, pause) blocked: they wait, pending, and the loop acts on them
        # once it unblocks them. The master's handlers, inherited by the fork,
        # must never run here (they would wake the master's loop, not ours); a
        # request to print the running request is ignored until then. Not
        # ignored: that would drop a log reopen sent while the app loads, and
        # this worker would write into the rotated file for the rest of its life.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(SIG_STOP, signal.SIG_DFL)
        signal.signal(SIG_PRINT_REQUEST, signal.SIG_IGN)
        name = process_name(cfg, f"worker {wid}")
        if name:
            set_process_name(name)
        hooks = hooks_for(cfg)  # the master's (read before the fork)
        if not hooks.run("post-fork"):
            _hook_failed(master_pid)
        if cfg.limit_as:
            limit_address_space(cfg.limit_as)
        runtime = api.current()
        if runtime is not None:
            runtime.enter_worker(wid, slot)  # uwsgi.post_fork_hook, before a lazy app loads
        if apps is None:
            if not hooks.run("pre-app"):
                _hook_failed(master_pid)
            apps = load_apps_here()
            if not hooks.run("post-app"):
                _hook_failed(master_pid)
        if cfg.asgi:
            # lazy: asyncio and the ASGI runner only in a worker that serves an ASGI app
            from .asgi import AsgiWorker

            worker = AsgiWorker(wid, cfg, listeners, apps, ready_fd, scoreboard, slot)
        else:
            worker = Worker(wid, cfg, listeners, apps, ready_fd, scoreboard, slot)
        if not hooks.run_accepting(wid):
            _hook_failed(master_pid)
        worker.run_forever()
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException:
        try:
            log(f"worker {wid} failed to start:\n{traceback.format_exc().rstrip()}")
        finally:
            os._exit(1)
    finally:
        sys.stdout.flush()
        os._exit(1)


def limit_address_space(limit: int) -> None:
    """``limit-as``: RLIMIT_AS for this worker (an allocation beyond it is a
    MemoryError in the app)."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError) as exc:
        log(f"warning: limit-as: cannot set RLIMIT_AS to {limit} bytes: {exc}")


def _hook_failed(master_pid: int) -> None:
    """A worker's hook failed: as uWSGI does, the whole instance stops (the
    master is asked for an immediate stop) and this worker exits."""
    try:
        os.kill(master_pid, signal.SIGINT)
    except OSError:
        pass
    os._exit(EXIT_FATAL)
