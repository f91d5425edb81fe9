"""What ``--check`` finds without starting anything: the paths the start would refuse
(``chdir``, ``virtualenv``, ``wsgi-file``, the log files), the message for a module
that is not there, the reload outcome beside the pidfile, and the planner's reports."""

from __future__ import annotations

import os
import sys

import pytest
from test_reload_planner import FakeOps

from procmaster.app import AppLoadError, load_apps, path_problems, prepare_process
from procmaster.config import load
from procmaster.ipc import RELOAD_ABORTED, RELOAD_DONE, ReloadStatus, reload_status_path
from procmaster.logs.files import log_problems
from procmaster.logs.files import logger_path as _logger_path
from procmaster.master.reload import ReloadKind, ReloadPlanner, ReloadRequest


def cfg_of(tmp_path, body: str):
    ini = tmp_path / "site.ini"
    ini.write_text("[uwsgi]\nhttp-socket = 127.0.0.1:8000\n" + body)
    return load(["--ini", str(ini)], environ={}), ini


def test_chdir_that_does_not_exist_is_the_start_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg, ini = cfg_of(tmp_path, f"module = app\nchdir = {tmp_path}/nope\nvirtualenv = venv\n")
    problems = path_problems(cfg)
    # only chdir: the virtualenv is relative to a directory that is not there
    assert problems == [
        f"{ini}:4: option 'chdir': cannot enter '{tmp_path}/nope': No such file or directory"
    ]
    with pytest.raises(AppLoadError) as info:
        prepare_process(cfg)  # the start says the same
    assert str(info.value) == problems[0]


def test_virtualenv_relative_to_chdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "site").mkdir()
    cfg, ini = cfg_of(tmp_path, "module = app\nchdir = site\nvirtualenv = venv\n")
    assert path_problems(cfg) == [
        f"{ini}:5: option 'virtualenv': '{tmp_path}/site/venv' does not exist "
        f"(python -m venv {tmp_path}/site/venv creates it)"
    ]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (tmp_path / "site" / "venv" / "lib" / version / "site-packages").mkdir(parents=True)
    assert path_problems(cfg) == []


def test_wsgi_file_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg, ini = cfg_of(tmp_path, "wsgi-file = site.wsgi\n")
    assert path_problems(cfg) == [f"{ini}:3: wsgi-file '{tmp_path}/site.wsgi' does not exist"]


def test_log_files_whose_directory_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg, ini = cfg_of(
        tmp_path,
        "module = app\nlogto = nodir/site.log\ndaemonize = /nonexistent/d.log\n"
        f"req-logger = file:{tmp_path}/ok.log\nlogger = main file:logfile=/nowhere/x.log,maxsize=9\n",
    )
    assert log_problems(cfg) == [
        f"{ini}:4: option 'logto': cannot create log file 'nodir/site.log': directory "
        f"'{tmp_path}/nodir' does not exist",
        f"{ini}:5: option 'daemonize': cannot create log file '/nonexistent/d.log': "
        "directory '/nonexistent' does not exist",
        f"{ini}:7: option 'logger': cannot create log file '/nowhere/x.log': directory "
        "'/nowhere' does not exist",
    ]
    (tmp_path / "nodir").mkdir()
    (tmp_path / "dir.log").mkdir()
    cfg, ini = cfg_of(tmp_path, "module = app\nlogto = nodir/site.log\nlogto2 = dir.log\n")
    assert log_problems(cfg) == [f"{ini}:5: option 'logto2': log file 'dir.log' is a directory"]


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("file:/a/b.log", "/a/b.log"),
        ("main file:/a/b.log", "/a/b.log"),
        ("file:logfile=/a/b.log,maxsize=100", "/a/b.log"),
        ("syslog:site", None),
        ("main syslog", None),
    ],
)
def test_logger_values(value, path):
    assert _logger_path(value) == path


@pytest.fixture
def clean_import(tmp_path, monkeypatch):
    """sys.path, sys.modules and the working directory restored after the test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_missing_module_says_where_it_looked_and_what_changes_it(clean_import):
    tmp_path = clean_import
    cfg, ini = cfg_of(tmp_path, f"module = no_such_site_module:app\nchdir = {tmp_path}\n")
    prepare_process(cfg)
    with pytest.raises(AppLoadError) as info:
        load_apps(cfg)
    text = str(info.value)
    assert text.startswith(
        f"{ini}:3: cannot load module 'no_such_site_module': no module named 'no_such_site_module'"
    ), text
    assert "looked for no_such_site_module.py or no_such_site_module/ in:" in text
    assert f"    {tmp_path}\n" in text  # sys.path, one entry a line
    assert f"working directory: {tmp_path}" in text
    for option in ("chdir", "pythonpath", "virtualenv"):
        assert f"{option} (" in text
    assert "Traceback" not in text and "importlib" not in text


def test_missing_submodule_names_the_package(clean_import):
    tmp_path = clean_import
    (tmp_path / "sitepkg_x").mkdir()
    (tmp_path / "sitepkg_x" / "__init__.py").write_text("")
    cfg, _ = cfg_of(tmp_path, f"module = sitepkg_x.wsgi\nchdir = {tmp_path}\n")
    prepare_process(cfg)
    with pytest.raises(AppLoadError) as info:
        load_apps(cfg)
    assert f"package 'sitepkg_x' ({tmp_path}/sitepkg_x) has no module 'wsgi'" in str(info.value)


def test_an_error_inside_the_app_keeps_its_traceback_without_ours(clean_import):
    tmp_path = clean_import
    (tmp_path / "site_needs.py").write_text("import not_installed_dep_x\napplication = 1\n")
    cfg, ini = cfg_of(tmp_path, f"module = site_needs\nchdir = {tmp_path}\n")
    prepare_process(cfg)
    with pytest.raises(AppLoadError) as info:
        load_apps(cfg)
    text = str(info.value)
    assert text.startswith(f"{ini}:3: cannot load module 'site_needs':\nTraceback"), text
    assert f'File "{tmp_path}/site_needs.py", line 1' in text
    assert "ModuleNotFoundError: No module named 'not_installed_dep_x'" in text
    assert "importlib" not in text and "procmaster/app.py" not in text


def test_a_syntax_error_is_shown_as_python_shows_it(clean_import):
    tmp_path = clean_import
    (tmp_path / "site_broken.py").write_text("def application(e, s:\n    pass\n")
    cfg, _ = cfg_of(tmp_path, f"module = site_broken\nchdir = {tmp_path}\n")
    prepare_process(cfg)
    with pytest.raises(AppLoadError) as info:
        load_apps(cfg)
    text = str(info.value)
    assert f'File "{tmp_path}/site_broken.py", line 1' in text and "SyntaxError" in text
    assert "importlib" not in text


def test_reload_status_round_trip(tmp_path):
    path = reload_status_path(str(tmp_path / "site.pid"))
    assert path == f"{tmp_path}/site.pid.reload"
    assert ReloadStatus.read(path) is None
    status = ReloadStatus(12, 3, RELOAD_ABORTED, "SIGHUP", "line 1\nSyntaxError")
    with open(path, "wb") as fh:
        fh.write(status.encode())
    assert ReloadStatus.read(path) == status
    with open(path, "wb") as fh:
        fh.write(b'{"pid": 1')  # torn or foreign: no status
    assert ReloadStatus.read(path) is None


def test_the_planner_reports_start_and_outcome():
    reports: list[tuple] = []
    ops = FakeOps(2)
    for w in ops.current():
        w.ready = True
    planner = ReloadPlanner(ops, lambda line: None, report=lambda *a: reports.append(a))
    planner.request(ReloadRequest(ReloadKind.FULL, "SIGHUP"))
    planner.probe_done(False, "site.ini:3: SyntaxError")
    assert reports == [
        ("running", "SIGHUP", ""),
        (
            RELOAD_ABORTED,
            "SIGHUP",
            "the new configuration or app does not load: site.ini:3: SyntaxError",
        ),
    ]
    reports.clear()
    planner.request(ReloadRequest(ReloadKind.WORKERS, "touch"))
    for w in ops.current():
        w.ready = True
    planner.progress()
    assert [r[0] for r in reports] == ["running", RELOAD_DONE]
    assert planner.reloads == 2


def test_start_problems_keep_the_process_unchanged(tmp_path, monkeypatch):
    """--check's path checks do not chdir, activate or import anything."""
    monkeypatch.chdir(tmp_path)
    cwd, path = os.getcwd(), list(sys.path)
    cfg, _ = cfg_of(tmp_path, f"module = app\nchdir = {tmp_path}\nvirtualenv = venv\n")
    path_problems(cfg)
    log_problems(cfg)
    assert (os.getcwd(), sys.path) == (cwd, path)
