"""The master: start-up errors, signals, respawn, reload, app loading, logging.
Real procmaster processes; every one is killed by PID at the end."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from support import APPS, ROOT, Load, free_port, http_get, wait_for


def run_cli(*args, cwd=None, timeout=30, env=None):
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT)])
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "procmaster", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def write_ini(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_flags_form_serves(procmaster):
    port = free_port()
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp:application",
        "--processes",
        "2",
        "--master",
        wait_port=port,
    )
    assert http_get(port, "/")[2] == b"Hello, World!"


def test_example_hello_ini_from_configs(procmaster, tmp_path):
    port = free_port()
    shutil.copy(ROOT / "configs" / "hello.py", tmp_path / "hello.py")
    text = (
        (ROOT / "configs" / "hello.ini").read_text().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    )
    ini = write_ini(tmp_path / "hello.ini", text)
    server = procmaster("--ini", ini, cwd="/", wait_port=port)
    assert http_get(port, "/")[2] == b"Hello, World!\n"
    assert len(server.wait_workers(2)) == 2


def test_example_flask_ini(procmaster, tmp_path):
    pytest.importorskip("flask")
    port = free_port()
    shutil.copy(ROOT / "configs" / "flaskapp.py", tmp_path / "flaskapp.py")
    text = (
        (ROOT / "configs" / "flask.ini").read_text().replace("127.0.0.1:8001", f"127.0.0.1:{port}")
    )
    ini = write_ini(tmp_path / "flask.ini", text)
    procmaster("--ini", ini, cwd="/", wait_port=port)
    assert http_get(port, "/")[2] == b"Hello from Flask!\n"
    assert http_get(port, "/echo", "POST", b"x" * 100000)[2] == b"x" * 100000


def test_placeholders_includes_and_repeated_keys_end_to_end(procmaster, tmp_path):
    port = free_port()
    appdir = tmp_path / "app"
    appdir.mkdir()
    shutil.copy(APPS / "testapp.py", appdir / "site_app.py")
    write_ini(tmp_path / "base.ini", "[uwsgi]\nmaster = true\nprocesses = 3\nenv = FROM_BASE=yes\n")
    ini = write_ini(
        tmp_path / "site.ini",
        """[uwsgi]
ini = base.ini
project = site_app
chdir = %dapp
module = %(project):application
http-socket = 127.0.0.1:$(SITE_PORT)
env = FIRST=1
env = SECOND=2
processes = 2
""",
    )
    server = procmaster("--ini", ini, cwd="/", env={"SITE_PORT": str(port)}, wait_port=port)
    import json

    env = json.loads(http_get(port, "/osenv")[2])
    assert env["FIRST"] == "1" and env["SECOND"] == "2" and env["FROM_BASE"] == "yes"
    assert len(server.wait_workers(2)) == 2  # the last scalar wins


def test_typo_option_warns_with_file_and_line(procmaster, tmp_path):
    port = free_port()
    ini = write_ini(
        tmp_path / "typo.ini",
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesess = 2\n",
    )
    server = procmaster("--ini", ini, wait_port=port)
    assert f"{ini}:4" in server.log or "typo.ini:4" in server.log
    assert "procesess" in server.log and "processes" in server.log


def test_bad_value_exits_nonzero_with_file_line_and_no_traceback(tmp_path):
    ini = write_ini(tmp_path / "bad.ini", "[uwsgi]\nhttp-socket = 127.0.0.1:1\nprocesses = two\n")
    result = run_cli("--ini", ini, cwd=tmp_path)
    assert result.returncode != 0
    assert "bad.ini:3" in result.stderr and "processes" in result.stderr and "two" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_port_in_use_is_a_clear_error(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        ini = write_ini(
            tmp_path / "busy.ini", f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\n"
        )
        result = run_cli("--ini", ini, cwd=tmp_path)
    finally:
        s.close()
    assert result.returncode == 1
    assert "busy.ini:2" in result.stderr and "in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_module_is_startup_error_with_app_traceback(tmp_path):
    (tmp_path / "brokenapp.py").write_text("import no_such_dependency_xyz\n")
    result = run_cli(
        "--http-socket", f"127.0.0.1:{free_port()}", "--module", "brokenapp", "--chdir", tmp_path
    )
    assert result.returncode == 22
    assert "no_such_dependency_xyz" in result.stderr and "brokenapp" in result.stderr
    assert "procmaster/master/" not in result.stderr  # the app's traceback, not ours


def test_missing_callable_is_clear(tmp_path):
    (tmp_path / "noapp.py").write_text("def other(e, s): pass\n")
    result = run_cli(
        "--http-socket", f"127.0.0.1:{free_port()}", "--module", "noapp:app", "--chdir", tmp_path
    )
    assert result.returncode == 22
    assert "no callable 'app'" in result.stderr and "other" in result.stderr


@pytest.mark.parametrize(
    "form",
    [
        "module=testapp:make_app()",
        "module=testapp&callable=application",
        "wsgi-file=WSGI",
        "module=testapp:application",
    ],
)
def test_app_loading_forms(procmaster, form):
    port = free_port()
    args = ["--http-socket", f"127.0.0.1:{port}"]
    for part in form.split("&"):
        key, value = part.split("=", 1)
        if value == "WSGI":
            value = str(APPS / "testapp.py")
        args += [f"--{key}", value]
    procmaster(*args, wait_port=port)
    assert http_get(port, "/")[2] == b"Hello, World!"


def test_pythonpath_and_mount(procmaster, tmp_path):
    port = free_port()
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "mounted.py").write_text(
        "def application(environ, start_response):\n"
        "    body = (environ['SCRIPT_NAME'] + '|' + environ['PATH_INFO']).encode()\n"
        "    start_response('200 OK', [('Content-Length', str(len(body)))])\n"
        "    return [body]\n"
    )
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--pythonpath",
        lib,
        "--mount",
        "/sub=mounted:application",
        "--module",
        "testapp",
        wait_port=port,
    )
    assert http_get(port, "/sub/x/y")[2] == b"/sub|/x/y"
    assert http_get(port, "/")[2] == b"Hello, World!"


def test_virtualenv_site_packages_used(procmaster, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = (
        venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    )
    (site / "only_in_venv.py").write_text("MARK = 'from the venv'\n")
    (tmp_path / "venvapp.py").write_text(
        "import only_in_venv, sys\n"
        "def application(environ, start_response):\n"
        "    body = (only_in_venv.MARK + '|' + sys.prefix).encode()\n"
        "    start_response('200 OK', [('Content-Length', str(len(body)))])\n"
        "    return [body]\n"
    )
    port = free_port()
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--virtualenv",
        venv,
        "--chdir",
        tmp_path,
        "--module",
        "venvapp",
        wait_port=port,
    )
    assert http_get(port, "/")[2] == f"from the venv|{venv}".encode()


def test_sigterm_graceful_exit_0_nothing_left(procmaster):
    port = free_port()
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--processes",
        "2",
        wait_port=port,
    )
    workers = server.wait_workers(2)
    assert len(workers) == 2
    # a request in flight finishes
    result = {}
    t = threading.Thread(target=lambda: result.update(r=http_get(port, "/sleep?s=1")))
    t.start()
    server.wait_log("sleeping 1s")
    server.signal(signal.SIGTERM)
    assert server.wait_exit(15) == 0
    t.join(5)
    assert result["r"][0] == 200
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in workers)


def test_sigint_exits_quickly(procmaster):
    port = free_port()
    server = procmaster("--http-socket", f"127.0.0.1:{port}", "--module", "testapp", wait_port=port)
    workers = server.worker_pids()
    server.signal(signal.SIGINT)
    assert server.wait_exit(10) == 0
    wait_for(lambda: not any(psutil.pid_exists(p) for p in workers), 3, what="workers gone")


def test_sigkill_of_master_leaves_no_worker(procmaster):
    port = free_port()
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--processes",
        "3",
        wait_port=port,
    )
    workers = server.wait_workers(3)
    assert len(workers) == 3
    server.signal(signal.SIGKILL)
    server.wait_exit(5)
    t0 = time.monotonic()
    wait_for(
        lambda: not any(_alive(p) for p in workers), 2.0, what="workers to die with the master"
    )
    assert time.monotonic() - t0 < 2.0


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_killed_worker_is_respawned_and_requests_keep_succeeding(procmaster):
    port = free_port()
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--processes",
        "2",
        wait_port=port,
    )
    before = server.worker_pids()
    os.kill(before[0], signal.SIGKILL)
    for _ in range(20):
        assert http_get(port, "/")[0] == 200
    wait_for(
        lambda: len(server.worker_pids()) == 2 and server.worker_pids() != before, 5, what="respawn"
    )
    assert "killed by signal 9 (SIGKILL)" in server.log


def test_sighup_under_load_zero_failures_and_new_config(procmaster, tmp_path):
    port = free_port()
    ini = write_ini(
        tmp_path / "site.ini",
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\n"
        "processes = 2\nenv = APP_VERSION=1\ndisable-logging = true\n",
    )
    server = procmaster("--ini", ini, wait_port=port)
    old = server.worker_pids()
    assert http_get(port, "/version")[2] == b"1"

    def accept(status: int, body: bytes) -> bool:
        return status == 200 and body in (b"1", b"2")

    with Load(port, "/version", accept=accept) as load:
        ini.write_text(ini.read_text().replace("APP_VERSION=1", "APP_VERSION=2"))
        server.signal(signal.SIGHUP)
        wait_for(lambda: http_get(port, "/version")[2] == b"2", 20, what="new version served")
        wait_for(lambda: not set(old) & set(server.worker_pids()), 20, what="old workers gone")
        load.more(200)
    assert load.failures == [], load.failures[:5]
    assert server.proc.poll() is None and server.pid == server.proc.pid
    assert "reload (SIGHUP) done" in server.log


def test_reload_with_broken_config_keeps_serving(procmaster, tmp_path):
    port = free_port()
    ini = write_ini(
        tmp_path / "site.ini", f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\n"
    )
    server = procmaster("--ini", ini, wait_port=port)
    ini.write_text(ini.read_text() + "processes = two\n")
    server.signal(signal.SIGHUP)
    server.wait_log("reload (SIGHUP) aborted")
    assert http_get(port, "/")[0] == 200
    (tmp_path / "brokenmod.py").write_text("raise ImportError('new code is broken')\n")
    ini.write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = brokenmod\nchdir = {tmp_path}\n"
    )
    server.signal(signal.SIGHUP)
    server.wait_log("reload (SIGHUP) aborted", count=2)
    assert "new code is broken" in server.log
    assert http_get(port, "/")[2] == b"Hello, World!"


def test_lazy_apps_load_in_workers(procmaster):
    port = free_port()
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--lazy-apps",
        "--processes",
        "2",
        wait_port=port,
    )
    assert http_get(port, "/")[0] == 200
    assert "lazy apps" in server.log


def test_pidfile_and_vacuum(procmaster, tmp_path):
    port = free_port()
    pidfile = tmp_path / "site.pid"
    sock = tmp_path / "site.sock"
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--http-socket",
        sock,
        "--module",
        "testapp",
        "--pidfile",
        pidfile,
        "--vacuum",
        wait_port=port,
    )
    assert pidfile.read_text().strip() == str(server.pid)
    assert sock.exists()
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert not pidfile.exists() and not sock.exists()


def test_unix_http_socket(procmaster, tmp_path):
    from support import raw_request

    sock = tmp_path / "http.sock"
    procmaster("--http-socket", sock, "--module", "testapp", wait_unix=str(sock))
    raw = raw_request(0, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", unix=str(sock))
    assert raw.startswith(b"HTTP/1.1 200 OK") and raw.endswith(b"Hello, World!")


def test_log_format_logto_and_disable_logging(procmaster, tmp_path):
    port = free_port()
    logfile = tmp_path / "req.log"
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--logto",
        logfile,
        "--log-format",
        "%(method) %(uri) %(status) %(size) %(addr) %(proto)",
        "--log-date",
        wait_port=port,
    )
    http_get(port, "/?q=1")
    wait_for(
        lambda: logfile.exists() and "GET /?q=1 200 13 127.0.0.1 HTTP/1.1" in logfile.read_text(),
        5,
        what="custom log line",
    )
    port2 = free_port()
    quiet = procmaster(
        "--http-socket",
        f"127.0.0.1:{port2}",
        "--module",
        "testapp",
        "--disable-logging",
        wait_port=port2,
    )
    http_get(port2, "/?quiet=1")
    time.sleep(0.2)  # nothing to wait for: we check that a line does NOT appear
    assert "quiet=1" not in quiet.log


def test_console_script_and_python_m(tmp_path):
    exe = shutil.which("procmaster")
    if exe:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "procmaster" in out.stdout
    out = run_cli("--version")
    assert out.returncode == 0 and "procmaster" in out.stdout
    out = run_cli("--help")
    assert out.returncode == 0 and "--http-socket" in out.stdout and "--processes" in out.stdout


def test_process_names_with_prefix(procmaster):
    port = free_port()
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--processes",
        "2",
        "--auto-procname",
        "--procname-prefix-spaced",
        "mysite",
        wait_port=port,
    )
    assert psutil.Process(server.pid).name() == "mysite master"

    def names() -> list[str]:
        return sorted(psutil.Process(p).name() for p in server.worker_pids())

    # the port is bound before the workers are forked: wait for both
    wait_for(lambda: names() == ["mysite worker 1", "mysite worker 2"], 30, what=names)


def test_limit_post_answers_413_to_curl(procmaster, tmp_path):
    port = free_port()
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--limit-post",
        "1048576",
        wait_port=port,
    )
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(5 << 20))
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data-binary",
            f"@{blob}",
            f"http://127.0.0.1:{port}/echo",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout == "413"
    assert http_get(port, "/echo", "POST", b"small")[2] == b"small"


def test_post_buffering_spools_big_bodies(procmaster):
    port = free_port()
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "testapp",
        "--post-buffering",
        "8192",
        wait_port=port,
    )
    payload = os.urandom(100_000)
    assert http_get(port, "/echo", "POST", payload)[2] == payload


def test_real_django_project(procmaster, tmp_path):
    pytest.importorskip("django")
    import json

    port = free_port()
    ini = write_ini(
        tmp_path / "django.ini",
        f"""[uwsgi]
http-socket = 127.0.0.1:{port}
chdir = {APPS / "djsite"}
module = djsite.wsgi:application
env = DJANGO_SETTINGS_MODULE=djsite.settings
processes = 2
mount = /sub=djsite.wsgi:application
""",
    )
    procmaster("--ini", ini, wait_port=port)
    assert http_get(port, "/")[2] == b"Hello from Django!\n"
    payload = os.urandom(200_000)
    assert (
        http_get(port, "/echo", "POST", payload, {"Content-Type": "application/octet-stream"})[2]
        == payload
    )
    info = json.loads(http_get(port, "/info?a=1", headers={"Host": "example.org"})[2])
    assert info == {
        "path": "/info",
        "script_name": "",
        "query": {"a": "1"},
        "host": "example.org",
        "secure": False,
    }
    sub = json.loads(http_get(port, "/sub/info")[2])
    assert sub["path"] == "/sub/info" and sub["script_name"] == "/sub"
    status, headers, body = http_get(port, "/stream")
    assert status == 200 and body == b"part 0\npart 1\npart 2\n"
