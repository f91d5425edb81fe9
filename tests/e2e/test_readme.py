"""The README's commands, run for real: a README example that stops working fails here.

Every command line of the README's code blocks is collected (a line starting with a
program, a path under configs/ or an environment assignment); each one is either
run by a test below, as the README gives it, or listed in ``NOT_HERE`` with the
reason it cannot run on a test machine (and which test covers it instead). A new
command in the README that is neither fails ``test_every_command_is_run_or_excused``.

The commands run in a copy of the repository, with two substitutions so that tests
can run side by side: the fixed ports of the configs and commands become free
ports (still on 127.0.0.1), and system paths (/run/procmaster, /tmp/site) become
directories of the test. "procmaster" on PATH runs the copy's procmaster, except
for the set-up command, which installs it with pip into a fresh virtualenv.
Everything started is stopped by PID.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from support import ROOT, free_port, http_get, wait_for

pytestmark = pytest.mark.slow

README = (ROOT / "README.md").read_text()
PROGRAMS = {
    "procmaster", "pip", "python", "curl", "supervisord", "supervisorctl", "systemctl",
    "systemd-analyze", "cp", "export", "echo", "git", "mkdir", "sed", "apache2", "nginx",
    "uwsgitop", "ln", "touch",
}  # fmt: skip


def code_blocks(text: str) -> list[list[str]]:
    """The README's indented code blocks (4 spaces after a blank line) and fences."""
    blocks: list[list[str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            blocks.append(lines[i + 1 : j])
            i = j + 1
            continue
        if line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i][4:])
                i += 1
            blocks.append([b for b in block if b.strip()])
            continue
        i += 1
    return blocks


def strip_comment(line: str) -> str:
    """A command without its trailing ``  # comment`` (two spaces or more before #)."""
    return re.split(r"\s{2,}# ", line, maxsplit=1)[0].strip()


def is_command(line: str) -> bool:
    first = line.split()[0]
    return (
        first in PROGRAMS
        or first.startswith("configs/")
        or bool(re.match(r"^[A-Z_]+=\S+$", first))
        and len(line.split()) > 1
    )


def readme_commands(text: str = README) -> list[str]:
    out = []
    for block in code_blocks(text):
        for line in block:
            if line.lstrip().startswith("#") or re.match(r"^[\w.-]+ = ", line):
                continue  # a comment, or an INI line
            if is_command(line):
                out.append(strip_comment(line))
    return out


NOT_HERE = {
    "pip install -q -e '.[test]' && python -m pytest -q": "it is the command that runs this "
    "test; .ci/run runs it (test_the_test_command_is_the_one_ci_runs)",
    "procmaster --emperor /etc/procmaster/vassals": "a host's /etc/procmaster; "
    "test_emperor.py runs the Emperor on directories of its own",
    'procmaster --emperor "/srv/*/deploy/site.ini"': "a host's /srv; test_emperor.py runs globs",
    "procmaster --ini emperor.ini": "emperor.ini stands for your file; test_emperor.py",
    "cp systemd/procmaster@.* /etc/systemd/system/ && systemctl daemon-reload": "installs "
    "into the host's systemd (PID 1 here is not systemd); test_ops.py::"
    "test_systemd_analyze_verify verifies the units",
    "systemctl enable --now procmaster@site.socket procmaster@site.service": "needs systemd "
    "as PID 1",
    "systemctl reload procmaster@site": "needs systemd as PID 1; SIGHUP is tested in "
    "test_reload.py",
    "systemd-analyze verify /etc/systemd/system/procmaster@site.service": "the host's "
    "/etc/systemd; test_ops.py::test_systemd_analyze_verify runs it on the shipped units",
    "mkdir -p /etc/systemd/system/procmaster@.service.d": "the host's /etc/systemd; "
    "test_newcomer.py::test_systemd_units_with_procmaster_in_a_virtualenv verifies the "
    "drop-in",
    'sed "s|/opt/procmaster/venv|$VENV|" systemd/venv/procmaster@.service.d/venv.conf > '
    "/etc/systemd/system/procmaster@.service.d/venv.conf": "the host's /etc/systemd; "
    "test_newcomer.py::test_systemd_units_with_procmaster_in_a_virtualenv",
    "systemctl daemon-reload": "needs systemd as PID 1",
    "supervisord -c configs/supervisord.conf": "its paths are a host's (/run/procmaster, "
    "/etc/procmaster/site.ini); test_ops.py::test_supervisord_shipped_config runs it with "
    "paths of its own",
    "supervisorctl -c configs/supervisord.conf status site": "see supervisord -c "
    "configs/supervisord.conf",
    "supervisorctl -c configs/supervisord.conf signal HUP site": "see supervisord -c "
    "configs/supervisord.conf",
    "supervisorctl -c configs/supervisord.conf restart site": "see supervisord -c "
    "configs/supervisord.conf",
    "python -m venv configs/flask-dev/venv && configs/flask-dev/venv/bin/pip install flask": "downloads Flask from the package index; test_setups.py::test_flask_dev_behind_nginx "
    "builds that virtualenv offline and runs the set-up behind nginx",
    "procmaster --ini configs/flask-dev/dev.ini": "needs the virtualenv above; "
    "test_setups.py::test_flask_dev_behind_nginx",
    "curl http://127.0.0.1:8080/": "through an nginx or Apache configured by hand; "
    "test_setups.py and test_apache.py run them",
    "curl http://127.0.0.1:8080/boom": "through nginx; test_setups.py::test_flask_dev_behind_nginx",
    "PM_APACHE=$PWD/configs/apache apache2 -f $PWD/configs/apache/httpd.conf -DFOREGROUND "
    "-Dscgi": "test_apache.py runs Apache with these files on free ports",
}

USING = [
    "procmaster --ini site.ini",
    "procmaster --ini site.ini:production",
    "procmaster site.ini",
    "procmaster --http-socket :8000 --module app:app --processes 2 --master",
    "procmaster --check site.ini",
    "procmaster --help",
]
CONTROL = [
    "procmaster --reload /run/procmaster/site.pid",
    "procmaster --reload /run/procmaster/site.pid --wait",
    "procmaster --chain-reload /run/procmaster/site.pid",
    "echo r > /run/procmaster/site.fifo",
    "procmaster --stop /run/procmaster/site.pid",
]
SET_UP = "pip install . && procmaster --ini configs/hello.ini"
APACHE = "procmaster --ini configs/apache/site.ini"


def production_block() -> list[str]:
    """The commands of the production set-up, in the README's order."""
    start = README.index("### Production:")
    end = README.index("###", start + 5)
    return readme_commands(README[start:end])


RUN = [SET_UP, *USING, *CONTROL, APACHE]


def test_every_command_is_run_or_excused():
    commands = readme_commands()
    assert commands, "no command found in README.md"
    production = production_block()
    assert len(production) >= 6, production
    unknown = [c for c in commands if c not in NOT_HERE and c not in RUN and c not in production]
    assert unknown == [], "README commands neither run by a test nor excused in NOT_HERE"
    gone = [c for c in [*NOT_HERE, *RUN] if c not in commands]
    assert gone == [], "commands this test knows that the README no longer has"


def test_the_test_command_is_the_one_ci_runs():
    """The README's second set-up command is .ci/run's, word for word."""
    setup = README[README.index("## Set up") : README.index("## Using it")]
    commands = [strip_comment(line[4:]) for line in setup.splitlines() if line.startswith("    ")]
    assert commands == [SET_UP, "pip install -q -e '.[test]' && python -m pytest -q"]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci


# -- running them -----------------------------------------------------------------------------


class Sandbox:
    """A copy of the repository with free ports, and processes killed by PID."""

    PORTS = ("8000", "8001", "3031", "3030", "3032", "3033", "5000", "9191")

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.repo = tmp / "repo"
        shutil.copytree(
            ROOT,
            self.repo,
            ignore=shutil.ignore_patterns(
                ".git", "venv", ".venv", "__pycache__", ".pytest_cache", "*.egg-info", "build"
            ),
        )
        self.ports = {p: str(free_port()) for p in self.PORTS}
        for path in (self.repo / "configs").rglob("*"):
            if path.is_file() and path.suffix in (".ini", ".conf"):
                path.write_text(self.ported(path.read_text()))
        bindir = tmp / "bin"
        bindir.mkdir()
        wrapper = bindir / "procmaster"
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m procmaster "$@"\n')
        wrapper.chmod(0o755)
        self.env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
        self.env["PYTHONPATH"] = str(self.repo)
        self.env["HOME"] = str(tmp)  # git: no global identity, as on a new machine
        self.env.pop("NOTIFY_SOCKET", None)
        self.procs: list[subprocess.Popen] = []
        self.known: set[int] = set()

    def ported(self, text: str) -> str:
        for old, new in self.ports.items():
            text = re.sub(rf"(?<=[:\s=]){old}\b", new, text)
        return text.replace("--http-socket :", "--http-socket 127.0.0.1:")

    def run(self, command: str, cwd: Path | None = None, timeout: float = 120):
        return subprocess.run(
            ["sh", "-c", self.ported(command)],
            cwd=cwd or self.repo,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def start(self, command: str, cwd: Path | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"proc-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(
            ["sh", "-c", "exec " + self.ported(command)],
            cwd=cwd or self.repo,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, proc: subprocess.Popen) -> str:
        return (self.tmp / f"proc-{self.procs.index(proc)}.log").read_text(errors="replace")

    def serves(self, proc: subprocess.Popen, port: str, path: str = "/") -> None:
        self.remember()

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"exited {proc.returncode}:\n{self.log(proc)}")
            try:
                return http_get(int(self.ports.get(port, port)), path, timeout=5)[0] == 200
            except OSError:
                return False

        wait_for(up, 60, what=f"port {port} serving:\n{self.log(proc)}")
        self.remember()

    def remember(self) -> None:
        for proc in self.procs:
            self.known.add(proc.pid)
            try:
                self.known.update(c.pid for c in psutil.Process(proc.pid).children(True))
            except psutil.NoSuchProcess:
                pass

    def stop(self, proc: subprocess.Popen) -> None:
        self.remember()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        self.kill_known()

    def kill_known(self) -> None:
        for pid in sorted(self.known):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        self.known.clear()


@pytest.fixture
def sandbox(tmp_path):
    box = Sandbox(tmp_path)
    yield box
    box.remember()
    box.kill_known()


def test_set_up_installs_and_serves_the_example_site(sandbox):
    """The first set-up command, in a fresh virtualenv: pip install . then the site."""
    assert SET_UP in readme_commands()
    venv = sandbox.tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    sandbox.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"
    sandbox.env.pop("PYTHONPATH")
    install, _, serve = SET_UP.partition(" && ")
    done = sandbox.run(install, timeout=600)
    if done.returncode != 0 and re.search(
        r"No matching distribution|Could not find", done.stdout + done.stderr
    ):
        pytest.skip(f"pip cannot reach a package index here: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (venv / "bin" / "procmaster").exists()
    proc = sandbox.start(serve)
    sandbox.serves(proc, "8000")
    assert http_get(int(sandbox.ports["8000"]))[2]
    sandbox.stop(proc)
    assert proc.returncode == 0


def test_using_it(sandbox):
    """`Using it`: site.ini stands for your file: here configs/hello.ini with a
    [production] section, and an app.py with ``app``."""
    commands = readme_commands()
    site = sandbox.tmp / "site"
    site.mkdir()
    hello = (
        (sandbox.repo / "configs" / "hello.ini")
        .read_text()
        .replace("%d", str(sandbox.repo / "configs") + "/")
    )
    (site / "site.ini").write_text(hello + "\n[production]\n" + hello.split("[uwsgi]\n", 1)[1])
    (site / "app.py").write_text("from hello import application as app\n")
    sandbox.env["PYTHONPATH"] += os.pathsep + str(sandbox.repo / "configs")
    for command in USING:
        assert command in commands, command
        if command.startswith("procmaster --check") or command == "procmaster --help":
            done = sandbox.run(command, cwd=site)
            assert done.returncode == 0, done.stdout + done.stderr
            assert "would start" in done.stdout if "check" in command else "--ini" in done.stdout
            continue
        proc = sandbox.start(command, cwd=site)
        sandbox.serves(proc, "8000")
        sandbox.stop(proc)
        assert proc.returncode == 0, sandbox.log(proc)


def test_control_from_the_shell(sandbox):
    """`Control from the shell`: the README's INI lines and commands, /run/procmaster
    being a directory of the test."""
    run_dir = sandbox.tmp / "run"
    run_dir.mkdir()
    start = README.index("### Control from the shell")
    ini_lines = [
        line.split(";")[0].strip()
        for line in README[start:].splitlines()[1:8]
        if " = " in line and line.startswith("    ")
    ]
    assert ini_lines == [
        "pidfile = /run/procmaster/site.pid",
        "vacuum = true",
        "master-fifo = /run/procmaster/site.fifo",
    ]
    ini = sandbox.tmp / "site.ini"
    hello = (sandbox.repo / "configs" / "hello.ini").read_text()
    hello = hello.replace("%d", str(sandbox.repo / "configs") + "/")
    ini.write_text(hello + "\n".join(ini_lines).replace("/run/procmaster", str(run_dir)) + "\n")
    proc = sandbox.start(f"procmaster --ini {ini}")
    sandbox.serves(proc, "8000")
    wait_for(lambda: (run_dir / "site.pid").exists() and (run_dir / "site.fifo").exists(), 20)
    commands = readme_commands()
    for command in CONTROL:
        assert command in commands, command
        local = command.replace("/run/procmaster", str(run_dir))
        if command.startswith("echo"):
            before = sandbox.log(proc).count("master-fifo: 'r'")
            done = sandbox.run(local)
            assert done.returncode == 0, done.stderr
            wait_for(lambda n=before: sandbox.log(proc).count("master-fifo: 'r'") > n, 20)
            wait_for(lambda: sandbox.log(proc).count(" done in ") >= 4, 60, what="4 reloads")
            continue
        done = sandbox.run(local)
        assert done.returncode == 0, done.stdout + done.stderr + sandbox.log(proc)
        if "--wait" in command:
            assert "done" in done.stdout
        if "--stop" in command:
            proc.wait(60)
            assert proc.returncode == 0
            assert not (run_dir / "site.pid").exists()  # vacuum
        else:
            sandbox.serves(proc, "8000")
    sandbox.stop(proc)


def test_production_set_up_verbatim(sandbox):
    """`Production`: the commands as the README gives them (DEPLOY_DIR in the test's
    directory), one after the other; supervisord is stopped by its pid at the end."""
    commands = production_block()
    deploy_dir = sandbox.tmp / "site"
    export = [c for c in commands if c.startswith("export DEPLOY_DIR=")]
    assert export == ["export DEPLOY_DIR=/tmp/site"]
    sandbox.env["DEPLOY_DIR"] = str(deploy_dir)
    supervisord_pid = deploy_dir / "run" / "supervisord.pid"
    try:
        for command in commands[1:]:
            done = sandbox.run(command)
            out = done.stdout + done.stderr
            assert done.returncode == 0, f"{command}:\n{out}"
            if command.startswith("supervisord "):
                wait_for(supervisord_pid.exists, 20, what="supervisord's pidfile")
                sandbox.known.add(int(supervisord_pid.read_text()))
            if " status site" in command and "RUNNING" not in out:
                # the README's comment says RUNNING: it is, once startsecs passed
                wait_for(lambda c=command: "RUNNING" in sandbox.run(c).stdout, 30, what=out)
            if command.endswith("deploy.sh"):
                assert "the new workers serve it" in out, out
                log = (deploy_dir / "log" / "procmaster.log").read_text()
                assert "reload (SIGHUP) done" in log
            if command.endswith(" shutdown"):
                wait_for(lambda: not supervisord_pid.exists(), 60, what="supervisord stopped")
    finally:
        if supervisord_pid.exists():
            pid = int(supervisord_pid.read_text())
            try:
                sandbox.known.update(c.pid for c in psutil.Process(pid).children(True))
            except psutil.NoSuchProcess:
                pass


def test_apache_site_ini_starts(sandbox):
    """The Apache set-up's procmaster command (Apache itself: test_apache.py)."""
    assert APACHE in readme_commands()
    proc = sandbox.start(APACHE)
    sandbox.remember()

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(sandbox.log(proc))
        have = {
            c.laddr.port
            for c in psutil.Process(proc.pid).net_connections("tcp")
            if c.status == "LISTEN"
        }
        return {int(sandbox.ports[p]) for p in ("3030", "3032", "3033")} <= have

    wait_for(listening, 60, what=f"the three sockets:\n{sandbox.log(proc)}")
    sandbox.stop(proc)
