"""Graceful reloads with real files and real inotify: touch-reload, fs-reload,
touch-workers-reload, touch-chain-reload, py-autoreload, SIGHUP; under load they
drop nothing. Real procmaster processes, killed by PID at the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time

import pytest
from support import Load, free_port, http_get, signal_pending, wait_for

APP = """
VERSION = {version!r}
import os
import time
from urllib.parse import parse_qs

# a test holds a reload's check (which imports this module) here until it opens the gate
while os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "reload-gate")):
    time.sleep(0.02)

def application(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(float(parse_qs(environ["QUERY_STRING"]).get("s", ["2"])[0]))
    body = VERSION.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def write_app(directory, version: str, broken: bool = False) -> None:
    text = APP.format(version=version)
    if broken:
        text += "\nraise RuntimeError('this deploy is broken')\n"
    path = directory / "verapp.py"
    tmp = directory / ".verapp.py.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)  # as a deploy does: never a half-written module
    pycache = directory / "__pycache__"
    if pycache.exists():
        for f in pycache.iterdir():
            f.unlink()


def version(port):
    return http_get(port, "/")[2].decode()


def start_site(procmaster, tmp_path, extra: str, lazy: bool = True):
    port = free_port()
    write_app(tmp_path, "1")
    ini = tmp_path / "site.ini"
    ini.write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nchdir = {tmp_path}\nmodule = verapp\n"
        f"processes = 2\ndisable-logging = true\n{'lazy-apps = true' if lazy else ''}\n{extra}\n"
    )
    server = procmaster("--ini", ini, wait_port=port)
    assert version(port) == "1"
    return server, port, ini


@pytest.mark.parametrize("how", ["touch", "rewrite", "mv-replace", "create"])
def test_touch_reload_every_way_of_changing_the_file(procmaster, tmp_path, how):
    trigger = tmp_path / "reload_me.txt"
    if how != "create":
        trigger.write_text("x")
    server, port, _ = start_site(procmaster, tmp_path, f"touch-reload = {trigger}", lazy=False)
    old = server.worker_pids()
    write_app(tmp_path, "2")
    if how == "touch":
        os.utime(trigger)
    elif how == "rewrite":
        trigger.write_text("deploy 2")
    elif how == "mv-replace":
        (tmp_path / "new.txt").write_text("y")
        os.replace(tmp_path / "new.txt", trigger)
    else:
        trigger.write_text("created")
    wait_for(lambda: version(port) == "2", 15, what="version 2 after touch")
    wait_for(lambda: not set(old) & set(server.worker_pids()), 15, what="old workers gone")
    assert f"touch-reload {trigger}" in server.log


def test_fs_reload_on_a_directory(procmaster, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    server, port, _ = start_site(procmaster, tmp_path, f"fs-reload = {templates}", lazy=False)
    write_app(tmp_path, "2")
    (templates / "index.html").write_text("<p>new</p>")
    wait_for(lambda: version(port) == "2", 15, what="reload after a template change")
    assert "fs-reload" in server.log


def test_touch_workers_reload_with_lazy_apps(procmaster, tmp_path):
    trigger = tmp_path / "workers.txt"
    server, port, _ = start_site(procmaster, tmp_path, f"touch-workers-reload = {trigger}")
    master_pid = server.pid
    old = server.worker_pids()
    write_app(tmp_path, "2")
    trigger.write_text("go")
    wait_for(lambda: version(port) == "2", 15, what="new workers")
    wait_for(lambda: not set(old) & set(server.worker_pids()), 15, what="old workers gone")
    assert server.pid == master_pid and server.proc.poll() is None


def test_touch_chain_reload_replaces_one_at_a_time(procmaster, tmp_path):
    trigger = tmp_path / "chain.txt"
    server, port, _ = start_site(
        procmaster, tmp_path, f"touch-chain-reload = {trigger}\nprocesses = 3"
    )
    old = server.wait_workers(3)
    assert len(old) == 3
    write_app(tmp_path, "2")
    trigger.write_text("go")
    server.wait_log("reload (touch-chain-reload", 20)
    wait_for(lambda: not set(old) & set(server.worker_pids()), 15, what="all replaced")
    assert {version(port) for _ in range(10)} == {"2"}
    assert len(server.wait_workers(3)) == 3


def test_broken_new_version_keeps_old_serving_then_fixed_one_is_picked_up(procmaster, tmp_path):
    trigger = tmp_path / "reload_me.txt"
    server, port, _ = start_site(procmaster, tmp_path, f"touch-reload = {trigger}", lazy=False)
    write_app(tmp_path, "2", broken=True)
    trigger.write_text("1")
    server.wait_log("aborted", 20)
    assert "this deploy is broken" in server.log
    assert version(port) == "1"
    write_app(tmp_path, "3")
    trigger.write_text("2")
    wait_for(lambda: version(port) == "3", 20, what="the fixed version")


def test_broken_version_with_workers_reload_keeps_old(procmaster, tmp_path):
    trigger = tmp_path / "w.txt"
    server, port, _ = start_site(procmaster, tmp_path, f"touch-workers-reload = {trigger}")
    write_app(tmp_path, "2", broken=True)
    trigger.write_text("1")
    server.wait_log("aborted", 20)
    assert version(port) == "1"
    write_app(tmp_path, "3")
    trigger.write_text("2")
    wait_for(lambda: version(port) == "3", 20, what="the fixed version")


def test_py_autoreload_sees_module_change(procmaster, tmp_path):
    server, port, _ = start_site(procmaster, tmp_path, "py-autoreload = 1")
    time.sleep(1.2)  # the workers report their imported modules once a second
    write_app(tmp_path, "2")
    wait_for(lambda: version(port) == "2", 15, what="autoreload after editing the module")
    assert "py-autoreload" in server.log


SLOW_START_APP = """
import os
import time

# the worker loads this (lazy-apps) and waits here until the test opens the gate
here = os.path.dirname(os.path.abspath(__file__))
open(os.path.join(here, "loading"), "w").close()
while not os.path.exists(os.path.join(here, "go")):
    time.sleep(0.02)

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def test_log_reopen_while_a_worker_loads_its_app_reaches_it(procmaster, tmp_path):
    """A reopen asked for while a worker is still loading its app (lazy-apps, a
    respawn, a reload) waits for that worker's loop; it is never dropped, or the
    worker would write into the rotated file for the rest of its life."""
    (tmp_path / "slowstart.py").write_text(SLOW_START_APP)
    logfile, reopen = tmp_path / "site.log", tmp_path / "reopen.txt"
    port = free_port()
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--pythonpath",
        tmp_path,
        "--module",
        "slowstart",
        "--lazy-apps",
        "--logto",
        logfile,
        "--touch-logreopen",
        reopen,
    )
    wait_for(lambda: (tmp_path / "loading").exists(), 15, what="the worker loading its app")
    os.rename(logfile, tmp_path / "moved.log")
    reopen.write_text("1")
    wait_for(
        lambda: logfile.exists() and "log reopened" in logfile.read_text(), 10, what="reopened log"
    )
    (tmp_path / "go").touch()
    assert http_get(port, "/?loaded-late=1", timeout=15)[0] == 200
    wait_for(lambda: "loaded-late=1" in logfile.read_text(), 10, what="the line in the new file")
    assert "loaded-late=1" not in (tmp_path / "moved.log").read_text()


FIRST_LOADER_WAITS_APP = """
import os
import time

# the first process to load this (a worker: never the reload's check) waits here
# until the test opens the gate; every later one goes on at once
here = os.path.dirname(os.path.abspath(__file__))
if os.environ.get("PROCMASTER_PROBE") != "1":
    try:
        os.close(os.open(os.path.join(here, "loading"), os.O_CREAT | os.O_EXCL))
        first = True
    except FileExistsError:
        first = False
    while first and not os.path.exists(os.path.join(here, "go")):
        time.sleep(0.02)

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def test_a_worker_still_starting_when_the_master_reexecutes_stops_cleanly(procmaster, tmp_path):
    """A SIGHUP while a worker loads its app: the master re-executes, the worker's
    ready line meets a closed pipe; the worker is an old one of the new image
    then, and stops as asked: no traceback, exit code 0."""
    (tmp_path / "firstwaits.py").write_text(FIRST_LOADER_WAITS_APP)
    port = free_port()
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", "--pythonpath", tmp_path,
        "--module", "firstwaits", "--lazy-apps",
    )  # fmt: skip
    wait_for(lambda: (tmp_path / "loading").exists(), 15, what="the worker loading its app")
    starting = server.worker_pids()
    server.signal(signal.SIGHUP)
    server.wait_log("reload (SIGHUP) done", 30)
    (tmp_path / "go").touch()
    wait_for(
        lambda: not set(server.worker_pids()) & set(starting),
        30,
        what=lambda: f"the old worker gone:\n{server.log}",
    )
    assert "Traceback" not in server.log and "code 1" not in server.log, server.log
    assert http_get(port, "/")[0] == 200


def test_touch_logreopen_and_logrotate(procmaster, tmp_path):
    logfile = tmp_path / "site.log"
    reopen = tmp_path / "reopen.txt"
    rotate = tmp_path / "rotate.txt"
    port = free_port()
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--logto",
        logfile,
        "--touch-logreopen",
        reopen,
        "--touch-logrotate",
        rotate,
        wait_port=port,
    )
    os.rename(logfile, tmp_path / "moved.log")
    reopen.write_text("1")
    wait_for(
        lambda: logfile.exists() and "log reopened" in logfile.read_text(), 10, what="reopened log"
    )
    http_get(port, "/?after-reopen=1")
    wait_for(lambda: "after-reopen=1" in logfile.read_text(), 5, what="worker writes the new file")
    rotate.write_text("1")
    backup = wait_for(
        lambda: next((p for p in tmp_path.iterdir() if p.name.startswith("site.log.")), None),
        10,
        what="rotated file",
    )
    # as uWSGI: LOG.<epoch>, and the old file's last line says so
    assert backup.name[len("site.log.") :].isdigit(), backup.name
    assert f"triggering rotation to {backup}..." in backup.read_text()
    http_get(port, "/?after-rotate=1")
    wait_for(
        lambda: logfile.exists() and "after-rotate=1" in logfile.read_text(),
        5,
        what="log after rotate",
    )
    assert server.proc.poll() is None


TRIGGERS = ["SIGHUP", "touch-reload", "touch-chain-reload", "touch-workers-reload", "py-autoreload"]


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_three_reloads_under_load_drop_nothing(procmaster, tmp_path, trigger):
    touch = tmp_path / "trigger.txt"
    extra = {"SIGHUP": "", "py-autoreload": "py-autoreload = 1"}.get(
        trigger, f"{trigger} = {touch}"
    )
    server, port, _ = start_site(
        procmaster, tmp_path, extra + "\nworker-reload-mercy = 20", lazy=trigger != "SIGHUP"
    )
    slow_results = []
    with Load(port, accept=lambda status, body: status == 200 and body.isdigit()) as load:
        if trigger == "py-autoreload":
            time.sleep(1.2)  # the workers report their modules once a second
        for n in range(2, 5):
            old = server.worker_pids()
            slow = threading.Thread(
                target=lambda: slow_results.append(http_get(port, "/sleep?s=2", timeout=20))
            )
            slow.start()
            time.sleep(0.3)  # the slow request is in its handler before the reload starts
            write_app(tmp_path, str(n))
            if trigger == "SIGHUP":
                server.signal(signal.SIGHUP)
            elif trigger != "py-autoreload":
                touch.write_text(str(n))
            wait_for(lambda n=n: version(port) == str(n), 30, what=f"version {n}")
            wait_for(
                lambda old=old: not set(old) & set(server.worker_pids()),
                30,
                what="old workers gone",
            )
            slow.join(20)
            load.more(100)
    assert load.failures == [], load.failures[:5]
    assert [r[0] for r in slow_results] == [200, 200, 200]
    assert load.bodies >= {b"4"}


def test_sighup_storm_coalesces(procmaster, tmp_path):
    """SIGHUPs that arrive while a reload runs are queued as one more reload, never
    one each: a burst delivered while the first reload is under way makes exactly two.
    The first reload's check is held (the app's import waits on a gate file) until
    the master has taken every SIGHUP of the burst, so no timing decides the count."""
    server, port, _ = start_site(procmaster, tmp_path, "", lazy=False)
    gate = tmp_path / "reload-gate"
    with Load(port) as load:
        gate.write_text("closed")
        server.signal(signal.SIGHUP)
        server.wait_log("reload requested (SIGHUP): checking", 30)
        for _ in range(20):
            server.signal(signal.SIGHUP)
        server.wait_log("during a reload: queued", 30)
        wait_for(lambda: not signal_pending(server.pid, signal.SIGHUP), 30, what="SIGHUPs taken")
        assert "reload (SIGHUP) done" not in server.log  # the check is still held
        gate.unlink()
        server.wait_log("reload (SIGHUP) done", 60, count=2)
        wait_for(lambda: len(server.worker_pids()) == 2, 30, what="2 workers")
        load.more(100)
    assert load.failures == []
    assert server.log.count("during a reload: queued") == 1
    assert server.log.count("reload requested (SIGHUP): checking") == 2
    assert server.log.count("reload (SIGHUP) done") == 2


def test_reload_through_uwsgi_cli_sighup_keeps_pid(procmaster, tmp_path):
    server, port, _ = start_site(procmaster, tmp_path, "", lazy=False)
    pid = server.pid
    server.signal(signal.SIGHUP)
    server.wait_log("reload (SIGHUP) done")
    assert server.pid == pid and server.proc.poll() is None
    assert subprocess.run(["kill", "-0", str(pid)]).returncode == 0


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_reloads_under_load_through_nginx_uwsgi_pass(procmaster, tmp_path, trigger):
    """The same, with nginx in front (uwsgi_pass over a unix socket), as a
    production site runs: nginx must never answer 502/504 during a reload."""
    from support.nginx import nginx_binary, start_nginx

    if nginx_binary() is None:
        pytest.skip("nginx is not installed (.ci/run installs it)")
    touch = tmp_path / "trigger.txt"
    sock = tmp_path / "app.sock"
    write_app(tmp_path, "1")
    extra = {"SIGHUP": "", "py-autoreload": "py-autoreload = 1"}.get(
        trigger, f"{trigger} = {touch}"
    )
    ini = tmp_path / "site.ini"
    ini.write_text(
        f"[uwsgi]\nsocket = {sock}\nchdir = {tmp_path}\nmodule = verapp\nprocesses = 2\n"
        f"disable-logging = true\nworker-reload-mercy = 20\n"
        f"{'lazy-apps = true' if trigger != 'SIGHUP' else ''}\n{extra}\n"
    )
    server = procmaster("--ini", ini, wait_unix=str(sock))
    port = free_port()
    front = start_nginx(
        tmp_path / "nginx",
        f"server {{ listen 127.0.0.1:{port}; location / {{ include {{uwsgi_params}};"
        f" uwsgi_pass unix:{sock}; }} }}",
        ports=[port],
    )
    try:
        assert version(port) == "1"
        with Load(port, accept=lambda status, body: status == 200 and body.isdigit()) as load:
            if trigger == "py-autoreload":
                time.sleep(1.2)  # the workers report their modules once a second
            for n in range(2, 5):
                old = server.worker_pids()
                write_app(tmp_path, str(n))
                if trigger == "SIGHUP":
                    server.signal(signal.SIGHUP)
                elif trigger != "py-autoreload":
                    touch.write_text(str(n))
                wait_for(lambda n=n: version(port) == str(n), 30, what=f"version {n}")
                wait_for(
                    lambda old=old: not set(old) & set(server.worker_pids()), 30, what="old gone"
                )
                load.more(100)
        assert load.failures == [], load.failures[:5]
        assert "upstream" not in front.error_log
    finally:
        front.stop()


FIRST_REQUEST_APPS = {
    "wsgi": (
        "module = late_app",
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '3')])\n"
        "    return [b'old']\n",
    ),
    "asgi": (
        "asgi = late_app:app",
        "async def app(scope, receive, send):\n"
        "    if scope['type'] == 'lifespan':\n"
        "        while True:\n"
        "            kind = (await receive())['type'].replace('lifespan.', '')\n"
        "            await send({'type': f'lifespan.{kind}.complete'})\n"
        "            if kind == 'shutdown':\n"
        "                return\n"
        "    await send({'type': 'http.response.start', 'status': 200,\n"
        "                'headers': [(b'content-length', b'3')]})\n"
        "    await send({'type': 'http.response.body', 'body': b'old'})\n",
    ),
}


@pytest.mark.parametrize("kind", sorted(FIRST_REQUEST_APPS))
def test_a_client_still_sending_its_first_request_is_answered_by_a_draining_worker(
    procmaster, tmp_path, kind
):
    """A connection the worker took before a reload, whose first request comes
    later than the moment a draining worker leaves an idle keep-alive connection,
    is a client still sending: the old worker answers it within the header
    deadline (socket-timeout), it does not close it unanswered. (Under load a
    client thread can be that late between connect() and send(): loaded run 2
    of round nine lost a request on a new connection during a reload.)"""
    import psutil

    option, source = FIRST_REQUEST_APPS[kind]
    (tmp_path / "late_app.py").write_text(source)
    port = free_port()
    ini = tmp_path / "site.ini"
    ini.write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nchdir = {tmp_path}\n{option}\n"
        "processes = 1\ndisable-logging = true\nsocket-timeout = 30\nworker-reload-mercy = 30\n"
    )
    server = procmaster("--ini", ini, wait_port=port)
    [old] = server.wait_workers(1)
    client = socket.create_connection(("127.0.0.1", port), timeout=30)
    mine = client.getsockname()
    # the old worker has taken the connection (it holds the other end)
    wait_for(
        lambda: any(
            c.raddr and tuple(c.raddr) == mine for c in psutil.Process(old).net_connections()
        ),
        10,
        what="the worker took the connection",
    )
    server.signal(signal.SIGHUP)
    server.wait_log("stopping")
    # the client is late: more than the idle second, and a sweep, after the stop
    time.sleep(2.5)
    assert psutil.pid_exists(old)  # still draining: this connection is open
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := client.recv(4096):
        answer += chunk
    client.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"old"), answer
    wait_for(lambda: not psutil.pid_exists(old), 30, what="the old worker gone once it answered")
