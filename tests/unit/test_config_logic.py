"""Config logic (if-* … endif, for* … endfor) as uWSGI 2.0 evaluates it, the
UWSGI_* environment options, and the values uWSGI reads loosely (bare numeric
options, booleans given to numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from procmaster.config import ConfigError, load
from procmaster.ipc import REEXEC_ENV


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def ini(text: str, environ: dict | None = None, extra: tuple = ()):
    Path("site.ini").write_text("[uwsgi]\n" + text)
    return load(["--ini", "site.ini", *extra], environ=environ or {})


def error(text: str, environ: dict | None = None, extra: tuple = ()) -> str:
    with pytest.raises(ConfigError) as exc:
        ini(text, environ, extra)
    return str(exc.value)


def values(cfg, key: str) -> list[str]:
    return [e.value for e in cfg.entries if e.key == key]


# -- if blocks ---------------------------------------------------------------------------


def test_if_env_true_reads_the_block_with_the_value_as_underscore(in_tmp):
    text = "if-env = STAGE\nprocesses = 8\nprint = stage %(_)\nendif\nlisten = 50\n"
    cfg = ini(text, {"STAGE": "prod"})
    assert (cfg.processes, cfg.print, cfg.listen) == (8, ["stage prod"], 50)
    cfg = ini(text, {})
    assert (cfg.processes, cfg.print, cfg.listen) == (1, [], 50)


def test_if_env_name_equals_value(in_tmp):
    text = (
        "if-env = STAGE=prod\nprocesses = 8\nendif\nif-not-env = STAGE=prod\nprocesses = 2\nendif\n"
    )
    assert ini(text, {"STAGE": "prod"}).processes == 8
    assert ini(text, {"STAGE": "dev"}).processes == 2
    assert ini(text, {}).processes == 2


def test_an_error_inside_a_false_block_is_never_reported(in_tmp):
    text = "if-env = NOPE\nprocesses = many\nsocket = bad:address:x\nno-such-option = 1\nendif\n"
    cfg = ini(text)
    assert cfg.processes == 1 and cfg.warnings == []
    assert "expected an integer" in error(text, {"NOPE": "1"})


def test_path_tests(in_tmp):
    Path("app.py").write_text("")
    Path("venv").mkdir()
    text = (
        "if-exists = app.py\nprint = e %(_)\nendif\n"
        "if-not-exists = nothing\nprint = ne %(_)\nendif\n"
        "if-file = venv\nprint = wrong\nendif\n"
        "if-not-file = venv\nprint = nf\nendif\n"
        "if-dir = venv\nprint = d %(_)\nendif\n"
        "if-not-dir = app.py\nprint = nd\nendif\n"
        "ifexists = app.py\nprint = alias\nendif\n"
    )
    assert ini(text).print == ["e app.py", "ne nothing", "nf", "d venv", "nd", "alias"]


def test_if_opt_and_magic_variables_in_the_argument(in_tmp):
    cfg = ini(
        "processes = 4\nif-opt = processes=4\nprint = four %(_)\nendif\n"
        "if-opt = threads\nprint = never\nendif\n"
        "if-not-opt = threads\nprint = no threads\nendif\n"
        "if-exists = %dsite.ini\nprint = found %n\nendif\n"
    )
    assert cfg.print == ["four 4", "no threads", "found site"]


def test_if_not_opt_is_tested_again_at_every_line_as_uwsgi_does(in_tmp):
    # uWSGI 2.0 runs the test for each line: once threads is set, the rest is skipped
    cfg = ini("if-not-opt = threads\nthreads = 2\nenable-threads = true\nendif\n")
    assert cfg.threads == 2 and cfg.enable_threads is False
    assert any("no longer holds" in w and "site.ini:2" in w for w in cfg.warnings)


def test_if_reload_reads_the_reexec_environment(in_tmp):
    text = "if-reload\nprint = again %(_)\nendif\nif-not-reload\nprint = first\nendif\n"
    assert ini(text).print == ["first"]
    assert ini(text, {REEXEC_ENV: "{}"}).print == ["again %(_)"]


def test_if_hostname_and_plugin(in_tmp):
    import os

    host = os.uname().nodename
    cfg = ini(
        f"if-hostname = {host}\nprint = here\nendif\nif-not-hostname = {host}\nprint = x\n"
        "endif\nif-plugin = python3\nprint = py\nendif\nif-not-plugin = php\nprint = no php\n"
        "endif\n"
    )
    assert cfg.print == ["here", "py", "no php"]
    # what differs from uWSGI is said at the line: a plugin procmaster does not have
    assert [w for w in cfg.warnings if "plugin" in w] == [
        "site.ini:11: 'if-not-plugin = php': procmaster has no plugin 'php', so the test is "
        "true (uWSGI's answer depends on the plugins it was built with or loads)"
    ]


# -- for blocks --------------------------------------------------------------------------


def test_for_repeats_each_line_for_every_item_line_by_line(in_tmp):
    cfg = ini("for = a b\nsocket = /tmp/%(_).sock\nprint = %(_)\nendfor\n")
    assert cfg.socket == ["/tmp/a.sock", "/tmp/b.sock"]
    # uWSGI's order: line 1 for every item, then line 2 for every item
    assert [e.key for e in cfg.entries[1:]] == ["socket", "socket", "print", "print"]


def test_for_times_glob_and_readline(in_tmp):
    Path("vassals").mkdir()
    for name in ("b.ini", "a.ini"):
        (in_tmp / "vassals" / name).write_text("")
    Path("hosts.txt").write_text("one\r\ntwo\n")
    cfg = ini(
        "for-times = 3\nprint = t%(_)\nendfor\n"
        "for-glob = vassals/*.ini\nprint = %(_)\nendfor\n"
        "for-readline = hosts.txt\nprint = h %(_)\nendfor\n"
    )
    assert cfg.print == ["t1", "t2", "t3", "vassals/a.ini", "vassals/b.ini", "h one", "h two"]


def test_for_glob_without_match_gives_the_pattern_as_uwsgi(in_tmp):
    cfg = ini("for-glob = none/*.ini\nprint = %(_)\nendfor\n")
    assert cfg.print == ["none/*.ini"]
    assert "matches nothing" in cfg.warnings[0]


def test_blocks_nest_with_a_warning(in_tmp):
    cfg = ini(
        "for = a b\nif-env = ON_%(_)\nprint = %(_)\nendif\nendfor\n",
        {"ON_b": "yes", "ON_a": ""},
    )
    assert cfg.print == ["", "yes"]
    assert any("procmaster nests blocks" in w for w in cfg.warnings)


def test_a_for_line_repeated_by_for_warns_once(in_tmp):
    cfg = ini("for = a b c\nnot-an-option = %(_)\nendfor\n")
    assert cfg.warnings == ["site.ini:3: unknown option 'not-an-option'"]


# -- bad logic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "if-env = X\nprocesses = 2\n",
            "site.ini:2: 'if-env = X' is never closed: expected 'endif'",
        ),
        ("for = a\nprint = x\n", "site.ini:2: 'for = a' is never closed: expected 'endfor'"),
        ("processes = 2\nendif\n", "site.ini:3: 'endif' without an open if-*/for block"),
        (
            "for-readline = missing.txt\nprint = %(_)\nendfor\n",
            "site.ini:2: 'for-readline': cannot read 'missing.txt': No such file or directory",
        ),
        (
            "if-hostname-match = [a-\nprint = x\nendif\n",
            "site.ini:2: 'if-hostname-match': expected a regular expression, got '[a-'",
        ),
        (
            "for-times = many\nprint = x\nendfor\n",
            "site.ini:2: 'for-times': expected a whole number of times, got 'many'",
        ),
    ],
)
def test_bad_logic_is_a_clear_error(in_tmp, text, message):
    assert error(text).startswith(message)


def test_bad_for_inside_a_false_block_is_not_reported(in_tmp):
    assert ini("if-env = NOPE\nfor-readline = missing.txt\nprint = x\nendfor\nendif\n").print == []


def test_a_block_must_end_in_its_file(in_tmp):
    Path("base.ini").write_text("[uwsgi]\nif-env = X\n")
    msg = error("ini = base.ini\nendif\n")
    assert msg.startswith("base.ini:2: 'if-env = X' is never closed")


def test_endif_closing_a_for_warns(in_tmp):
    cfg = ini("for = a\nprint = %(_)\nendif\n")
    assert cfg.print == ["a"] and "write 'endfor'" in cfg.warnings[0]


def test_logic_on_the_command_line(in_tmp):
    cfg = load(["--if-env", "X", "--processes", "3", "--endif"], environ={"X": "1"})
    assert cfg.processes == 3
    with pytest.raises(ConfigError) as exc:
        load(["--if-env", "X", "--processes", "3"], environ={})
    assert "never closed: expected 'endif' before the end of the command line" in str(exc.value)


# -- UWSGI_* environment variables ---------------------------------------------------------


def test_uwsgi_environment_variables_are_options_below_ini_and_flags(in_tmp):
    env = {
        "UWSGI_PROCESSES": "8",
        "UWSGI_HTTP_SOCKET": ":9000",
        "UWSGI_MASTER": "1",
        "UWSGI_RELOADS": "3",
    }
    cfg = ini("module = app\n", env)
    assert (cfg.processes, cfg.http_socket, cfg.master) == (8, [":9000"], True)
    assert cfg.origin("processes") == "environment variable UWSGI_PROCESSES"
    # the INI and the command line are read after them: they win
    assert ini("processes = 2\n", env).processes == 2
    assert ini("processes = 2\n", env, ("--processes", "5")).processes == 5
    assert cfg.warnings == []


def test_uwsgi_ini_variable_reads_the_file(in_tmp):
    Path("app.ini").write_text("[uwsgi]\nprocesses = 6\nprint = %(my-var)\n")
    cfg = load([], environ={"UWSGI_INI": "app.ini", "UWSGI_MY_VAR": "x"})
    assert cfg.processes == 6 and cfg.print == ["x"]


def test_bad_uwsgi_environment_variable_names_the_variable(in_tmp):
    msg = error("module = app\n", {"UWSGI_PROCESSES": "four"})
    assert msg == (
        "environment variable UWSGI_PROCESSES: option 'processes': expected an integer, got 'four'"
    )


def test_unknown_uwsgi_variable_is_a_custom_key_even_in_strict_mode(in_tmp):
    # read before any strict line, as in uWSGI, whose strict mode never sees it
    cfg = ini("module = app\nprint = %(foo-bar)\n", {"UWSGI_FOO_BAR": "1", "UWSGI_OTHER": "x"})
    assert cfg.print == ["1"]
    assert cfg.warnings == ["environment variable UWSGI_OTHER: unknown option 'other'"]
    cfg = ini("strict = true\n", {"UWSGI_OTHER": "x"})
    assert cfg.warnings == ["environment variable UWSGI_OTHER: unknown option 'other'"]


# -- values as uWSGI reads them --------------------------------------------------------------


def test_words_given_to_numbers_read_as_zero_with_a_warning(in_tmp):
    cfg = ini("cheaper = true\npost-buffering = on\nharakiri = yes\n")
    assert (cfg.cheaper, cfg.post_buffering, cfg.harakiri) == (0, 0, 0)
    assert cfg.warnings[0] == (
        "site.ini:2: option 'cheaper': 'true' is not a number; read as 0, as uWSGI 2.0 "
        "reads it (write a number)"
    )
    assert error("processes = true\n") == (
        "site.ini:2: option 'processes': expected a number of at least 1, got 'true' "
        "(uWSGI 2.0 reads it as 0)"
    )


def test_bare_numeric_option_reads_as_zero_and_bare_uwsgi_flags_are_known(in_tmp):
    cfg = ini("cheaper\ndisable-write-exception\nignore-sigpipe\nharakiri-verbose\n")
    assert cfg.cheaper == 0 and cfg.harakiri_verbose is True
    assert "'cheaper': no value is not a number" in cfg.warnings[0]
    assert all("expected 'option = value'" not in w for w in cfg.warnings)


def test_unset_environment_variable_kept_and_named_when_it_breaks_a_value(in_tmp):
    assert error("processes = $(WORKERS)\n") == (
        "site.ini:2: option 'processes': expected an integer, got '$(WORKERS)' "
        "(environment variable WORKERS is not set)"
    )
    assert "WEB_PORT is not set" in error("http-socket = :$(WEB_PORT)\n")


def test_magic_variables_inside_placeholder_arithmetic(in_tmp):
    import os

    k = os.cpu_count() or 1
    cfg = ini("processes = %(%k * 2)\nmax-requests = %((%k * 2) + 1)\n")
    assert cfg.processes == k * 2 and cfg.max_requests == k * 2 + 1
    assert "uWSGI 2.0 has no parentheses" in cfg.warnings[0]


def test_exec_placeholder(in_tmp):
    cfg = ini("print = [@(exec://echo hi there)]\n")
    assert cfg.print == ["[hi there]"]
    assert "exited with status 3" in error("print = @(exec://exit 3)\n")


def test_placeholders_in_options_uwsgi_reads_at_once_warn(in_tmp):
    # uWSGI applies ini, listen, set-placeholder ... before expanding placeholders:
    # `ini = %(d)/x.ini` fails there; procmaster expands it and says so
    Path("inc.ini").write_text("[uwsgi]\nprocesses = 3\n")
    cfg = ini("set-ph = d=.\nini = %(d)/inc.ini\nlisten = $(LQ)\nset-ph = h=$(LQ)\n", {"LQ": "77"})
    assert (cfg.processes, cfg.listen, cfg.custom["h"]) == (3, 77, "77")
    assert [w.split(":")[1] for w in cfg.warnings] == ["3", "4", "5"]
    assert "would use '%(d)/inc.ini' as written" in cfg.warnings[0]
    assert ini("listen = 50\nini = inc.ini\n").warnings == []
