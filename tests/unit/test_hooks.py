"""Hooks (procmaster.hooks): lines read as uWSGI 2.0 writes them, errors naming the
line before anything runs, actions and their failures, the -once bookkeeping."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from procmaster.config import load
from procmaster.hooks import HookError, Hooks


def hooks(tmp_path: Path, lines: str) -> Hooks:
    ini = tmp_path / "site.ini"
    ini.write_text("[uwsgi]\nhttp-socket = :8000\nmodule = testapp\n" + lines)
    return Hooks.from_config(load(["--ini", str(ini)], environ={}).entries)


@pytest.mark.parametrize(
    "line, why",
    [
        ("hook-pre-app = frobnicate:x", "unknown hook action 'frobnicate'"),
        ("hook-pre-app = exec true", "invalid hook syntax, must be ACTION:ARGS"),
        ("hook-as-vassal = exec:true", "the hook phase 'as-vassal' is not supported"),
        ("hook-as-root = write:/tmp/only-a-file", "write takes two values: FILE TEXT"),
        ("hook-as-root = unix_signal:15", "SIGNUM FUNCTION"),
    ],
)
def test_bad_hook_lines_are_refused_with_file_and_line(tmp_path, line, why):
    with pytest.raises(HookError) as exc:
        hooks(tmp_path, line + "\n")
    assert f"site.ini:4: {line}" in str(exc.value)
    assert why in str(exc.value)


def test_phases_keep_config_order_and_short_forms(tmp_path):
    out = tmp_path / "out"
    h = hooks(
        tmp_path,
        f"hook-as-root = appendn:{out} one\nexec-as-root = echo two >> {out}\n"
        f"hook-as-user = appendn:{out} four\nhook-as-root = !appendn:{out} three\n",
    )
    assert h.run("as-root") and h.run("as-user")
    assert out.read_text() == "one\ntwo\nthree\nfour\n"
    assert h.run("master-start")  # a phase without hooks


def test_file_actions(tmp_path):
    d = tmp_path / "d"
    h = hooks(
        tmp_path,
        f"hook-asap = mkdir:{d}\nhook-asap = write:{d}/w hello\nhook-asap = writen:{d}/n line\n"
        f"hook-asap = append:{d}/w  world\nhook-asap = create:{d}/empty\n"
        f"hook-asap = chmod:{d}/w 600\nhook-asap = putenv:PM_HOOK_TEST=yes\n"
        f"hook-asap = create:{d}/gone\nhook-asap = unlink:{d}/gone\n",
    )
    try:
        assert h.run("asap")
        assert (d / "w").read_text() == "hello world"
        assert (d / "n").read_text() == "line\n"
        assert (d / "empty").read_bytes() == b""
        assert oct((d / "w").stat().st_mode & 0o777) == "0o600"
        assert os.environ["PM_HOOK_TEST"] == "yes"
        assert not (d / "gone").exists()
    finally:
        os.environ.pop("PM_HOOK_TEST", None)


def test_a_failing_hook_stops_its_phase_and_says_which_line(tmp_path, capfd):
    out = tmp_path / "out"
    h = hooks(
        tmp_path,
        f"hook-as-root = exec:exit 3\nhook-as-root = writen:{out} never\n"
        f"hook-as-user = mkdir:{tmp_path}/no/such/parent\n",
    )
    assert h.run("as-root") is False
    assert not out.exists()
    assert h.run("as-user") is False
    err = capfd.readouterr().err
    assert "hook-as-root = exec:exit 3 (" in err and "site.ini:4) failed" in err
    assert 'command "exit 3" exited with non-zero code: 3' in err
    assert "hook-as-user = mkdir:" in err and "No such file or directory" in err


def test_atexit_failures_are_only_logged(tmp_path):
    h = hooks(tmp_path, "hook-as-user-atexit = exec:false\nhook-as-user-atexit = print:after\n")
    assert h.run("as-user-atexit") is True


def test_safeexec_ignores_the_exit_code(tmp_path):
    assert hooks(tmp_path, "hook-asap = safeexec:false\n").run("asap")


def test_call_finds_c_symbols_of_the_process(tmp_path):
    h = hooks(tmp_path, "hook-asap = callret:getpid\n")
    assert h.run("asap") is False  # getpid() is not 0: callret fails as in uWSGI
    assert hooks(tmp_path, "hook-asap = call:getpid\n").run("asap")
    assert hooks(tmp_path, "hook-asap = call:no_such_symbol_here\n").run("asap") is False


def test_pycall_calls_python(tmp_path, monkeypatch):
    (tmp_path / "pm_hook_mod.py").write_text(
        "seen = []\ndef hello(arg=None):\n    seen.append(arg)\ndef no():\n    return False\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    h = hooks(
        tmp_path, "hook-asap = pycall:pm_hook_mod.hello\nhook-asap = pycall:pm_hook_mod:hello x\n"
    )
    assert h.run("asap")
    assert sys.modules["pm_hook_mod"].seen == [None, "x"]
    assert hooks(tmp_path, "hook-asap = pycall:pm_hook_mod.no\n").run("asap") is False
    assert hooks(tmp_path, "hook-asap = pycall:pm_no_such_module.f\n").run("asap") is False


def test_unix_signal_maps_onto_the_masters_signals(tmp_path):
    h = hooks(
        tmp_path,
        "hook-master-start = unix_signal:2 gracefully_kill_them_all\n"
        "hook-master-start = unix_signal:10 grace_them_all\n",
    )
    assert h.run("master-start")
    assert h.signal_map == {2: signal.SIGTERM, 10: signal.SIGHUP}
    assert hooks(tmp_path, "hook-master-start = unix_signal:2 nope\n").run("master-start") is False


def test_accepting_phases_once_per_worker_and_worker_one(tmp_path):
    out = tmp_path / "out"
    h = hooks(
        tmp_path,
        f"hook-accepting = appendn:{out} a\nhook-accepting1 = appendn:{out} a1\n"
        f"hook-accepting-once = appendn:{out} once\n"
        f"hook-accepting1-once = appendn:{out} a1once\n",
    )
    assert h.run_accepting(1) and h.run_accepting(2)
    assert h.run_accepting(1) and h.run_accepting(2)  # respawned workers
    assert out.read_text().split() == [
        "a", "a1", "once", "a1once",
        "a", "once",
        "a", "a1",
        "a",
    ]  # fmt: skip


def test_a_private_hook_never_shows_its_text(tmp_path, capfd):
    h = hooks(tmp_path, "hook-asap = !exec:echo s3cret-token >/dev/null; exit 4\n")
    assert h.run("asap") is False
    err = capfd.readouterr().err
    assert "PRIVATE HOOK" in err and "failed" in err and "s3cret" not in err
