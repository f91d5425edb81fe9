"""Command-line flags: forms, bools, optional values, ordering with --ini files,
positional INI files, and the error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from procmaster.config import ConfigError, load


def err(argv: list[str]) -> str:
    with pytest.raises(ConfigError) as exc:
        load(argv, environ={})
    return str(exc.value)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_typical_command_line():
    cfg = load(
        ["--http-socket", ":8000", "--module", "app:app", "--processes", "2", "--master"],
        environ={},
    )
    assert cfg.http_socket == [":8000"]
    assert cfg.module == "app:app"
    assert cfg.processes == 2
    assert cfg.master is True
    assert cfg.origin("processes") == "command line"
    assert cfg.origin("http-socket", 0) == "command line"
    assert cfg.warnings == []
    assert cfg.argv == [
        "--http-socket",
        ":8000",
        "--module",
        "app:app",
        "--processes",
        "2",
        "--master",
    ]
    assert cfg.files == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--socket", ":3031"],
        ["--socket=:3031"],
        ["-s", ":3031"],
        ["-s:3031"],
        ["--uwsgi-socket", ":3031"],
    ],
)
def test_value_forms(argv):
    cfg = load(argv, environ={})
    assert (cfg.socket or cfg.uwsgi_socket) == [":3031"]


def test_aliases_and_shorts():
    cfg = load(
        [
            "-p",
            "3",
            "-M",
            "-w",
            "app",
            "-H",
            "/venv",
            "-b",
            "8192",
            "-l",
            "64",
            "-L",
            "-z",
            "9",
            "--pp",
            "/src",
            "--file",
            "w.py",
        ],
        environ={},
    )
    assert cfg.processes == 3
    assert cfg.master is True
    assert cfg.module == "app"
    assert cfg.virtualenv == "/venv"
    assert cfg.buffer_size == 8192
    assert cfg.listen == 64
    assert cfg.disable_logging is True
    assert cfg.socket_timeout == 9
    assert cfg.pythonpath == ["/src"]
    assert cfg.wsgi_file == "w.py"


def test_attached_short_value_and_grouped_flags():
    cfg = load(["-p4", "-ML"], environ={})
    assert cfg.processes == 4
    assert cfg.master is True and cfg.disable_logging is True


def test_workers_alias_long():
    assert load(["--workers", "5"], environ={}).processes == 5
    assert load(["--workers=5"], environ={}).processes == 5


def test_underscores_on_the_command_line():
    assert load(["--buffer_size", "8192"], environ={}).buffer_size == 8192


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--master"], True),
        (["--master=true"], True),
        (["--master=false"], False),
        (["--master=0"], False),
        (["--master", "--no-master"], False),
        (["--no-master", "--master"], True),
        (["--master=off", "--master=yes"], True),
    ],
)
def test_bool_flags(argv, expected):
    assert load(argv, environ={}).master is expected


def test_no_prefix_does_not_shadow_real_options():
    cfg = load(["--no-orphans"], environ={})
    assert cfg.no_orphans is True
    assert (
        err(["--no-threads-wait"])
        == "option '--no-threads-wait' is a uWSGI option procmaster does not support"
    )


def test_no_prefix_only_for_bools():
    assert err(["--no-processes"]).startswith("unknown option '--no-processes'")
    assert err(["--no-master=1"]) == "option '--no-master' takes no value"


def test_flag_does_not_take_a_separate_value():
    assert err(["--master", "false"]) == (
        "unexpected argument 'false' (a flag takes a value only as --master=VALUE)"
    )


def test_optional_values_are_attached():
    assert load(["--chmod-socket"], environ={}).chmod_socket == 0o666
    assert load(["--chmod-socket=660"], environ={}).chmod_socket == 0o660
    assert load(["-C660"], environ={}).chmod_socket == 0o660
    assert load(["-C"], environ={}).chmod_socket == 0o666
    assert load(["--http-keepalive"], environ={}).http_keepalive == 1
    assert load(["--http-keepalive=15"], environ={}).http_keepalive == 15
    assert load(["--log-date"], environ={}).log_date is True
    # as uWSGI's parser: the next argument is the value unless it is a flag or an INI file
    assert load(["--chmod-socket", "660"], environ={}).chmod_socket == 0o660
    assert load(["--post-buffering", "8192"], environ={}).post_buffering == 8192
    assert load(["--chmod-socket", "--master"], environ={}).chmod_socket == 0o666


def test_scalars_later_win_lists_append_in_order():
    cfg = load(["--processes", "2", "-s", ":1", "--processes", "4", "--socket", ":2"], environ={})
    assert cfg.processes == 4
    assert cfg.socket == [":1", ":2"]


def test_missing_value():
    assert err(["--socket"]) == "option '--socket' needs a value"
    assert err(["-s"]) == "option '-s' needs a value"
    assert err(["--socket", "--master"]) == "option '--socket' needs a value"


def test_unknown_flags():
    assert err(["--procesess", "4"]) == "unknown option '--procesess' (did you mean '--processes'?)"
    assert err(["--frobnicate"]) == "unknown option '--frobnicate'"
    assert err(["-X"]) == "unknown option '-X' (see --help)"
    assert err(["-v", "100"]) == "option '-v' (uWSGI's --max-vars) is not supported by procmaster"
    assert err(["--max-vars", "100"]) == (
        "option '--max-vars' is a uWSGI option procmaster does not support"
    )


def test_no_abbreviations():
    assert err(["--proc", "4"]).startswith("unknown option '--proc'")


def test_bad_value_on_the_command_line():
    assert err(["--processes", "two"]) == "option '--processes': expected an integer, got 'two'"
    assert err(["-p", "two"]) == "option '-p': expected an integer, got 'two'"
    assert err(["--http-socket", "[nope]:80"]) == (
        "option '--http-socket': expected [ipv6]:port with a valid IPv6 address, got '[nope]:80'"
    )


def test_blocking_unsupported_on_the_command_line():
    assert err(["--raw-socket", "127.0.0.1:9000"]).startswith(
        "option '--raw-socket' is not supported: not implemented yet"
    )


def test_ignored_unsupported_warns_on_the_command_line():
    cfg = load(["--procname-append", "x"], environ={})
    assert cfg.procname_append == "x"
    assert cfg.warnings == [
        "option '--procname-append' is not supported (not implemented yet); ignored"
    ]


def test_help_version_check():
    assert load(["--help"], environ={}).help is True
    assert load(["-h"], environ={}).help is True
    assert load(["--usage"], environ={}).help is True
    assert load(["--version"], environ={}).version is True
    assert load([], environ={}).help is False


def test_check_reads_the_file(in_tmp):
    (in_tmp / "site.ini").write_text("[uwsgi]\nprocesses = 3\n[alt]\nprocesses = 5\n")
    cfg = load(["--check", "site.ini"], environ={})
    assert cfg.check == "site.ini"
    assert cfg.processes == 3
    assert load(["--check", "site.ini:alt"], environ={}).processes == 5


def test_ini_mixes_with_flags_in_order(in_tmp):
    (in_tmp / "a.ini").write_text("[uwsgi]\nprocesses = 2\nsocket = :1\n")
    (in_tmp / "b.ini").write_text("[uwsgi]\nprocesses = 3\nsocket = :2\n")
    cfg = load(["--processes", "9", "--ini", "a.ini", "-s", ":3", "--ini", "b.ini"], environ={})
    assert cfg.processes == 3
    assert cfg.socket == [":1", ":3", ":2"]
    assert cfg.origin("processes") == "b.ini:2"
    cfg = load(["--ini", "a.ini", "--processes", "9"], environ={})
    assert cfg.processes == 9
    assert cfg.files == [str(in_tmp / "a.ini")]


def test_positional_ini_is_read_where_it_stands(in_tmp):
    (in_tmp / "site.ini").write_text("[uwsgi]\nprocesses = 2\n[prod]\nprocesses = 6\n")
    assert load(["site.ini"], environ={}).processes == 2
    assert load(["--processes", "4", "site.ini"], environ={}).processes == 2
    assert load(["site.ini", "--processes", "4"], environ={}).processes == 4
    assert load(["site.ini:prod"], environ={}).processes == 6
    assert load(["--", "site.ini"], environ={}).processes == 2


def test_positional_that_is_not_an_ini():
    assert err(["app.py"]) == "unexpected argument 'app.py'"
    assert err(["site.yaml"]) == (
        "cannot read 'site.yaml': only INI configuration files are supported; convert it to INI"
    )


def test_section_only_on_the_command_line_uses_the_last_file(in_tmp):
    (in_tmp / "site.ini").write_text("[uwsgi]\nprocesses = 2\n[prod]\nprocesses = 6\n")
    assert load(["site.ini", "--ini", ":prod"], environ={}).processes == 6
    assert err(["--ini", ":prod"]) == (
        "option '--ini': ':prod' names a section but no INI file was read before it"
    )


def test_placeholders_on_the_command_line(in_tmp):
    (in_tmp / "token").write_text("abc\n")
    cfg = load(
        [
            "--set-ph",
            "base=/srv",
            "--chdir",
            "%(base)/app",
            "--env",
            "T=@(token)",
            "--pythonpath",
            "$(SRC)",
            "--print",
            "100%",
        ],
        environ={"SRC": "/src"},
    )
    assert cfg.chdir == "/srv/app"
    assert cfg.env == ["T=abc"]
    assert cfg.pythonpath == ["/src"]
    assert cfg.print == ["100%"]
    assert cfg.warnings == []


def test_set_on_the_command_line():
    cfg = load(["--set", "processes=3", "-S", "master=true"], environ={})
    assert cfg.processes == 3 and cfg.master is True
    assert err(["--set", "noequals"]) == "option '--set': expected NAME=VALUE, got 'noequals'"


def test_cli_entries_have_command_line_origin(in_tmp):
    (in_tmp / "site.ini").write_text("[uwsgi]\nmaster = true\n")
    cfg = load(["-p", "2", "site.ini"], environ={})
    assert list(cfg.entries) == [
        ("processes", "2", "command line"),
        ("ini", "site.ini", "command line"),
        ("master", "true", "site.ini:2"),
    ]


def test_reload_rebuilds_from_argv(in_tmp):
    path = Path("site.ini")
    path.write_text("[uwsgi]\nprocesses = 2\n")
    cfg = load(["site.ini"], environ={})
    path.write_text("[uwsgi]\nprocesses = 5\n")
    assert load(cfg.argv, environ={}).processes == 5


def test_bare_check_checks_the_configuration_given(in_tmp):
    (in_tmp / "site.ini").write_text("[uwsgi]\nprocesses = 3\n")
    cfg = load(["--ini", "site.ini", "--check"], environ={})
    assert cfg.check is True and cfg.processes == 3
    cfg = load(["--check", "site.ini"], environ={})
    assert cfg.check == "site.ini" and cfg.processes == 3
