"""The rows of bench.py beyond hello world over one thread: threads, real apps, logging.

Theory of operation
-------------------
Three optional sets of ``Server`` rows (they run only when ``--only`` names
their group or name), built from the pieces of servers.py:

- ``threads-1`` / ``threads-4`` (suite ``threads``): procmaster and uWSGI
  (``--http11-socket``), 2 processes with ``--threads 1`` or ``--threads 4``,
  serving ``bench/apps/threads_app.py`` (a streamed body: a generator of two
  pieces; uWSGI with ``--tcp-nodelay``, which procmaster does by itself); the
  ``threads`` scenarios load ``/`` (no wait) and ``/sleep`` (50 ms in the app per
  request). report.py divides each family's threads=4 median by
  its threads=1 median.
- ``nginx-django`` / ``nginx-flask`` (suite ``nginx``): a Django page (template,
  one SQLite query through the ORM) and a Flask JSON API behind nginx:
  procmaster and uWSGI over ``uwsgi_pass`` on a unix socket, gunicorn sync over
  ``proxy_pass`` on a unix socket. Each start gets its own SQLite file
  (``BENCH_DB={tmp}/items.sqlite3``, set by each server's ``--env``).
- ``http-logged`` (suite ``http``, keep-alive only): procmaster and uWSGI
  ``--http11-socket`` as in the ``http`` group but with request logging on (both
  write uWSGI's request line, into the run's log file).

``expected_*`` are the exact bodies the apps answer (readiness, probes).

Must not know
-------------
How processes are started or stopped, wrk, reports (beyond the row tables).
"""

from __future__ import annotations

import dataclasses
import json

from servers import (
    ALL_SERVERS,
    PROCMASTER,
    PROCMASTER_CMD,
    PROCS,
    UWSGI,
    Server,
    asgi_behind_nginx,
    behind_nginx,
)

THREADS = (1, 4)
ITEMS = [{"id": n, "name": f"item {n}", "price": n * 125} for n in range(1, 11)]
DJANGO_BODY = (
    "<!doctype html>\n<html><head><title>Items</title></head>\n<body>\n"
    f"<h1>{len(ITEMS)} items</h1>\n<ul>\n"
    + "".join(f'<li id="item-{i["id"]}">{i["name"]}: {i["price"]} cents</li>\n' for i in ITEMS)
    + "</ul>\n</body></html>\n"
).encode()
FLASK_BODY = (
    json.dumps(
        {"count": len(ITEMS), "items": ITEMS, "total": sum(i["price"] for i in ITEMS)},
        separators=(",", ":"),
        sort_keys=True,
    )
    + "\n"
).encode()


def threaded(base: Server, threads: int) -> Server:
    """``base`` (an http row) serving threads_app.py with ``threads`` threads per worker.

    uWSGI gets ``--tcp-nodelay``: procmaster sets TCP_NODELAY on every TCP
    connection it accepts, uWSGI only when told; without it each streamed piece
    after the first waits for the client's delayed ACK (45 req/s instead of
    25,000 with two pieces, threads=1)."""
    argv = list(base.commands[0])
    argv[argv.index("{apps}/hello.py")] = "{apps}/threads_app.py"
    nodelay = ("--tcp-nodelay",) if base.family == "uWSGI" else ()
    return dataclasses.replace(
        base,
        name=f"{base.name} threads={threads}",
        group=f"threads-{threads}",
        suite="threads",
        commands=((*argv, "--threads", str(threads), *nodelay),),
        optional=True,
        only=(),
    )


THREAD_SERVERS = tuple(threaded(base, n) for n in THREADS for base in (PROCMASTER, UWSGI))

DB_ENV = "BENCH_DB={tmp}/items.sqlite3"
# the backends of the real-app rows: 2 processes and a master, logging off, as HELLO
REAL = ("--processes", PROCS, "--master", "--disable-logging", "--env", DB_ENV,
        "--chdir", "{apps}", "--pythonpath", "{apps}", "--module")  # fmt: skip
GUNICORN_SYNC = ("gunicorn", "--workers", PROCS, "--worker-class", "sync", "--env", DB_ENV,
                 "--chdir", "{apps}", "-b", "unix:{tmp}/app.sock")  # fmt: skip


def real_app(app: str, body: bytes) -> tuple[Server, ...]:
    """procmaster, uWSGI and gunicorn sync behind nginx serving ``bench/apps/{app}_app.py``."""
    module = f"{app}_app:application"
    rows = (
        behind_nginx(f"procmaster-{app}", "procmaster", "uwsgi",
                     (*PROCMASTER_CMD, "--socket", "{tmp}/app.sock", *REAL, module)),
        behind_nginx(f"uWSGI-{app}", "uWSGI", "uwsgi",
                     ("uwsgi", "--socket", "{tmp}/app.sock", *REAL, module)),
        with_host(asgi_behind_nginx(f"gunicorn-{app}", "gunicorn", "http",
                                    (*GUNICORN_SYNC, module))),
    )  # fmt: skip
    return tuple(
        dataclasses.replace(s, group=f"nginx-{app}", optional=True, expected=body) for s in rows
    )


def with_host(server: Server) -> Server:
    """proxy_pass sends the upstream's name (``http_app``) as Host, which Django
    refuses (an underscore); uwsgi_pass gives the client's: so does this."""
    (name, conf), *rest = server.files
    conf = conf.replace(
        'proxy_set_header Connection "";',
        'proxy_set_header Connection "";\n            proxy_set_header Host $host;',
    )
    assert "Host $host" in conf
    return dataclasses.replace(server, files=((name, conf), *rest))


REAL_APP_SERVERS = real_app("django", DJANGO_BODY) + real_app("flask", FLASK_BODY)


def logged(base: Server) -> Server:
    """``base`` with request logging on (uWSGI's format in both), keep-alive only."""
    argv = tuple(a for a in base.commands[0] if a != "--disable-logging")
    return dataclasses.replace(
        base,
        name=f"{base.name} logged",
        group="http-logged",
        commands=(argv,),
        optional=True,
        only=("keep-alive",),
    )


LOGGED_SERVERS = (logged(PROCMASTER), logged(UWSGI))
EVERY_SERVER = ALL_SERVERS + THREAD_SERVERS + REAL_APP_SERVERS + LOGGED_SERVERS
