"""The set-ups of configs/flask-dev and configs/deploy, end to end, with the real
programs: nginx in front, procmaster behind (the shipped configs copied to a tmp
dir, with free ports instead of the fixed ones), supervisord keeping it up.
Everything started is stopped by PID.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from support import ROOT, Load, free_port, http_get, wait_for
from support.frontends import Nginx

pytestmark = pytest.mark.slow

CONFIGS = ROOT / "configs"


def copy_config(name: str, dest: Path, replace: dict[str, str]) -> Path:
    """configs/NAME copied to ``dest`` with each ``replace`` key swapped in every file."""
    shutil.copytree(CONFIGS / name, dest, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    for path in dest.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for old, new in replace.items():
                text = text.replace(old, new)
            path.write_text(text)
    return dest


def server_block(path: Path) -> str:
    """The shipped server block, listening on the Nginx helper's port."""
    return path.read_text().replace("listen 127.0.0.1:8080;", "listen 127.0.0.1:{port};")


def get_text(port: int, path: str) -> tuple[int, str]:
    status, _, body = http_get(port, path, timeout=10)
    return status, body.decode("utf-8", "replace")


# -- development: nginx -> procmaster, Flask debugger, reloads, the INI's virtualenv ----


def make_venv(path: Path) -> None:
    """A virtualenv holding a package that procmaster's own environment lacks."""
    assert importlib.util.find_spec("site_extras") is None
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    package = path / "lib" / version / "site-packages" / "site_extras"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('WORD = "served from the virtualenv"\n')


def test_flask_dev_behind_nginx(procmaster, tmp_path):
    pytest.importorskip("flask")
    port = free_port()
    site = copy_config("flask-dev", tmp_path / "site", {"127.0.0.1:5000": f"127.0.0.1:{port}"})
    make_venv(site / "venv")
    server = procmaster("--ini", site / "dev.ini", wait_log="procmaster master pid")
    with Nginx(tmp_path / "nginx", server_block(site / "nginx.conf")) as ngx:
        status, page = wait_for(lambda: (r := get_text(ngx.port, "/"))[0] == 200 and r, 10)
        assert "<h1>Hello from the development site</h1>" in page

        # a raised exception: the Werkzeug debugger's page with the traceback
        status, page = get_text(ngx.port, "/boom")
        assert status == 500
        assert (
            "Traceback" in page and "RuntimeError: boom: the debugger shows this traceback" in page
        )
        assert "__debugger__" in page and "Werkzeug" in page  # the interactive debugger
        assert "DebuggedApplication" not in server.log  # one worker: no note

        # editing site_module.py: the new answer within 2 s, from the venv's package
        module = site / "site_module.py"
        module.write_text(
            module.read_text().replace(
                'GREETING = "Hello from the development site"',
                'import site_extras\n\nGREETING = "Edited: " + site_extras.WORD',
            )
        )
        t0 = time.monotonic()
        wait_for(
            lambda: get_text(ngx.port, "/answer") == (200, "Edited: served from the virtualenv"),
            30.0,  # py-autoreload looks once a second; a loaded machine is slower
            what=f"the edited module to be served:\n{server.log[-3000:]}",
        )
        # (the wait's deadline is the bound: the time it takes depends on the machine's
        # load, since the reload first imports the new code in a fresh interpreter)
        edited_after = time.monotonic() - t0

        # editing the template changes the page
        template = site / "templates" / "index.html"
        template.write_text(template.read_text().replace("<h1>", "<h1>Template edited: "))
        t0 = time.monotonic()
        wait_for(
            lambda: "<h1>Template edited: Edited: served from" in get_text(ngx.port, "/")[1],
            30.0,
            what="the edited template",
        )
        print(
            f"module edit served after {edited_after:.2f}s, template edit after "
            f"{time.monotonic() - t0:.2f}s"
        )
    assert "site_extras" not in sys.modules

    # more than one worker with the debugger wrapped: said once at start-up
    server.kill_all()
    other = procmaster(
        "--ini", site / "dev.ini", "--processes", "2", wait_log="procmaster master pid"
    )
    assert other.log.count("wrapped in Werkzeug's DebuggedApplication and 2 worker(s)") == 1


# -- production: supervisord, nginx, deploy.sh + the quoted reload_me.txt --------------


def git(*args: str, cwd: Path) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


class Supervisord:
    """``supervisord -n -c CONF``, stopped by PID with every process it started."""

    def __init__(self, conf: Path, env: dict) -> None:
        # the test extra installs supervisor into this Python: run it from there
        # (found whatever PATH holds; missing, the test fails instead of skipping)
        self.log = open(conf.parent / "supervisord.out", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.known = {self.proc.pid}

    def remember(self) -> None:
        try:
            self.known.update(p.pid for p in psutil.Process(self.proc.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            pass

    def stop(self) -> None:
        self.remember()
        self.proc.send_signal(signal.SIGTERM)  # supervisord stops its programs first
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        for pid in self.known:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.wait(5)
        self.log.close()


def test_deploy_under_supervisord_behind_nginx(tmp_path):
    """The README's production commands: setup.sh lays out DEPLOY_DIR, supervisord
    runs procmaster, a new version is committed in dev/ and pushed, deploy.sh
    pulls, reloads and waits (exit 0, the new code served, no request failed); a
    version with a syntax error makes deploy.sh fail with the reason while the old
    workers go on serving."""
    port = free_port()
    conf = copy_config("deploy", tmp_path / "conf", {"127.0.0.1:3031": f"127.0.0.1:{port}"})
    deploy_dir = tmp_path / "srv"

    # "procmaster" on PATH runs this checkout's procmaster
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "procmaster"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m procmaster "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ)
    env.update(
        DEPLOY_DIR=str(deploy_dir),
        PATH=f"{bindir}{os.pathsep}{env['PATH']}",
        PYTHONPATH=str(ROOT),
        HOME=str(tmp_path),  # no global git identity: setup.sh gives dev/ one
    )
    env.pop("NOTIFY_SOCKET", None)
    setup = subprocess.run(
        [str(conf / "setup.sh")], env=env, capture_output=True, text=True, check=True
    )
    assert "is ready" in setup.stdout
    for part in ("origin.git", "app/.git", "dev/.git", "log", "run"):
        assert (deploy_dir / part).exists(), part
    # the checkout tracks origin: git pull needs no argument
    assert git("rev-parse", "--abbrev-ref", "@{u}", cwd=deploy_dir / "app").strip() == (
        "origin/main"
    )
    again = subprocess.run([str(conf / "setup.sh")], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr  # run twice: nothing is broken

    # --check on the production INI: the quotes are reported, the app imports
    check = subprocess.run(
        [sys.executable, "-m", "procmaster", "--check", str(conf / "production.ini")],
        env=dict(env, APP_DIR=str(deploy_dir / "app"), RUN_DIR=str(deploy_dir / "run")),
        capture_output=True,
        text=True,
    )
    assert "quotes removed from 'touch-reload' value" in check.stdout, check.stdout
    assert "can never be watched" not in check.stdout
    assert "procmaster would start with this configuration (the app imports)" in check.stdout

    def log() -> str:
        path = deploy_dir / "log" / "procmaster.log"
        return path.read_text() if path.exists() else ""

    def push(version: str, code: str | None = None) -> None:
        dev = deploy_dir / "dev"
        text = (dev / "wsgi.py").read_text()
        text = text.replace(text.split("VERSION = ")[1].split("\n")[0], f'"{version}"')
        (dev / "wsgi.py").write_text(code or text)
        subprocess.run(
            ["git", "commit", "-qam", f"version {version}"], cwd=dev, env=env, check=True
        )
        subprocess.run(["git", "push", "-q"], cwd=dev, env=env, check=True)

    def deploy() -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(conf / "deploy.sh")], env=env, capture_output=True, text=True, timeout=200
        )

    sup = Supervisord(conf / "supervisord.conf", env)
    try:
        try:
            wait_for(lambda: "procmaster master pid" in log(), 20, what="procmaster started")
        except AssertionError:
            print((conf / "supervisord.out").read_text(), log())
            raise
        with Nginx(tmp_path / "nginx", server_block(conf / "nginx.conf")) as ngx:
            wait_for(lambda: get_text(ngx.port, "/") == (200, "version 1\n"), 20, what="v1")
            sup.remember()
            assert "quotes removed from 'touch-reload' value" in log()

            ok = {b"version 1\n", b"version 2\n"}
            with Load(ngx.port, accept=lambda status, body: status == 200 and body in ok) as load:
                push("2")
                done = deploy()
                assert done.returncode == 0, done.stdout + done.stderr + log()
                assert "deployed" in done.stdout and "the new workers serve it" in done.stdout
                # deploy.sh returned: the reload is over, only version 2 answers
                assert get_text(ngx.port, "/") == (200, "version 2\n")
                load.more(200)
            assert load.failures == [], load.failures[:5]
            assert load.bodies == ok
            print(f"{load.count} requests through nginx during the deploy, none failed")

            pid = int((deploy_dir / "run" / "site.pid").read_text())

            def workers() -> list[int]:
                return sorted(p.pid for p in psutil.Process(pid).children())

            # the reload is over when the new workers serve; the old ones may still
            # be finishing their requests (graceful): the four left are version 2's
            wait_for(lambda: len(workers()) == 4, 60, what=f"the old workers gone: {workers()}")
            serving = workers()
            push("3", code="def application(environ, start_response:\n")  # a syntax error
            failed = deploy()
            assert failed.returncode == 1, failed.stdout + failed.stderr
            assert "FAILED" in failed.stderr and "SyntaxError" in failed.stderr, failed.stderr
            assert "the old workers go on serving" in failed.stderr
            assert get_text(ngx.port, "/") == (200, "version 2\n")
            assert workers() == serving
    finally:
        sup.stop()


def test_check_reports_the_quotes_and_a_path_that_can_never_be_watched(tmp_path):
    """The seed's own line: quotes removed with a warning, and the missing
    directory reported (without the app or sockets being touched)."""
    ini = tmp_path / "site.ini"
    ini.write_text(
        "[uwsgi]\nsocket = 127.0.0.1:3031\nmodule = wsgi:application\n"
        "touch-reload = '/opt/virtual_environments/application/reload_me.txt'\n"
        "fs-reload = %dtemplates\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "procmaster", "--check", str(ini)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
    ).stdout
    assert f"{ini}:4: quotes removed from 'touch-reload' value" in out
    assert "touch-reload = /opt/virtual_environments/application/reload_me.txt" in out
    assert (
        f"{ini}:4: option 'touch-reload': '/opt/virtual_environments/application/reload_me.txt'"
        " can never be watched: directory '/opt/virtual_environments/application' does not exist"
    ) in out
    # fs-reload on a directory that does not exist (yet): its parent exists, so it is fine
    assert out.count("can never be watched") == 1
