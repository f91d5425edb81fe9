"""From a complete request to the app's call: the environ, the app to call, the
call itself (here, or in the pool of threads).

Theory of operation
-------------------
``run`` is the hot path of every request: the protocol's CGI variables get the
worker's ``wsgi.*`` keys (one ``dict.update``), what the protocol class says is
missing behind a proxy (``complete_environ``; a direct client's address is the
socket's peer), ``wsgi.input``; then the app is chosen (a static file, the one
app, or the app mounted at the path) and called. The common answer, a list or
tuple of bytes, is framed and queued in one write here; a file goes to
``Exchange.start_file``; any other iterable to ``Exchange.pump``. With
``threads``, the app is called in the pool instead, except for a static file:
that is answered here and sent by the loop (``offload-threads``' purpose:
files never hold an app thread). A WebSocket upgrade request runs in a thread
of its own (``websocket.start``), threads or not.

Must not know: protocol names, sockets (the connection writes), the loop.
"""

from __future__ import annotations

import time

from ..appthreads import Job
from ..protocols import Request
from ..wsgi import EMPTY_INPUT, FileWrapper, url_scheme
from .response import Exchange, request_finished, request_line, simple_response
from .roles import AppHost, Client

__all__ = ["describe", "run"]


def run(worker: AppHost, conn: Client, req: Request) -> None:
    """Call the app for one complete request and queue its response."""
    env = req.environ
    env.update(worker.base_env)
    lst = conn.listener
    if lst.proxied:
        lst.complete_environ(env, conn.remote, lst.server_name, lst.server_port)
        env["wsgi.url_scheme"] = url_scheme(env)
    else:
        env["REMOTE_ADDR"], env["REMOTE_PORT"] = conn.remote
    if lst.transport is not None:  # TLS facts, PROXY client, trusted forwarded headers
        lst.transport.environ(env, conn)
    body = req.body
    env["wsgi.input"] = body.stream() if body is not None else EMPTY_INPUT
    app = worker.apps.single
    offload = False
    if worker.static is not None:
        found = worker.static.match(env)
        if found is not None:
            # a static file is served here, never holding an app thread
            app = found
            offload = True
    if app is None:
        app, script_name, path_info = worker.apps.resolve(env.get("PATH_INFO", ""))
        if app is None:
            simple_response(conn, req, "404 Not Found", b"no app mounted here\n")
            return
        env["SCRIPT_NAME"] = env.get("SCRIPT_NAME", "").rstrip("/") + script_name
        env["PATH_INFO"] = path_info
    start = time.time()
    worker.requests += 1
    if (
        "HTTP_UPGRADE" in env
        and not offload
        and lst.protocol.upgrades
        and "websocket" in env["HTTP_UPGRADE"].lower()
    ):
        # lazy: wsproto (~0.1 s to import) loads with a worker's first WebSocket
        # request, never in a site that has none
        from .websocket import start as start_websocket

        start_websocket(worker, conn, req, app, env, start)  # a thread of its own
        return
    if worker.pool is not None and not offload:
        run_threaded(worker, conn, req, app, env, start)
        return
    worker.scoreboard.request_start(worker.slot, start)
    if worker.harakiri:
        worker.scoreboard.request_desc(worker.slot, describe(env))
    conn.current = exchange = Exchange(conn, req, start)
    try:
        result = exchange.result = app(env, exchange.start_response)
        if type(result) is list or type(result) is tuple:
            if len(result) == 1 and type(result[0]) is bytes:
                data = result[0]
            else:
                data = b"".join(result)
            if exchange.status is None:
                raise RuntimeError("the app returned without calling start_response()")
            proto = conn.proto
            if exchange.headers_sent:  # the app used write() before returning
                conn.send(proto.response_body(req, data) + proto.response_end(req))
            else:
                head = proto.response_head(req, exchange.status, exchange.headers, len(data))
                exchange.headers_sent = True
                exchange.hsize = len(head)
                conn.send(head + proto.response_body(req, data) + proto.response_end(req))
            exchange.rsize += len(data)
            # an exact list or tuple has no close(): nothing to call
            conn.current = None
            request_finished(worker, exchange, exchange.status)
            return
        if isinstance(result, FileWrapper) and exchange.start_file():
            return
        exchange.iterator = iter(result)
    except Exception:
        exchange.app_error()
        return
    exchange.pump()


def run_threaded(worker: AppHost, conn: Client, req: Request, app, env: dict, start: float) -> None:
    """threads > 1: hand the request to the pool; ``threads_done`` sends the
    response as the thread produces it."""
    exchange = Exchange(conn, req, start)
    conn.current = exchange
    desc = describe(env) if worker.harakiri else b""
    job = exchange.job = Job(exchange, app, env, exchange, desc)
    worker.pool.submit(job)


def describe(env: dict) -> bytes:
    """The request as ``METHOD URI``, for the scoreboard (harakiri logs it)."""
    return request_line(env).encode("latin-1", "replace")
