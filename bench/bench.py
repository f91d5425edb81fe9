"""End-to-end benchmark: the same hello-world app on procmaster, uWSGI and gunicorn.

    python bench/bench.py                          # 10 s per run, 3 rounds
    python bench/bench.py --duration 8 --rounds 3 --markdown
    python bench/bench.py --only keep-alive        # rows tagged keep-alive
    python bench/bench.py --only nginx             # nginx -> procmaster / uWSGI (uwsgi, FastCGI)
    python bench/bench.py --only reload --duration 8   # failures and max latency during reloads

What it measures
----------------
Every server runs ``bench/apps/hello.py`` (``Hello, World!`` with a
``Content-Length``) with two worker processes on 127.0.0.1, and ``wrk -t2 -c64``
loads it, once with keep-alive and once with ``Connection: close``. The machine
is expected to be small and noisy, so the servers are interleaved round by round
(A B C A B C ...): each round starts every server in turn, runs all scenarios on
it, stops it, and moves on. The table gives, per server and scenario, the
median requests/s over the rounds (with the lowest and highest), wrk's socket
errors (connect/read/write), timeouts and non-2xx/3xx answers summed over the
rounds, how long one extra new connection waits for its answer during the run
(a server that serves only the connections it already holds leaves it
unanswered, which wrk's figures do not show), server processes that
disappeared during a run, and the total RSS of the server's processes (master +
workers, shared pages counted in each) after the keep-alive run. Then the
ratios procmaster/uWSGI and procmaster/gunicorn. Before each run it checks how
the server frames the connection, since wrk reconnects only when the response
says ``Connection: close``: a server that does not keep connections alive, or
keeps them despite the client's ``Connection: close``, gets a note.

Three suites share that shape. ``http``: the servers speak HTTP to wrk. ``nginx``:
nginx (its own config, pid file, temp paths and error log in a directory of the
start, one worker, as the current user) in front of procmaster and uWSGI on a
unix socket, over the uwsgi protocol (``uwsgi_pass``) and over FastCGI
(``fastcgi_pass`` to an upstream with ``keepalive``, ``fastcgi_keep_conn on``);
ratios procmaster/uWSGI per protocol. ``reload``: the HTTP servers with their
reload options (procmaster SIGHUP, touch-reload, touch-chain-reload with
lazy-apps; uWSGI touch-reload, touch-chain-reload with lazy-apps; gunicorn HUP),
asked for three reloads 2 s apart while wrk runs; the table gives the failed
requests (socket errors + non-2xx), timeouts and wrk's max latency.

How it is built
---------------
Two small tables, ``SERVERS`` and ``SCENARIOS``; every pair is a row. A
``Server`` is the processes to start (argv lists with a ``{port}`` and
``{apps}`` placeholder, started in order, stopped in reverse), the path that
answers once it is ready, the signal that stops it, and a ``group`` and
``family``: ratios compare procmaster with the other families of the same group.
So a server behind nginx (uwsgi protocol, FastCGI) is one more ``Server`` whose
processes are the backend and nginx, with its nginx.conf among the ``files``
written into ``{tmp}`` before the start. A ``Scenario`` is the wrk arguments, the
suites of servers it runs against, and an optional ``around`` hook that is
entered while wrk runs and gets the running server (its URL, pids and how to
ask it for a reload) and the run's duration: ``reloads_during`` is one.

Servers are started with ``subprocess`` in their own session (so Ctrl-C reaches
only this script), polled until they answer 200 with the expected body, and
stopped by PID: the stop signal to the main process, then SIGKILL to whatever is
left of the process tree collected beforehand, also on Ctrl-C and errors.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import grp
import http.client
import os
import platform
import pwd
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
EXPECTED_BODY = b"Hello, World!"
READY_TIMEOUT = 30.0  # seconds a server may take to answer its first request
STOP_TIMEOUT = 10.0  # seconds a server may take to exit after its stop signal
PROBE_START = 1.0  # seconds into a wrk run before the first new-connection probe
PROBE_TIMEOUT = 2.0  # seconds a probe waits for its answer (wrk's default timeout)
PROBE_INTERVAL = 0.5  # seconds between probes

INSTALL_HINTS = {
    "wrk": "install wrk: apt-get install wrk (Debian/Ubuntu) or build it from https://github.com/wg/wrk",
    "uwsgi": "install uWSGI: pip install uwsgi",
    "gunicorn": "install gunicorn: pip install gunicorn",
    "procmaster": "install procmaster: pip install -e . (from the repository root)",
}


# --- the tables -------------------------------------------------------------------------


@dataclass
class Running:
    """A started server, as a scenario hook sees it."""

    url: str
    port: int
    procs: list[subprocess.Popen] = field(default_factory=list)
    reload: Callable[[], None] | None = None  # asks the server for its reload
    reloads: int = 0  # reloads asked for since the start
    seen: set[int] = field(default_factory=set)  # pids seen while reloads were asked for
    log_path: str = ""

    @property
    def pid(self) -> int:
        """The main process of the server (the first one started)."""
        return self.procs[0].pid

    def tree(self) -> list[psutil.Process]:
        """Every live process of the server: each started process and its descendants."""
        found: list[psutil.Process] = []
        for proc in self.procs:
            try:
                top = psutil.Process(proc.pid)
                found.append(top)
                found.extend(top.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        return found


@dataclass(frozen=True)
class Server:
    """How to start one server: its processes, readiness path, stop signal."""

    name: str
    family: str  # what ratios compare: "procmaster", "uWSGI", "gunicorn"
    group: str  # rows of the same group are compared with each other
    # argv lists; {port}, {apps} and {tmp} (a directory of this start) are filled in
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

    def argvs(self, port: int | str, tmp: str = "TMP") -> list[list[str]]:
        """The commands with their placeholders filled in."""
        return [[fill(arg, port, tmp) for arg in cmd] for cmd in self.commands]

    @property
    def tags(self) -> set[str]:
        """What --only may call it."""
        return {self.name, self.group, self.suite}


def fill(text: str, port: int | str, tmp: str) -> str:
    """Replace the placeholders; other braces (an nginx.conf's) stay as they are."""
    values = {
        "port": str(port),
        "apps": APPS,
        "tmp": tmp,
        "user": pwd.getpwuid(os.geteuid()).pw_name,
        "group": grp.getgrgid(os.getegid()).gr_name,
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True)
class Scenario:
    """One wrk run against a server."""

    name: str
    wrk_args: tuple[str, ...] = ()
    path: str = "/"
    measure_rss: bool = False  # record the server's total RSS after this run
    # the client sends "Connection: close": check the server closes, since wrk
    # reuses the connection when the response does not say close
    client_closes: bool = False
    # entered while wrk runs, with the server and wrk's duration
    around: Callable[[Running, float], contextlib.AbstractContextManager[None]] | None = None
    suites: tuple[str, ...] = ("http", "nginx")  # the servers (by suite) it runs against


IDLE_CONNECTIONS = 1000
IDLE_SETUP_TIMEOUT = 10.0  # seconds for the idle connections to get their first answer


@dataclass
class IdleStats:
    """What holding idle keep-alive connections cost a server (one round)."""

    opened: int = 0
    answered: int = 0  # got the answer to their one request before the run
    rss_delta: int = 0  # bytes, master + workers, after the answers minus before

    def per_connection(self) -> float | None:
        return self.rss_delta / self.answered if self.answered else None


class hold_idle:
    """Scenario hook: open ``n`` connections, send one request on each, read its
    answer, then keep them open and silent (idle keep-alive) while wrk runs.
    A server that serves one connection per worker answers few of them; the
    others wait in its listen queue (non-blocking connects, so nothing hangs)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.stats = IdleStats()
        self.socks: list[socket.socket] = []

    def __call__(self, running: Running, duration: float = 0.0) -> hold_idle:
        fresh = hold_idle(self.n)
        fresh.running = running
        return fresh

    def __enter__(self) -> None:
        import selectors

        tree = self.running.tree()
        before = total_rss(tree)
        request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        sel = selectors.DefaultSelector()
        for _ in range(self.n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.running.port))
            self.socks.append(s)
            sel.register(s, selectors.EVENT_WRITE, b"")
        self.stats.opened = len(self.socks)
        deadline = time.monotonic() + IDLE_SETUP_TIMEOUT
        waiting = len(self.socks)
        while waiting and time.monotonic() < deadline:
            for key, ev in sel.select(0.5):
                s = key.fileobj
                if ev & selectors.EVENT_WRITE:
                    try:
                        s.send(request)
                    except OSError:
                        sel.unregister(s)
                        waiting -= 1
                        continue
                    sel.modify(s, selectors.EVENT_READ, b"")
                    continue
                try:
                    data = key.data + s.recv(4096)
                except OSError:
                    data = b""
                if not data or data.endswith(EXPECTED_BODY):
                    sel.unregister(s)
                    waiting -= 1
                    self.stats.answered += data.endswith(EXPECTED_BODY)
                else:
                    sel.modify(s, selectors.EVENT_READ, data)
        sel.close()
        self.stats.rss_delta = total_rss(self.running.tree()) - before
        progress(
            f"  {self.stats.answered}/{self.n} idle connections answered before the run;"
            f" RSS +{self.stats.rss_delta / 2**20:.1f} MiB"
        )

    def __exit__(self, *exc) -> None:
        for s in self.socks:
            s.close()


PROCS = "2"

SERVERS: tuple[Server, ...] = (
    Server(
        name="procmaster",
        family="procmaster",
        group="http",
        commands=(
            (
                "procmaster",
                "--http-socket",
                "127.0.0.1:{port}",
                "--processes",
                PROCS,
                "--master",
                "--disable-logging",
                "--wsgi-file",
                "{apps}/hello.py",
            ),
        ),
        requires=("procmaster",),
    ),
    Server(
        name="uWSGI",
        family="uWSGI",
        group="http",
        commands=(
            (
                "uwsgi",
                "--http11-socket",
                "127.0.0.1:{port}",
                "--processes",
                PROCS,
                "--master",
                "--disable-logging",
                "--wsgi-file",
                "{apps}/hello.py",
            ),
        ),
        # uWSGI 2.0 reloads on SIGTERM (unless --die-on-term); SIGINT stops it.
        stop_signal=signal.SIGINT,
        requires=("uwsgi",),
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
    return Server(
        name=name,
        family=family,
        group=f"nginx-{protocol}",
        suite="nginx",
        commands=(backend, NGINX),
        # uWSGI 2.0 reloads on SIGTERM; SIGINT stops uWSGI, procmaster and nginx alike
        stop_signal=signal.SIGINT,
        requires=(backend[0], "nginx"),
        files=(("nginx.conf", NGINX_CONF.replace("__PASS__", NGINX_PASS[protocol])),),
    )


def backend(program: str, socket_option: str, *extra: str) -> tuple[str, ...]:
    """procmaster or uWSGI serving the hello app on {tmp}/app.sock."""
    return (
        program,
        socket_option,
        "{tmp}/app.sock",
        "--processes",
        PROCS,
        "--master",
        "--disable-logging",
        "--wsgi-file",
        "{apps}/hello.py",
        *extra,
    )


NGINX_SERVERS: tuple[Server, ...] = (
    behind_nginx("procmaster-uwsgi", "procmaster", "uwsgi", backend("procmaster", "--socket")),
    behind_nginx("uWSGI-uwsgi", "uWSGI", "uwsgi", backend("uwsgi", "--socket")),
    behind_nginx(
        "procmaster-fastcgi", "procmaster", "fastcgi", backend("procmaster", "--fastcgi-socket")
    ),
    behind_nginx("uWSGI-fastcgi", "uWSGI", "fastcgi", backend("uwsgi", "--fastcgi-socket")),
)


def reloading(name: str, base: Server, *extra: str, **how: object) -> Server:
    """``base`` with extra options, asked to reload during the reload scenarios."""
    files = (("reload", ""),) if how.get("reload_touch") else ()
    return Server(
        name=name,
        family=base.family,
        group="reload",
        suite="reload",
        commands=((*base.commands[0], *extra),),
        stop_signal=base.stop_signal,
        requires=base.requires,
        files=files,
        **how,  # type: ignore[arg-type]
    )


PROCMASTER, UWSGI, GUNICORN = SERVERS
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
    reloading("uWSGI-touch", UWSGI, "--touch-reload", "{tmp}/reload", reload_touch="reload"),
    reloading(
        "uWSGI-chain",
        UWSGI,
        "--lazy-apps",
        "--touch-chain-reload",
        "{tmp}/reload",
        reload_touch="reload",
    ),
    reloading("gunicorn-hup", GUNICORN, reload_signal=signal.SIGHUP),
)
ALL_SERVERS = SERVERS + NGINX_SERVERS + RELOAD_SERVERS

RELOADS = 3  # reloads asked for during one reload run
RELOAD_SPACING = 2.0  # seconds between them (less when the run is shorter)
RELOAD_SAMPLE = 0.1  # seconds between looks at the server's processes during reloads


def reload_spacing(duration: float) -> float:
    """Seconds between the reloads of a run of ``duration`` seconds."""
    return min(RELOAD_SPACING, duration / (RELOADS + 1))


@contextlib.contextmanager
def reloads_during(running: Running, duration: float) -> Iterator[None]:
    """Ask the server to reload RELOADS times, evenly spaced, while wrk runs."""
    spacing = reload_spacing(duration)
    first = max(0.5, (duration - spacing * (RELOADS - 1)) / 2 - 0.5)
    stop = threading.Event()

    def trigger() -> None:
        start = time.monotonic()
        due = [start + first + i * spacing for i in range(RELOADS)]
        while not stop.wait(RELOAD_SAMPLE):  # note every process that comes and goes
            running.seen.update(p.pid for p in running.tree())
            if due and time.monotonic() >= due[0]:
                due.pop(0)
                assert running.reload is not None
                running.reload()
                running.reloads += 1

    thread = threading.Thread(target=trigger, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(name="keep-alive", measure_rss=True),
    # the same run while 1,000 other keep-alive connections sit idle
    Scenario(
        name="keep-alive+idle",
        measure_rss=True,
        around=hold_idle(IDLE_CONNECTIONS),
        suites=("http",),
    ),
    Scenario(name="close", wrk_args=("-H", "Connection: close"), client_closes=True),
    Scenario(name="reload keep-alive", around=reloads_during, suites=("reload",)),
    Scenario(
        name="reload close",
        wrk_args=("-H", "Connection: close"),
        client_closes=True,
        around=reloads_during,
        suites=("reload",),
    ),
)


# --- running one server -----------------------------------------------------------------


class ServerFailed(Exception):
    """A server did not start, or died."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: str, lines: int = 15) -> str:
    """The last lines of a server's log file."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def answers(url_host: str, port: int, path: str) -> bool:
    """True when GET path answers 200 with the expected body."""
    conn = http.client.HTTPConnection(url_host, port, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status == 200 and resp.read() == EXPECTED_BODY
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def will_close(port: int, path: str, ask_close: bool) -> bool | None:
    """Whether the server's answer ends the connection, as wrk decides it.

    wrk reconnects only when the response says so (``Connection: close``, or
    HTTP/1.0), whatever it sent itself. None if the request failed.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path, headers={"Connection": "close"} if ask_close else {})
        resp = conn.getresponse()
        resp.read()
        return bool(resp.will_close)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def stop_tree(running: Running, stop_signal: int) -> None:
    """Stop the server by PID: its stop signal, then SIGKILL to what is left of its tree."""
    tree = running.tree()
    for proc in reversed(running.procs):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, stop_signal)
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in reversed(running.procs):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    _, alive = psutil.wait_procs(tree, timeout=max(0.1, deadline - time.monotonic()))
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()  # psutil refuses if the pid was reused by another process
    psutil.wait_procs(alive, timeout=5)
    for proc in running.procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)


def wait_ready(server: Server, running: Running) -> None:
    """Poll until the server answers 200 with the expected body; ServerFailed if it dies."""
    log_path = running.log_path
    deadline = time.monotonic() + READY_TIMEOUT
    while not answers("127.0.0.1", running.port, server.ready_path):
        for proc in running.procs:
            if proc.poll() is not None:
                raise ServerFailed(
                    f"{server.name} exited with {proc.returncode} before answering;"
                    f" log {log_path}:\n{log_tail(log_path)}"
                )
        if time.monotonic() > deadline:
            raise ServerFailed(
                f"{server.name} did not answer within {READY_TIMEOUT:.0f} s;"
                f" log {log_path}:\n{log_tail(log_path)}"
            )
        time.sleep(0.05)


@contextlib.contextmanager
def started(server: Server, logdir: str) -> Iterator[Running]:
    """Start the server, wait until it answers, yield it, stop it whatever happens."""
    port = free_port()
    running = Running(url=f"http://127.0.0.1:{port}", port=port)
    log_path = os.path.join(logdir, f"{server.name}.log")
    # this start's files (nginx.conf, unix socket, touch file, nginx's pid file and logs);
    # inside logdir, so it is kept with the logs when a run failed
    tmp = tempfile.mkdtemp(prefix=f"{server.name}-", dir=logdir)
    for name, text in server.files:
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(fill(text, port, tmp))
        # an hour old, so that the first touch changes even a whole-second mtime
        os.utime(path, (time.time() - 3600,) * 2)
    if server.reload_signal is not None:
        sig = server.reload_signal
        running.reload = lambda: os.kill(running.pid, sig)
    elif server.reload_touch:
        touched = os.path.join(tmp, server.reload_touch)
        running.reload = lambda: os.utime(touched)
    try:
        with open(log_path, "ab") as log:
            for argv in server.argvs(port, tmp):
                running.procs.append(
                    subprocess.Popen(
                        argv,
                        cwd=APPS,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # Ctrl-C reaches this script only
                    )
                )
        running.log_path = log_path
        wait_ready(server, running)
        yield running
    finally:
        stop_tree(running, server.stop_signal)


# --- wrk ------------------------------------------------------------------------------


@dataclass
class WrkResult:
    """What one wrk run reported."""

    rps: float = 0.0
    requests: int = 0
    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0
    non2xx: int = 0
    max_latency: float = 0.0  # seconds, wrk's longest answered request
    probes: list[float | None] = field(default_factory=list)  # seconds; None: no answer
    failed: str = ""  # wrk did not run or printed no result
    cpu: float = 0.0  # seconds of CPU (user + system) the server's processes used

    @property
    def socket_errors(self) -> int:
        """connect + read + write errors."""
        return self.connect + self.read + self.write


def parse_wrk(text: str) -> WrkResult:
    """Read requests/s, request count, socket errors and non-2xx/3xx from wrk's output."""
    res = WrkResult()
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not m:
        res.failed = text.strip()[-300:] or "no output"
        return res
    res.rps = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in", text, re.M)
    res.requests = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        res.connect, res.read, res.write, res.timeout = map(int, m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    res.non2xx = int(m.group(1)) if m else 0
    m = re.search(r"^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m|h)\b", text, re.M)
    if m:
        scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]
        res.max_latency = float(m.group(1)) * scale
    return res


def wrk_argv(args: argparse.Namespace, duration: float, scenario: Scenario, url: str) -> list[str]:
    """The wrk command line for one run."""
    return [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration:g}s",
        *scenario.wrk_args,
        url + scenario.path,
    ]


def probe_once(port: int, path: str, timeout: float) -> float | None:
    """Seconds a GET on a new connection takes to be answered, None if it is not in time."""
    t0 = time.monotonic()
    ok = False
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    with contextlib.suppress(OSError, http.client.HTTPException):
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        ok = resp.status == 200 and resp.read() == EXPECTED_BODY
    conn.close()
    elapsed = time.monotonic() - t0
    return elapsed if ok and elapsed <= timeout else None


def probe_loop(port: int, path: str, duration: float, stop: threading.Event) -> list[float | None]:
    """Probe with one new connection at a time while wrk runs.

    A server that keeps serving its kept-alive connections and leaves new ones
    waiting in the listen queue shows here as probes that time out, which wrk's
    own figures do not show. Probes start after a warm-up and only while one can
    still finish before wrk stops.
    """
    results: list[float | None] = []
    start = time.monotonic()
    if stop.wait(PROBE_START):
        return results
    while time.monotonic() - start + PROBE_TIMEOUT < duration - 0.2 and not stop.is_set():
        results.append(probe_once(port, path, PROBE_TIMEOUT))
        if stop.wait(PROBE_INTERVAL):
            break
    return results


def run_wrk(
    argv: list[str], duration: float, port: int | None = None, path: str = "/"
) -> WrkResult:
    """Run wrk, probing the server with new connections meanwhile, and parse wrk's output."""
    probes: list[float | None] = []
    stop = threading.Event()
    prober = None
    if port is not None:
        prober = threading.Thread(
            target=lambda: probes.extend(probe_loop(port, path, duration, stop)), daemon=True
        )
    try:
        if prober:
            prober.start()
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    except subprocess.TimeoutExpired:
        return WrkResult(failed="wrk did not finish")
    finally:
        stop.set()
        if prober:
            prober.join()
    res = parse_wrk(out.stdout)
    if res.failed and out.stderr:
        res.failed += " " + out.stderr.strip()[-300:]
    res.probes = probes
    return res


# --- the benchmark ----------------------------------------------------------------------


@dataclass
class Row:
    """Everything measured for one server and one scenario, over all rounds."""

    server: Server
    scenario: Scenario
    runs: list[WrkResult] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # bytes, one per round
    lost_workers: int = 0  # server processes gone during a run (crashed or respawned)
    reloads: list[int] = field(default_factory=list)  # reloads asked for, per round
    started: int = 0  # server processes started during the runs (reload runs)
    idle: list[IdleStats] = field(default_factory=list)  # one per round (idle scenarios)
    notes: dict[str, list[int]] = field(default_factory=dict)  # message: rounds

    def note(self, round_no: int, message: str) -> None:
        """Remember something odd seen in a round."""
        self.notes.setdefault(message, []).append(round_no)

    def rps(self) -> list[float]:
        """Requests/s of the runs that produced a figure."""
        return [r.rps for r in self.runs if not r.failed]

    def median(self) -> float | None:
        """Median requests/s, or None without any figure."""
        rps = self.rps()
        return statistics.median(rps) if rps else None


def progress(msg: str) -> None:
    """A line on stderr, so stdout holds only the result."""
    print(msg, file=sys.stderr, flush=True)


def bench_server(
    server: Server,
    scenarios: list[Scenario],
    rows: dict[tuple[str, str], Row],
    args: argparse.Namespace,
    logdir: str,
    round_no: int,
) -> None:
    """One round for one server: start it, warm it up, run every scenario, stop it."""
    scenarios = [c for c in scenarios if server.suite in c.suites]
    if not scenarios:
        return
    args.load_seen.append(os.getloadavg()[0])
    try:
        with started(server, logdir) as running:
            if args.warmup > 0:
                run_wrk(wrk_argv(args, args.warmup, scenarios[0], running.url), args.warmup)
            for scenario in scenarios:
                row = rows[server.name, scenario.name]
                closes = will_close(running.port, scenario.path, scenario.client_closes)
                note = ""
                if scenario.client_closes and closes is False:
                    note = (
                        "answers Connection: close without closing the connection,"
                        " so wrk kept reusing its connections (not a close run)"
                    )
                elif not scenario.client_closes and closes:
                    note = (
                        "closes the connection after every response (no keep-alive),"
                        " so wrk reconnected for every request"
                    )
                if note:
                    row.note(round_no, note)
                    progress(f"  {server.name} {scenario.name}: {note}")
                before = {p.pid for p in running.tree()}
                reloads = running.reloads
                running.seen = set(before)
                hook = (
                    scenario.around(running, args.duration)
                    if scenario.around
                    else contextlib.nullcontext()
                )
                with hook:
                    cpu0 = total_cpu(running.tree())
                    res = run_wrk(
                        wrk_argv(args, args.duration, scenario, running.url),
                        args.duration,
                        running.port,
                        scenario.path,
                    )
                    res.cpu = total_cpu(running.tree()) - cpu0
                if isinstance(hook, hold_idle):
                    row.idle.append(hook.stats)
                tree = running.tree()
                if running.reloads > reloads:
                    row.reloads.append(running.reloads - reloads)
                    # processes started during the run: the new workers
                    row.started += len(running.seen | {p.pid for p in tree} - before)
                    wait_ready(server, running)  # the last reload may still be under way
                    tree = running.tree()
                gone = before - {p.pid for p in tree}
                row.runs.append(res)
                row.lost_workers += len(gone)
                if gone and not scenario.around:
                    row.note(round_no, f"{len(gone)} server processes gone during the run")
                lost = sum(1 for p in res.probes if p is None)
                if lost:
                    row.note(
                        round_no,
                        "new connections opened during the run were not answered"
                        f" within {PROBE_TIMEOUT:g} s",
                    )
                if scenario.measure_rss:
                    row.rss.append(total_rss(tree))
                progress(
                    f"  round {round_no} {server.name:<11} {scenario.name:<11} "
                    + (
                        f"FAILED: {res.failed}"
                        if res.failed
                        else f"{res.rps:10.0f} req/s  sock err {res.socket_errors}"
                        f" timeout {res.timeout} non-2xx {res.non2xx}"
                        f" max {res.max_latency * 1000:.0f} ms"
                    )
                    + (f"  ({len(gone)} processes gone)" if gone else "")
                )
                for proc in running.procs:
                    if proc.poll() is not None:
                        raise ServerFailed(f"{server.name} exited with {proc.returncode}")
    except ServerFailed as exc:
        progress(f"  round {round_no} {server.name}: {exc}")
        for scenario in scenarios:
            row = rows[server.name, scenario.name]
            if len(row.runs) < round_no:
                row.runs.append(WrkResult(failed=str(exc).splitlines()[0]))
            row.note(round_no, str(exc).splitlines()[0])


def total_rss(tree: list[psutil.Process]) -> int:
    """Sum of the RSS of the given processes, in bytes."""
    total = 0
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_info().rss
    return total


def total_cpu(tree: list[psutil.Process]) -> float:
    """User + system CPU seconds used so far by the given processes."""
    total = 0.0
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def cpu_per_request(row: Row) -> float | None:
    """Median over the rounds of the server's CPU microseconds per answered request:
    unlike req/s, hardly moved by other work on a busy machine."""
    per = [r.cpu / r.requests * 1e6 for r in row.runs if r.requests and not r.failed]
    return statistics.median(per) if per else None


def run(args: argparse.Namespace, servers: list[Server], scenarios: list[Scenario]) -> list[Row]:
    """All rounds, servers interleaved within each round; returns the rows."""
    rows = {(s.name, c.name): Row(s, c) for s in servers for c in scenarios if s.suite in c.suites}
    args.load_seen = []
    logdir = tempfile.mkdtemp(prefix="bench-logs-")  # the servers' output
    try:
        for round_no in range(1, args.rounds + 1):
            progress(f"round {round_no}/{args.rounds}")
            for server in servers:
                bench_server(server, scenarios, rows, args, logdir, round_no)
    finally:
        if any(r.failed for row in rows.values() for r in row.runs):
            progress(f"server logs kept in {logdir}")
        else:
            shutil.rmtree(logdir, ignore_errors=True)
    return [rows[s.name, c.name] for c in scenarios for s in servers if (s.name, c.name) in rows]


# --- reporting --------------------------------------------------------------------------


def fmt_rps(x: float | None) -> str:
    """Requests/s with thousands separators, or a dash."""
    return "-" if x is None else f"{x:,.0f}"


def fmt_probes(probes: list[float | None]) -> str:
    """Median milliseconds of the answered probes, and how many were not answered."""
    answered = [p for p in probes if p is not None]
    lost = len(probes) - len(answered)
    if not probes:
        return "-"
    text = f"{statistics.median(answered) * 1000:.1f}" if answered else "none answered"
    return text + (f" ({lost}/{len(probes)} > {PROBE_TIMEOUT:g} s)" if lost and answered else "")


def table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the results table."""
    header = [
        "scenario",
        "server",
        "req/s (median)",
        "min – max",
        "socket errors",
        "timeouts",
        "non-2xx",
        "new conn (ms)",
        "lost procs",
        "RSS MiB",
    ]
    cells = []
    for row in rows:
        rps = row.rps()
        probes = [p for r in row.runs for p in r.probes]
        failed = sum(1 for r in row.runs if r.failed)
        cells.append(
            [
                row.scenario.name,
                row.server.name,
                fmt_rps(row.median()) + (f" ({failed} failed)" if failed else ""),
                f"{fmt_rps(min(rps))} – {fmt_rps(max(rps))}" if rps else "-",
                str(sum(r.socket_errors for r in row.runs)),
                str(sum(r.timeout for r in row.runs)),
                str(sum(r.non2xx for r in row.runs)),
                fmt_probes(probes),
                str(row.lost_workers),
                f"{statistics.median(row.rss) / 2**20:.1f}" if row.rss else "",
            ]
        )
    return header, cells


def ratios(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """procmaster's median divided by each other family's, per group and scenario."""
    others = list(dict.fromkeys(r.server.family for r in rows if r.server.family != "procmaster"))
    header = ["scenario"] + [f"procmaster / {f}" for f in others]
    cells = []
    keys = []
    for r in rows:
        if (r.server.group, r.scenario.name) not in keys:
            keys.append((r.server.group, r.scenario.name))
    multi_group = len({g for g, _ in keys}) > 1
    for group, scen in keys:
        by_family = {
            r.server.family: r for r in rows if r.server.group == group and r.scenario.name == scen
        }
        ours = by_family.get("procmaster")
        line = [f"{group} {scen}" if multi_group else scen]
        for fam in others:
            theirs = by_family.get(fam)
            a = ours.median() if ours else None
            b = theirs.median() if theirs else None
            mark = " (see notes)" if (ours and ours.notes) or (theirs and theirs.notes) else ""
            line.append(f"{a / b:.2f}{mark}" if a and b else "-")
        cells.append(line)
    return header, cells


def idle_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Per server: req/s with the idle connections open / without, and their cost."""
    header = [
        "server",
        f"req/s with {IDLE_CONNECTIONS} idle / without",
        "CPU per request with idle / without",
        "idle connections answered",
        "RSS per idle connection",
    ]
    cells = []
    by = {(r.server.name, r.scenario.name): r for r in rows}
    for (name, _scen), row in by.items():
        if not row.idle:
            continue
        base = by.get((name, "keep-alive"))
        a = row.median()
        b = base.median() if base else None
        ca = cpu_per_request(row)
        cb = cpu_per_request(base) if base else None
        answered = statistics.median(s.answered for s in row.idle)
        per = [p for s in row.idle if (p := s.per_connection()) is not None]
        cells.append(
            [
                name,
                f"{a / b:.2f}" if a and b else "-",
                f"{ca:.0f} / {cb:.0f} µs" if ca and cb else "-",
                f"{answered:.0f} / {row.idle[0].opened}",
                f"{statistics.median(per) / 1024:.1f} KiB" if per else "-",
            ]
        )
    return header, cells


def fmt_rounds(rounds: list[int], total: int) -> str:
    """'every round' or 'round 1, 3'."""
    if sorted(set(rounds)) == list(range(1, total + 1)):
        return "every round"
    return "round " + ", ".join(map(str, sorted(set(rounds))))


def render_text(header: list[str], cells: list[list[str]]) -> str:
    """A plain aligned table."""
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        lines.append("  ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)))
    return "\n".join(lines)


def render_markdown(header: list[str], cells: list[list[str]], labels: int = 2) -> str:
    """A Markdown table, the first ``labels`` columns left-aligned, numbers right-aligned."""
    align = ["---" if i < labels else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    return "\n".join(lines)


def version_of(argv: list[str]) -> str:
    """First line a tool prints about its version, or 'missing'."""
    if not shutil.which(argv[0]):
        return "missing"
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def machine() -> dict[str, str]:
    """What the figures depend on: CPUs, kernel, Python, server and wrk versions."""
    try:
        from importlib.metadata import version

        pm = version("procmaster")
    except Exception:  # noqa: BLE001 - any failure means "not installed"
        pm = "unknown"
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "procmaster": pm,
        "uwsgi": version_of(["uwsgi", "--version"]),
        "gunicorn": re.sub(
            r"^gunicorn \(version (.*)\)$", r"\1", version_of(["gunicorn", "--version"])
        ),
        "wrk": re.sub(r"^wrk ", "", version_of(["wrk", "--version"]).split(" Copyright")[0]),
        "nginx": version_of(["nginx", "-v"]).replace("nginx version: ", ""),
    }


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def command_line() -> str:
    """How this script was invoked, as a shell command."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]))
    return shlex.join(["python", script, *sys.argv[1:]])


def reload_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the reload table: what the reloads cost the clients."""
    header = [
        "scenario",
        "server",
        "reloads",
        "procs started",
        "failed requests",
        "per round",
        "socket errors",
        "non-2xx",
        "timeouts",
        "max latency ms (median)",
        "max latency ms (worst)",
        "req/s (median)",
        "new conn (ms)",
    ]
    cells = []
    for row in rows:
        ok = [r for r in row.runs if not r.failed]
        per_round = [r.socket_errors + r.non2xx for r in ok]
        lat = [r.max_latency * 1000 for r in ok]
        failed = len(row.runs) - len(ok)
        cells.append(
            [
                row.scenario.name,
                row.server.name,
                str(sum(row.reloads)),
                str(row.started),
                str(sum(per_round)) + (f" ({failed} runs failed)" if failed else ""),
                " / ".join(map(str, per_round)) or "-",
                str(sum(r.socket_errors for r in ok)),
                str(sum(r.non2xx for r in ok)),
                str(sum(r.timeout for r in ok)),
                f"{statistics.median(lat):,.0f}" if lat else "-",
                f"{max(lat):,.0f}" if lat else "-",
                fmt_rps(row.median()),
                fmt_probes([p for r in row.runs for p in r.probes]),
            ]
        )
    return header, cells


def report(rows: list[Row], args: argparse.Namespace, markdown: bool) -> str:
    """The results tables, the ratios and the notes, as text or Markdown."""
    load_rows = [r for r in rows if r.server.suite != "reload"]
    reload_rows = [r for r in rows if r.server.suite == "reload"]
    tables: list[tuple[list[str], list[list[str]], int]] = []  # header, cells, label columns
    if load_rows:
        tables.append((*table(load_rows), 2))
        tables.append((*ratios(load_rows), 1))
    if reload_rows:
        tables.append((*reload_table(reload_rows), 2))
    ih, ic = idle_table(rows)
    notes = [
        f"{r.server.name} {r.scenario.name}: {msg} ({fmt_rounds(rounds, args.rounds)})"
        for r in rows
        for msg, rounds in r.notes.items()
    ]
    load = args.load_seen
    load_line = (
        f"load average (1 min) at each start: {min(load):.2f} – {max(load):.2f},"
        f" median {statistics.median(load):.2f}"
        if load
        else ""
    )
    if not markdown:
        out = []
        for h, c, _ in tables:
            if len(h) > 1:
                out += [render_text(h, c), ""]
        out.append(load_line)
        if ic:
            out += ["", render_text(ih, ic)]
        if notes:
            out += ["", "notes:", *("  " + n for n in notes)]
        return "\n".join(out)
    m = machine()
    servers = {r.server.name: r.server for r in rows}
    scens = {r.scenario.name: r.scenario for r in rows}
    confs = {text for s in servers.values() for name, text in s.files if name == "nginx.conf"}
    out = [
        f"## {datetime.date.today().isoformat()}",
        "",
        "```",
        command_line(),
        "```",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, Python {m['python']};"
        f" {load_line}",
        f"- procmaster {m['procmaster']}, uWSGI {m['uwsgi']}, gunicorn {m['gunicorn']},"
        f" wrk {m['wrk']}" + (f", {m['nginx']}" if confs else ""),
        f"- {args.rounds} rounds, servers interleaved; each run"
        f" `{shlex.join(wrk_argv(args, args.duration, Scenario('x'), 'http://127.0.0.1:PORT'))}`"
        f" plus the scenario's arguments, after a {args.warmup:g} s warm-up per start",
        "- scenarios: "
        + "; ".join(
            f"{s.name}: {shlex.join(s.wrk_args) if s.wrk_args else 'no extra arguments'}"
            + (
                f" ({RELOADS} reloads {reload_spacing(args.duration):g} s apart)"
                if "reload" in s.suites
                else ""
            )
            for s in scens.values()
        ),
        "- servers (TMP: a directory made for each start):",
        *(
            f"  - {s.name}: `"
            + " && ".join(shlex.join(a) for a in s.argvs("PORT"))
            + "`"
            + (
                f"; reload: `kill -{signal.Signals(s.reload_signal).name[3:]} MASTER`"
                if s.reload_signal
                else ""
            )
            + (f"; reload: `touch TMP/{s.reload_touch}`" if s.reload_touch else "")
            for s in servers.values()
        ),
    ]
    if confs:
        conf = NGINX_CONF.replace("__PASS__", "            # PASS: per protocol, below")
        out += ["", "TMP/nginx.conf:", "", "```nginx", fill(conf, "PORT", "TMP").strip(), "```"]
        for protocol, lines in NGINX_PASS.items():
            out += ["", f"PASS for {protocol}:", "", "```nginx", fill(lines, "PORT", "TMP"), "```"]
    for h, c, labels in tables:
        if len(h) < 2:  # a ratios table without another family
            continue
        out += ["", render_markdown(h, c, labels=labels)]
        if c is tables[0][1] and load_rows:
            out += [
                "",
                "Errors are summed over the rounds (socket errors: connect + read + write)."
                " new conn: median time for one extra connection, opened every"
                f" {PROBE_INTERVAL:g} s during the run, to be answered"
                f" ({PROBE_TIMEOUT:g} s timeout). lost procs: server processes that"
                " disappeared during a run. RSS: master + workers after the keep-alive run"
                " (median of the rounds; shared pages counted in each process).",
            ]
    if reload_rows:
        out += [
            "",
            "reloads: reloads asked for, summed over the rounds. procs started: server"
            f" processes seen during the runs that were not there before (looked for every"
            f" {RELOAD_SAMPLE * 1000:g} ms; new workers, a master that re-executes keeps its"
            " pid), summed over the rounds. failed requests: wrk's socket errors (connect + read + write)"
            " + non-2xx answers, summed, then per round. max latency: wrk's longest"
            " answered request in a run (requests that timed out are not in it; see"
            " timeouts).",
        ]
    if ic:
        out += [
            "",
            f"keep-alive+idle: the keep-alive run while {IDLE_CONNECTIONS} other connections,"
            " each answered once before the run where the server did, stay open and silent."
            " CPU per request: the server's processes' user + system CPU time during the run"
            " divided by the requests wrk counted (median of the rounds), which other work"
            " on the machine moves far less than req/s."
            " RSS per idle connection: growth of master + workers while opening them,"
            " divided by the connections answered.",
            "",
            render_markdown(ih, ic, labels=1),
        ]
    if notes:
        out += ["", "Notes:", "", *(f"- {n}" for n in notes)]
    return "\n".join(out).replace(APPS, "bench/apps")


# --- command line -----------------------------------------------------------------------


def select(
    only: list[str], servers: tuple[Server, ...], scenarios: tuple[Scenario, ...]
) -> tuple[list[Server], list[Scenario]]:
    """Keep the servers and scenarios that --only names (by name or group)."""
    if not only:
        return list(servers), list(scenarios)
    server_tags = {t for s in servers for t in s.tags}
    scen_tags = {s.name for s in scenarios}
    unknown = [t for t in only if t not in server_tags | scen_tags]
    if unknown:
        known = ", ".join(sorted(server_tags | scen_tags))
        raise SystemExit(f"--only: unknown {', '.join(unknown)} (known: {known})")
    want_srv = [t for t in only if t in server_tags]
    want_scen = [t for t in only if t in scen_tags]
    srv = [s for s in servers if not want_srv or s.tags & set(want_srv)]
    scn = [c for c in scenarios if not want_scen or c.name in want_scen]
    if not want_srv:  # scenarios alone: the servers they run against
        srv = [s for s in srv if any(s.suite in c.suites for c in scn)]
    if not want_scen:  # servers alone: the scenarios that run against them
        scn = [c for c in scn if any(s.suite in c.suites for s in srv)]
    return srv, scn


def check_tools(servers: list[Server]) -> None:
    """Exit with how to install what is missing."""
    needed = ["wrk", *(t for s in servers for t in s.requires)]
    missing = [t for t in dict.fromkeys(needed) if not shutil.which(t)]
    if missing:
        raise SystemExit(
            "missing: " + ", ".join(missing) + "\n" + "\n".join(INSTALL_HINTS[t] for t in missing)
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    p.add_argument("--rounds", type=int, default=3, help="rounds over all servers (3)")
    p.add_argument("--warmup", type=float, default=1, help="seconds of wrk after each start (1)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME[,NAME]",
        help="only these servers (name, group or suite, e.g. procmaster, http, nginx,"
        " nginx-fastcgi, reload) and/or scenarios (keep-alive, close, reload keep-alive,"
        " reload close); repeatable",
    )
    p.add_argument("--markdown", action="store_true", help="print Markdown for bench/RESULTS.md")
    args = p.parse_args(argv)
    args.only = [t for item in args.only for t in item.split(",") if t]
    if args.rounds < 1 or args.duration <= 0:
        p.error("--rounds and --duration must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; 1 if any run failed."""
    args = parse_args(argv)
    servers, scenarios = select(args.only, ALL_SERVERS, SCENARIOS)
    check_tools(servers)
    # SIGTERM unwinds like Ctrl-C, so the servers are stopped either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # the idle connections need descriptors here, and the servers inherit the limit
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    try:
        rows = run(args, servers, scenarios)
    except KeyboardInterrupt:
        progress("interrupted; servers stopped")
        return 130
    print(report(rows, args, args.markdown))
    return 1 if any(r.failed for row in rows for r in row.runs) else 0


if __name__ == "__main__":
    sys.exit(main())
