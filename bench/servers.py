"""The servers under test: how procmaster, uWSGI, gunicorn and nginx in front are started.

Theory of operation
-------------------
A ``Server`` is data: the commands to start (argv lists with placeholders:
``{port}``, ``{apps}``, ``{tmp}`` a directory of this start, ``{python}`` this
interpreter, ``{user}``/``{group}``), started in order and stopped in reverse,
the files written into ``{tmp}`` first (nginx.conf, a touch file), the path that
answers once it is ready, the signal that stops it and how to ask it for a
reload. ``family`` is what the ratios compare, ``group`` the rows compared with
each other, ``suite`` which scenarios apply.

procmaster rows run ``python -m procmaster`` from a source tree (``tree``, put
on ``PYTHONPATH`` of the server's processes; by default the checkout this bench
belongs to), never the ``procmaster`` found on PATH. ``baseline_of`` makes the
twin of a procmaster row that runs another tree (an older commit): family
``procmaster (baseline)``, same group and suite, so both rows sit side by side
with uWSGI in the same run.

Must not know
-------------
How processes are started or stopped (processes.py), wrk, scenarios, reports.
"""

from __future__ import annotations

import dataclasses
import grp
import os
import pwd
import re
import signal
import sys
from dataclasses import dataclass

from processes import HERE, ROOT

APPS = os.path.join(HERE, "apps")
EXPECTED_BODY = b"Hello, World!"  # what bench/apps/hello.py answers
PROCS = "2"
BASELINE = "procmaster (baseline)"  # the family of rows that run the baseline tree

INSTALL_HINTS = {
    "wrk": "install wrk: apt-get install wrk (Debian/Ubuntu) or build it from https://github.com/wg/wrk",
    "uwsgi": "install uWSGI: pip install uwsgi",
    "gunicorn": "install gunicorn: pip install gunicorn",
    "nginx": "install nginx: apt-get install nginx",
}


@dataclass(frozen=True)
class Server:
    """How to start one server: its processes, readiness path, stop signal."""

    name: str
    family: str  # what ratios compare: "procmaster", "uWSGI", "gunicorn", BASELINE
    group: str  # rows of the same group are compared with each other
    # argv lists; {port}, {apps}, {tmp}, {python} are filled in
    commands: tuple[tuple[str, ...], ...]
    ready_path: str = "/"
    stop_signal: int = signal.SIGTERM  # sent to every started process, last started first
    requires: tuple[str, ...] = ()  # executables that must be on PATH
    suite: str = "http"  # which scenarios apply: "http", "nginx", "reload"
    # files written into {tmp} before the start: (name, text with the same placeholders)
    files: tuple[tuple[str, str], ...] = ()
    # how a reload is asked for: a signal to the main process, or touching a file
    reload_signal: int | None = None
    reload_touch: str = ""  # a file name in {tmp}, among ``files``
    tree: str = ""  # procmaster's source tree, first on PYTHONPATH of the processes
    optional: bool = False  # runs only when --only names it, its group or its suite
    # only these scenarios (by name) of its suite; empty: every one. A peer that
    # frames connections otherwise in one mode is two servers of one family
    # (uWSGI's --http11-socket keeps a connection a client asked to close)
    only: tuple[str, ...] = ()
    expected: bytes = EXPECTED_BODY  # the exact body of every answer (readiness, probes)

    def serves(self, scenario) -> bool:
        """Whether ``scenario`` runs against this server."""
        return self.suite in scenario.suites and (not self.only or scenario.name in self.only)

    def argvs(self, port: int | str, tmp: str = "TMP") -> list[list[str]]:
        """The commands with their placeholders filled in."""
        return [[fill(arg, port, tmp) for arg in cmd] for cmd in self.commands]

    @property
    def tags(self) -> set[str]:
        """What --only may call it."""
        return {self.name, self.group, self.suite}

    @property
    def slug(self) -> str:
        """The name as a file name (no spaces or parentheses: nginx.conf paths)."""
        return re.sub(r"[^\w.-]+", "-", self.name).strip("-")


def fill(text: str, port: int | str, tmp: str) -> str:
    """Replace the placeholders; other braces (an nginx.conf's) stay as they are."""
    values = {
        "port": str(port),
        "apps": APPS,
        "tmp": tmp,
        "python": sys.executable,
        "user": pwd.getpwuid(os.geteuid()).pw_name,
        "group": grp.getgrgid(os.getegid()).gr_name,
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


PROCMASTER_CMD = ("{python}", "-m", "procmaster")
HELLO = ("--processes", PROCS, "--master", "--disable-logging", "--wsgi-file", "{apps}/hello.py")

SERVERS: tuple[Server, ...] = (
    Server(
        name="procmaster",
        family="procmaster",
        group="http",
        commands=((*PROCMASTER_CMD, "--http-socket", "127.0.0.1:{port}", *HELLO),),
        tree=ROOT,
    ),
    Server(
        name="uWSGI",
        family="uWSGI",
        group="http",
        # keep-alive: --http11-socket, which ignores a client's Connection: close
        commands=(("uwsgi", "--http11-socket", "127.0.0.1:{port}", *HELLO),),
        # uWSGI 2.0 reloads on SIGTERM (unless --die-on-term); SIGINT stops it.
        stop_signal=signal.SIGINT,
        requires=("uwsgi",),
        only=("keep-alive", "keep-alive+idle"),
    ),
    Server(
        name="uWSGI http-socket",
        family="uWSGI",
        group="http",
        # a new connection per request: --http-socket closes after every
        # response but does not say so in it (wrk would count a read error
        # each time it tries the connection again): the header says it
        commands=(
            (
                "uwsgi",
                "--http-socket",
                "127.0.0.1:{port}",
                *HELLO,
                "--add-header",
                "Connection: close",
            ),
        ),
        stop_signal=signal.SIGINT,
        requires=("uwsgi",),
        only=("close",),
    ),
    Server(
        name="gunicorn",
        family="gunicorn",
        group="http",
        commands=(
            (
                "gunicorn",
                "--workers",
                PROCS,
                "--worker-class",
                "sync",
                "-b",
                "127.0.0.1:{port}",
                "--chdir",
                "{apps}",
                "hello:application",
            ),
        ),  # gunicorn writes no access log unless --access-logfile is given
        requires=("gunicorn",),
    ),
)


# nginx in front, as a site runs it: its own config, pid file, temp paths and error
# log in the start's {tmp}, in the foreground ("daemon off" in the file, so no -g),
# one worker, as the current user, keep-alive to wrk; the app server behind it on a
# unix socket. uwsgi_pass has no upstream keep-alive (nginx's uwsgi module does not
# keep connections), FastCGI keeps its connections (upstream keepalive + keep_conn).
NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
user {user} {group};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    upstream fastcgi_app {
        server unix:{tmp}/app.sock;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:{port};
        location / {
__PASS__
        }
    }
}
"""
NGINX_PASS = {
    "uwsgi": """            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:{tmp}/app.sock;""",
    "fastcgi": """            include /etc/nginx/fastcgi_params;
            fastcgi_pass fastcgi_app;
            fastcgi_keep_conn on;""",
}
NGINX = (
    "nginx",
    "-p",
    "{tmp}",
    "-c",
    "{tmp}/nginx.conf",
    "-e",  # the error log before the config is read (else /var/log/nginx)
    "{tmp}/nginx-error.log",
)


def behind_nginx(name: str, family: str, protocol: str, backend: tuple[str, ...]) -> Server:
    """A server on a unix socket, nginx in front of it speaking ``protocol``."""
    procmaster = backend[: len(PROCMASTER_CMD)] == PROCMASTER_CMD
    return Server(
        name=name,
        family=family,
        group=f"nginx-{protocol}",
        suite="nginx",
        commands=(backend, NGINX),
        # uWSGI 2.0 reloads on SIGTERM; SIGINT stops uWSGI, procmaster and nginx alike
        stop_signal=signal.SIGINT,
        requires=("nginx",) if procmaster else (backend[0], "nginx"),
        files=(("nginx.conf", NGINX_CONF.replace("__PASS__", NGINX_PASS[protocol])),),
        tree=ROOT if procmaster else "",
    )


def backend(program: tuple[str, ...], socket_option: str) -> tuple[str, ...]:
    """procmaster or uWSGI serving the hello app on {tmp}/app.sock."""
    return (*program, socket_option, "{tmp}/app.sock", *HELLO)


NGINX_SERVERS: tuple[Server, ...] = (
    behind_nginx("procmaster-uwsgi", "procmaster", "uwsgi", backend(PROCMASTER_CMD, "--socket")),
    behind_nginx("uWSGI-uwsgi", "uWSGI", "uwsgi", backend(("uwsgi",), "--socket")),
    behind_nginx(
        "procmaster-fastcgi",
        "procmaster",
        "fastcgi",
        backend(PROCMASTER_CMD, "--fastcgi-socket"),
    ),
    behind_nginx("uWSGI-fastcgi", "uWSGI", "fastcgi", backend(("uwsgi",), "--fastcgi-socket")),
)


def reloading(
    name: str,
    base: Server,
    *extra: str,
    reload_signal: int | None = None,
    reload_touch: str = "",
) -> Server:
    """``base`` with extra options, asked to reload during the reload scenarios."""
    return dataclasses.replace(
        base,
        name=name,
        group="reload",
        suite="reload",
        commands=((*base.commands[0], *extra),),
        files=((reload_touch, ""),) if reload_touch else (),
        reload_signal=reload_signal,
        reload_touch=reload_touch,
        only=tuple(f"reload {name}" for name in base.only),
    )


PROCMASTER, UWSGI, UWSGI_CLOSE, GUNICORN = SERVERS
RELOAD_SERVERS: tuple[Server, ...] = (
    reloading("procmaster-hup", PROCMASTER, reload_signal=signal.SIGHUP),
    reloading(
        "procmaster-touch", PROCMASTER, "--touch-reload", "{tmp}/reload", reload_touch="reload"
    ),
    reloading(
        "procmaster-chain",
        PROCMASTER,
        "--lazy-apps",
        "--touch-chain-reload",
        "{tmp}/reload",
        reload_touch="reload",
    ),
    *(
        reloading(
            f"uWSGI-touch{tail}", base, "--touch-reload", "{tmp}/reload", reload_touch="reload"
        )
        for base, tail in ((UWSGI, ""), (UWSGI_CLOSE, " http-socket"))
    ),
    *(
        reloading(
            f"uWSGI-chain{tail}",
            base,
            "--lazy-apps",
            "--touch-chain-reload",
            "{tmp}/reload",
            reload_touch="reload",
        )
        for base, tail in ((UWSGI, ""), (UWSGI_CLOSE, " http-socket"))
    ),
    reloading("gunicorn-hup", GUNICORN, reload_signal=signal.SIGHUP),
)
# ASGI (optional rows: only with --only asgi or --only nginx-asgi, or a row's name):
# the same hello app (bench/apps/hello_asgi.py) under procmaster's ASGI worker,
# uvicorn (httptools + uvloop, its fastest), granian and gunicorn's ASGI worker; each
# with two worker processes; directly (group asgi) and behind nginx (group nginx-asgi:
# procmaster over uwsgi_pass and, as the others, over proxy_pass with upstream keep-alive)
HELLO_ASGI = ("--processes", PROCS, "--master", "--disable-logging", "--pythonpath", "{apps}",
              "--asgi", "hello_asgi:app")  # fmt: skip
UVICORN = ("{python}", "-m", "uvicorn", "--workers", PROCS, "--loop", "uvloop", "--http",
           "httptools", "--no-access-log", "--log-level", "warning", "--app-dir", "{apps}")  # fmt: skip
GRANIAN = ("granian", "--interface", "asgi", "--workers", PROCS, "--no-access-log",
           "--log-level", "warning", "--working-dir", "{apps}")  # fmt: skip
GUNICORN_ASGI = ("gunicorn", "--workers", PROCS, "--worker-class", "asgi", "--chdir", "{apps}")
NGINX_PASS["http"] = """            proxy_pass http://http_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";"""
NGINX_HTTP_UPSTREAM = """    upstream http_app {
        server unix:{tmp}/app.sock;
        keepalive 16;
    }
"""


def asgi(name: str, family: str, command: tuple[str, ...], requires: tuple[str, ...]) -> Server:
    return Server(name=name, family=family, group="asgi", commands=(command,), optional=True,
                  requires=requires, tree=ROOT if family.startswith("procmaster") else "")  # fmt: skip


def asgi_behind_nginx(name: str, family: str, protocol: str, command: tuple[str, ...]) -> Server:
    server = behind_nginx(name, family, protocol, command)
    conf = server.files[0][1].replace("    upstream fastcgi_app {", NGINX_HTTP_UPSTREAM
                                       + "    upstream fastcgi_app {")  # fmt: skip
    requires = ("nginx",) if command[0] == "{python}" else (command[0], "nginx")
    return dataclasses.replace(
        server, group="nginx-asgi", files=(("nginx.conf", conf),), requires=requires, optional=True
    )


ASGI_SERVERS: tuple[Server, ...] = (
    asgi("procmaster-asgi-asyncio", "procmaster (asyncio)",
         (*PROCMASTER_CMD, "--http-socket", "127.0.0.1:{port}", *HELLO_ASGI, "--asgi-loop",
          "asyncio"), ()),
    asgi("procmaster-asgi", "procmaster",
         (*PROCMASTER_CMD, "--http-socket", "127.0.0.1:{port}", *HELLO_ASGI), ()),
    asgi("uvicorn", "uvicorn", (*UVICORN, "--port", "{port}", "hello_asgi:app"), ()),
    asgi("granian", "granian", (*GRANIAN, "--port", "{port}", "hello_asgi:app"), ("granian",)),
    asgi("gunicorn-asgi", "gunicorn",
         (*GUNICORN_ASGI, "-b", "127.0.0.1:{port}", "hello_asgi:app"), ("gunicorn",)),
    # a family of its own: the ratios to uvicorn and granian take the proxy_pass row
    asgi_behind_nginx("procmaster-asgi-uwsgi", "procmaster (uwsgi_pass)", "uwsgi",
                      (*PROCMASTER_CMD, "--socket", "{tmp}/app.sock", *HELLO_ASGI)),
    asgi_behind_nginx("procmaster-asgi-proxy", "procmaster", "http",
                      (*PROCMASTER_CMD, "--http-socket", "{tmp}/app.sock", *HELLO_ASGI)),
    asgi_behind_nginx("uvicorn-proxy", "uvicorn", "http",
                      (*UVICORN, "--uds", "{tmp}/app.sock", "hello_asgi:app")),
    asgi_behind_nginx("granian-proxy", "granian", "http",
                      (*GRANIAN, "--uds", "{tmp}/app.sock", "hello_asgi:app")),
)  # fmt: skip

JSON_BODY = b'{"message": "Hello, World!"}'


def asgi_json(server: Server) -> Server:
    """The row of ``server`` serving the JSON app (bench/apps/json_asgi.py): group
    asgi-json, or nginx-asgi-json for a row behind nginx."""
    commands = tuple(
        tuple(a.replace("hello_asgi:app", "json_asgi:app") for a in cmd) for cmd in server.commands
    )
    return dataclasses.replace(server, name=f"{server.name}-json", group=f"{server.group}-json",
                               commands=commands, expected=JSON_BODY)  # fmt: skip


# ASGI JSON (optional, --only asgi-json, --only nginx-asgi-json): procmaster (uvloop),
# uvicorn, granian, gunicorn directly; procmaster, uvicorn, granian over proxy_pass
ASGI_SERVERS += tuple(
    asgi_json(s)
    for s in ASGI_SERVERS
    if (s.group == "asgi" and s.name != "procmaster-asgi-asyncio")
    or (s.group == "nginx-asgi" and s.name != "procmaster-asgi-uwsgi")
)
ALL_SERVERS = SERVERS + NGINX_SERVERS + RELOAD_SERVERS + ASGI_SERVERS


def with_tree(servers: list[Server], tree: str) -> list[Server]:
    """The servers, procmaster's rows running the source tree ``tree``."""
    return [dataclasses.replace(s, tree=tree) if s.tree else s for s in servers]


def baseline_of(server: Server, tree: str) -> Server:
    """The twin of a procmaster row that runs the procmaster of ``tree`` instead."""
    return dataclasses.replace(server, name=f"{server.name} (baseline)", family=BASELINE, tree=tree)


def with_baseline(servers: list[Server], tree: str) -> list[Server]:
    """Each procmaster row preceded by its baseline twin, so that the two alternate."""
    out: list[Server] = []
    for s in servers:
        if s.family == "procmaster":
            out.append(baseline_of(s, tree))
        out.append(s)
    return out


def round_order(servers: list[Server], round_no: int) -> list[Server]:
    """The servers in the order of round ``round_no``: as given, except that each
    baseline twin and the row after it swap places in even rounds, so that
    neither tree always starts first (right after the same other server)."""
    if round_no % 2:
        return list(servers)
    out = list(servers)
    i = 0
    while i < len(out) - 1:
        if out[i].family == BASELINE and out[i + 1].family == "procmaster":
            out[i], out[i + 1] = out[i + 1], out[i]
            i += 1
        i += 1
    return out
