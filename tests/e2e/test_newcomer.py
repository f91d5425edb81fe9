"""The first hour, end to end: ``--check`` says "would not start" exactly when the
start fails, with the start's own message (a missing ``chdir``, ``virtualenv``,
log directory, module); a bare ``procmaster`` points to ``--help``; and
``procmaster --reload PIDFILE --wait`` reports a reload's outcome (0 when the new
code serves, 1 with the reason when a syntax error aborted it and the old workers
go on serving)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from support import ROOT, free_port, http_get, wait_for

from procmaster.check import import_problems
from procmaster.config import load

ENV = dict(os.environ, PYTHONPATH=str(ROOT))
ENV.pop("NOTIFY_SOCKET", None)


def run(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "procmaster", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def site(tmp_path: Path, body: str) -> Path:
    (tmp_path / "app.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'v1']\n"
    )
    ini = tmp_path / "site.ini"
    ini.write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:{free_port()}\nmaster = true\n{body}")
    return ini


CASES = {
    "chdir": ("chdir = %d/nope\nmodule = app\n", "option 'chdir': cannot enter"),
    "virtualenv": ("chdir = %d\nvirtualenv = %dvenv\nmodule = app\n", "option 'virtualenv'"),
    "logto": ("chdir = %d\nmodule = app\nlogto = %dlogs/site.log\n", "option 'logto': cannot"),
    "daemonize": ("chdir = %d\nmodule = app\ndaemonize = %dlogs/d.log\n", "option 'daemonize'"),
    "module": ("chdir = %d\nmodule = no_such_site\n", "no module named 'no_such_site'"),
    "wsgi-file": ("chdir = %d\nwsgi-file = site.wsgi\n", "wsgi-file"),
    "uid": ("chdir = %d\nmodule = app\nuid = no_such_user_x\n", "no such user 'no_such_user_x'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_fails_when_the_start_fails_with_the_same_message(tmp_path, case):
    body, words = CASES[case]
    ini = site(tmp_path, body)
    check = run("--check", str(ini), cwd=tmp_path)
    assert check.returncode == 1, check.stdout + check.stderr
    report = check.stdout.split("procmaster would NOT start:\n", 1)[1]
    first = report.splitlines()[0].strip()
    assert words in first, report
    assert "Traceback" not in report, report

    start = run(str(ini), cwd=tmp_path, timeout=60)  # never binds for long: it fails
    out = start.stdout + start.stderr
    assert start.returncode != 0, out
    assert first in out, f"--check said {first!r}; the start said:\n{out}"
    assert "Traceback" not in out and "internal error" not in out, out


def test_check_passes_and_imports_in_a_child(tmp_path):
    (tmp_path / "marker_app.py").write_text(
        "import os\nopen(os.environ['MARK'], 'a').write(os.getcwd() + '\\n')\n"
        "def application(e, s):\n    s('200 OK', [])\n    return [b'']\n"
    )
    mark = tmp_path / "imports.txt"
    ini = site(tmp_path, f"chdir = %d\nmodule = marker_app\nenv = MARK={mark}\n")
    check = run("--check", str(ini), cwd="/")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "procmaster would start with this configuration (the app imports)." in check.stdout
    # imported once, in the INI's chdir, with the INI's env (as a worker would)
    assert mark.read_text() == f"{tmp_path}\n"
    fast = run("--check", str(ini), "--check-no-import", cwd="/")
    assert fast.returncode == 0 and mark.read_text() == f"{tmp_path}\n"
    assert "procmaster would start with this configuration." in fast.stdout


def test_bare_procmaster_points_to_help(tmp_path):
    env = {k: v for k, v in ENV.items() if not k.startswith("UWSGI_")}
    proc = subprocess.run(
        [sys.executable, "-m", "procmaster"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "see procmaster --help" in proc.stderr, proc.stderr


def test_reload_wait_reports_done_and_aborted(procmaster, tmp_path):
    port = free_port()
    (tmp_path / "app.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'v1']\n"
    )
    pidfile = tmp_path / "site.pid"
    ini = tmp_path / "site.ini"
    ini.write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmaster = true\nprocesses = 2\n"
        f"chdir = %d\nmodule = app\npidfile = {pidfile}\n"
    )
    server = procmaster(str(ini), wait_port=port)
    assert http_get(port)[2] == b"v1"

    app = (tmp_path / "app.py").read_text()
    (tmp_path / "app.py").write_text(app.replace("v1", "v2"))
    good = run("--reload", str(pidfile), "--wait", cwd=tmp_path, timeout=120)
    assert good.returncode == 0, good.stdout + good.stderr + server.log
    assert f"reload of master pid {server.pid} done" in good.stdout
    assert http_get(port)[2] == b"v2"  # the reload is done: only new workers accept
    # (the old ones may still be finishing their requests: the two left are v2's)
    wait_for(lambda: len(server.worker_pids()) == 2, 60, what="the old workers gone")
    serving = sorted(server.worker_pids())

    (tmp_path / "app.py").write_text(app.replace("[b'v1']", "[b'v3'"))  # a syntax error
    bad = run("--reload", str(pidfile), "--wait", cwd=tmp_path, timeout=120)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "aborted (SIGHUP): the new configuration or app does not load" in bad.stderr
    assert "SyntaxError" in bad.stderr and "app.py" in bad.stderr, bad.stderr
    assert "the old workers go on serving" in bad.stderr
    assert http_get(port)[2] == b"v2"
    assert sorted(server.worker_pids()) == serving

    # no status file, no reload outcome: a clear error after the timeout
    os.unlink(f"{pidfile}.reload")
    (tmp_path / "other.pid").write_text(f"{server.pid}\n")
    t0 = time.monotonic()
    lost = run(
        "--reload", str(tmp_path / "other.pid"), "--wait", "--wait-timeout", "1", cwd=tmp_path
    )
    assert lost.returncode == 1 and "no outcome of the reload within 1s" in lost.stderr
    assert time.monotonic() - t0 < 30
    # that reload did happen (and was aborted too: the syntax error is still there)
    wait_for(lambda: server.log.count("reload (SIGHUP) aborted") == 2, 30, what="3rd reload")


def test_wait_needs_reload(tmp_path):
    proc = run("--wait", cwd=tmp_path)
    assert proc.returncode == 1 and "--wait goes with --reload PIDFILE" in proc.stderr


# -- a virtualenv install under systemd --------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "extra"),
    [("procmaster@.service", "procmaster@.socket"), ("procmaster-emperor.service", None)],
)
def test_systemd_units_with_procmaster_in_a_virtualenv(tmp_path, unit, extra):
    """In a venv install /usr/local/bin/procmaster does not exist: the unit alone
    fails `systemd-analyze verify`; with the shipped drop-in (its path set to the
    venv) it passes, and the command it runs is the venv's procmaster."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian package 'systemd')")
    if os.path.exists("/usr/local/bin/procmaster"):
        pytest.skip("procmaster is installed in /usr/local/bin: no virtualenv case here")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    exe = venv / "bin" / "procmaster"  # what pip's console script would be
    exe.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {venv}/bin/python -m procmaster "$@"\n')
    exe.chmod(0o755)
    assert subprocess.run([str(exe), "--version"], capture_output=True).returncode == 0
    units = tmp_path / "units"
    units.mkdir()
    shutil.copy(ROOT / "systemd" / unit, units)
    names = [unit.replace("@.", "@site.")]
    if extra:
        shutil.copy(ROOT / "systemd" / extra, units)
        names.append(extra.replace("@.", "@site."))

    def verify() -> subprocess.CompletedProcess:
        return subprocess.run(
            [tool, "verify", *names], cwd=units, capture_output=True, text=True, timeout=60
        )

    bare = verify()
    if "/usr/local/bin/procmaster" not in bare.stdout + bare.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {(bare.stdout + bare.stderr)[:300]}")
    assert bare.returncode != 0  # the problem the drop-in solves

    dropin = ROOT / "systemd" / "venv" / f"{unit}.d" / "venv.conf"
    (units / f"{unit}.d").mkdir()
    text = dropin.read_text().replace("/opt/procmaster/venv", str(venv))
    (units / f"{unit}.d" / "venv.conf").write_text(text)
    fixed = verify()
    out = fixed.stdout + fixed.stderr
    assert fixed.returncode == 0 and [ln for ln in out.splitlines() if "procmaster" in ln] == [], (
        out
    )
    start = [ln for ln in text.splitlines() if ln.startswith("ExecStart=/")][0]
    service = (ROOT / "systemd" / unit).read_text()
    shipped = [ln for ln in service.splitlines() if ln.startswith("ExecStart=")][0]
    # the same command line as the unit's, from the venv
    assert start.replace(str(venv / "bin"), "/usr/local/bin") == shipped


def test_import_check_deadline_and_exit_at_import(tmp_path, monkeypatch):
    """An app whose import hangs is reported after the deadline (the child is
    killed); one that calls sys.exit() at import time is reported, not obeyed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hangs.py").write_text("import time\ntime.sleep(600)\n")
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    for module, words in (("hangs", "did not finish within 1s"), ("exits", "SystemExit: 3")):
        ini = tmp_path / f"{module}.ini"
        ini.write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:1\nchdir = %d\nmodule = {module}\n")
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        t0 = time.monotonic()
        problems = import_problems(load(["--ini", str(ini)]), timeout=1)
        assert len(problems) == 1 and words in problems[0], problems
        assert time.monotonic() - t0 < 30
        assert {p.pid for p in psutil.Process().children(recursive=True)} <= before  # reaped
    assert os.getcwd() == str(tmp_path)  # the chdir happened in the child only


def test_reload_wait_names_a_bad_new_config(procmaster, tmp_path):
    """The reload's reason carries the new INI's error (file, line, option), and a
    new log directory that does not exist, as the start would say it."""
    port = free_port()
    ini = site(tmp_path, f"chdir = %d\nmodule = app\npidfile = {tmp_path}/site.pid\n")
    text = ini.read_text()
    text = re.sub(r"http-socket = \S+", f"http-socket = 127.0.0.1:{port}", text)
    ini.write_text(text)
    server = procmaster(str(ini), wait_port=port)
    ini.write_text(text + "processes = lots\n")
    bad = run("--reload", f"{tmp_path}/site.pid", "--wait", cwd=tmp_path, timeout=120)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"{ini}:7: option 'processes': expected an integer, got 'lots'" in bad.stderr
    ini.write_text(text + "logto = %dnodir/site.log\n")
    bad = run("--reload", f"{tmp_path}/site.pid", "--wait", cwd=tmp_path, timeout=120)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"option 'logto': cannot create log file '{tmp_path}/nodir/site.log'" in bad.stderr
    assert http_get(port)[2] == b"v1" and server.proc.poll() is None
