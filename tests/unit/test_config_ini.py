"""INI reading: sections, comments, keys, repeated keys, bools, placeholders,
includes, unknown keys, strict mode, clean-up warnings and error messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import DATA as TEST_DATA

from procmaster.config import Config, ConfigError, load

DATA = TEST_DATA / "ini"


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def _ref(tmp_path: Path, path: str, name: str) -> str:
    # relative when running in tmp_path (the in_tmp fixture): short names in messages
    return name if Path.cwd() == tmp_path else path


def load_ini(tmp_path: Path, text: str, name: str = "site.ini", environ=None, extra=()) -> Config:
    path = _ref(tmp_path, write(tmp_path, name, text), name)
    return load(["--ini", path, *extra], environ=environ or {})


def error(tmp_path: Path, text: str, name: str = "site.ini", environ=None) -> str:
    path = _ref(tmp_path, write(tmp_path, name, text), name)
    with pytest.raises(ConfigError) as exc:
        load(["--ini", path], environ=environ or {})
    return str(exc.value)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path so file names in messages are short and relative."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- sections --------------------------------------------------------------------


def test_uwsgi_section_is_read_and_other_sections_ignored(tmp_path):
    cfg = load_ini(
        tmp_path,
        "processes = 9\n[other]\nprocesses = 3\n[uwsgi]\nprocesses = 2\n[app:main]\nuse: egg\n",
    )
    assert cfg.processes == 2
    assert cfg.warnings == []


def test_section_given_with_colon(tmp_path):
    path = write(tmp_path, "site.ini", "[uwsgi]\nprocesses = 2\n[staging]\nprocesses = 5\n")
    assert load(["--ini", path + ":staging"], environ={}).processes == 5
    assert load(["--ini", path + ":"], environ={}).processes == 2


def test_section_may_repeat(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nsocket = :1\n[x]\n[uwsgi]\nsocket = :2\n")
    assert cfg.socket == [":1", ":2"]


def test_missing_section_is_an_error(in_tmp):
    write(in_tmp, "site.ini", "[uwsgi]\nmaster = true\n")
    with pytest.raises(ConfigError) as exc:
        load(["--ini", "site.ini:prod"], environ={})
    assert str(exc.value) == "'site.ini' has no [prod] section"


def test_bad_section_header(in_tmp):
    msg = error(in_tmp, "[uwsgi\nmaster = true\n")
    assert msg == "site.ini:1: expected a section header like [uwsgi], got '[uwsgi'"


# -- lines, comments, keys ------------------------------------------------------------


def test_comments_blank_lines_and_whitespace(tmp_path):
    cfg = load_ini(
        tmp_path,
        "; comment\n# another\n\n[uwsgi]\n  ; indented comment\n\tprocesses   =   3  \n\n",
    )
    assert cfg.processes == 3
    assert cfg.warnings == []


def test_value_is_everything_after_the_first_equals(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nenv = DJANGO_SETTINGS=a=b\n")
    assert cfg.env == ["DJANGO_SETTINGS=a=b"]


def test_dash_and_underscore_are_the_same(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nhttp_socket = :8000\nbuffer_size = 8192\nlazy_apps = 1\n")
    assert cfg.http_socket == [":8000"]
    assert cfg.buffer_size == 8192
    assert cfg.lazy_apps is True
    assert cfg.warnings == []


def test_crlf_and_bom(tmp_path):
    path = tmp_path / "site.ini"
    path.write_bytes(b"\xef\xbb\xbf[uwsgi]\r\nprocesses = 3\r\nmaster = true\r\n")
    cfg = load(["--ini", str(path)], environ={})
    assert cfg.processes == 3 and cfg.master is True


def test_line_without_equals_is_an_error(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nmaster = true\nthis is leftover text\n")
    assert msg == "site.ini:3: expected 'option = value', got 'this is leftover text'"


def test_bare_line_of_an_option_that_needs_a_value(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nsocket\n")
    assert msg == "site.ini:2: option 'socket' needs a value (write 'socket = VALUE')"


def test_merge_conflict_markers_are_an_error(in_tmp):
    import shutil

    shutil.copy(DATA / "conflict.ini", in_tmp / "conflict.ini")
    with pytest.raises(ConfigError) as exc:
        load(["conflict.ini"], environ={})
    assert str(exc.value) == (
        "conflict.ini:3: merge conflict marker '<<<<<<<': resolve the conflict in this file"
    )


def test_line_with_no_key(in_tmp):
    msg = error(in_tmp, "[uwsgi]\n= 4\n")
    assert msg == "site.ini:2: expected 'option = value', got '= 4'"


# -- repeated keys and bools ------------------------------------------------------------


def test_repeated_keys_lists_append_scalars_last_wins(tmp_path):
    cfg = load_ini(
        tmp_path,
        "[uwsgi]\nsocket = :1\nprocesses = 2\nsocket = :2\nprocesses = 5\nworkers = 6\n",
    )
    assert cfg.socket == [":1", ":2"]
    assert cfg.processes == 6
    assert cfg.origin("processes").endswith("site.ini:6")
    assert cfg.origin("socket", 0).endswith("site.ini:2")
    assert cfg.origin("socket", 1).endswith("site.ini:4")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("On", True),
        ("", True),
        ("false", False),
        ("0", False),
        ("No", False),
        ("off", False),
    ],
)
def test_bool_values(tmp_path, text, expected):
    cfg = load_ini(tmp_path, f"[uwsgi]\nmaster = {text}\n")
    assert cfg.master is expected


def test_bare_bool_line_is_true(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nmaster\nvacuum\n")
    assert cfg.master is True and cfg.vacuum is True
    assert [(e.key, e.value) for e in cfg.entries[1:]] == [("master", "true"), ("vacuum", "true")]


def test_bad_bool(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nmaster = maybe\n")
    assert msg == (
        "site.ini:2: option 'master': expected a boolean (true/false, 1/0, yes/no, on/off), "
        "got 'maybe'"
    )


# -- bad values ---------------------------------------------------------------------------


def test_bad_integer_names_file_line_option_and_type(in_tmp):
    (in_tmp / "configs").mkdir()
    write(in_tmp, "configs/site.ini", "[uwsgi]\nmaster = true\nprocesses = two\n")
    with pytest.raises(ConfigError) as exc:
        load(["--ini", "configs/site.ini"], environ={})
    assert (
        str(exc.value) == "configs/site.ini:3: option 'processes': expected an integer, got 'two'"
    )
    assert exc.value.where == "configs/site.ini:3"
    assert exc.value.option == "processes"


def test_bad_value_names_the_alias_used(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nworkers = -1\n")
    assert msg == "site.ini:2: option 'workers': expected an integer, got '-1'"


def test_processes_must_be_at_least_one(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nprocesses = 0\n")
    assert msg == "site.ini:2: option 'processes': expected a number of at least 1, got '0'"


def test_empty_value_for_an_option_that_needs_one(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nsocket =\n")
    assert msg.startswith("site.ini:2: option 'socket': expected an address")
    assert msg.endswith("got an empty value")


def test_bad_address(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nhttp-socket = localhost:http\n")
    assert msg == (
        "site.ini:2: option 'http-socket': expected a port number from 0 to 65535, "
        "got 'localhost:http'"
    )


def test_bad_size_and_mode(in_tmp):
    assert error(in_tmp, "[uwsgi]\nbuffer-size = big\n") == (
        "site.ini:2: option 'buffer-size': expected a size in bytes (e.g. 4096, 64k, 1m), got 'big'"
    )
    assert error(in_tmp, "[uwsgi]\nchmod-socket = 999\n") == (
        "site.ini:2: option 'chmod-socket': expected an octal mode like 660 (or nothing for 666), "
        "got '999'"
    )


def test_values_of_each_type(tmp_path):
    cfg = load_ini(
        tmp_path,
        "[uwsgi]\n"
        "buffer-size = 32k\n"
        "limit-post = 1m\n"
        "chmod-socket = 660\n"
        "socket-timeout = 2.5\n"
        "harakiri = 30\n"
        "reload-on-rss = 1.5\n"
        "log-date = %%Y-%%m-%%d\n"
        "env = A=1\n"
        "mount = /app=app:application\n"
        "http-keepalive\n",
    )
    assert cfg.buffer_size == 32768
    assert cfg.limit_post == 1024 * 1024
    assert cfg.chmod_socket == 0o660
    assert cfg.socket_timeout == 2.5
    assert cfg.harakiri == 30
    assert cfg.reload_on_rss == int(1.5 * 1024 * 1024)
    assert cfg.log_date == "%Y-%m-%d"
    assert cfg.env == ["A=1"]
    assert cfg.mount == ["/app=app:application"]
    assert cfg.http_keepalive == 1


def test_chmod_socket_bare_and_empty_mean_666(tmp_path):
    assert load_ini(tmp_path, "[uwsgi]\nchmod-socket\n").chmod_socket == 0o666
    assert load_ini(tmp_path, "[uwsgi]\nchmod-socket =\n").chmod_socket == 0o666
    assert load_ini(tmp_path, "[uwsgi]\nchmod = 1\n").chmod_socket == 0o666
    assert load_ini(tmp_path, "[uwsgi]\nmaster = 1\n").chmod_socket is None


def test_defaults(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nmodule = app\n")
    assert cfg.processes == 1
    assert cfg.master is False
    assert cfg.buffer_size == 4096
    assert cfg.listen == 100
    assert cfg.socket_timeout == 4
    assert cfg.reload_mercy == 60
    assert cfg.worker_reload_mercy == 60
    assert cfg.callable == "application"
    assert cfg.socket == [] and cfg.http_socket == []
    assert cfg.origin("processes") == "default"
    assert not cfg.is_set("processes") and cfg.is_set("module")


# -- inline comments and quotes -----------------------------------------------------------


def test_inline_comment_removed_with_warning(in_tmp):
    cfg = load_ini(
        in_tmp, "[uwsgi]\nmaster = true\nmodule = app:app   # the app\nlisten = 64 ; backlog\n"
    )
    assert cfg.module == "app:app"
    assert cfg.listen == 64
    assert cfg.warnings == [
        "site.ini:3: inline comment removed from 'module' value (uWSGI would keep it in the value)",
        "site.ini:4: inline comment removed from 'listen' value (uWSGI would keep it in the value)",
    ]


def test_hash_without_space_is_kept(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nenv = COLOR=#fff\nprint = a;b\n")
    assert cfg.env == ["COLOR=#fff"]
    assert cfg.print == ["a;b"]
    assert cfg.warnings == []


def test_quotes_removed_with_warning(in_tmp):
    cfg = load_ini(in_tmp, "[uwsgi]\nchdir = '/srv/app'\nmodule = \"app:app\"  # main\n")
    assert cfg.chdir == "/srv/app"
    assert cfg.module == "app:app"
    assert cfg.warnings == [
        "site.ini:2: quotes removed from 'chdir' value (uWSGI would keep them in the value)",
        "site.ini:3: inline comment removed from 'module' value (uWSGI would keep it in the value)",
        "site.ini:3: quotes removed from 'module' value (uWSGI would keep them in the value)",
    ]


def test_quotes_not_around_the_whole_value_are_kept(tmp_path):
    cfg = load_ini(tmp_path, '[uwsgi]\nlog-format = "%(method) %(uri)" %(status)\nprint = "a\n')
    assert cfg.log_format == '"%(method) %(uri)" %(status)'
    assert cfg.print == ['"a']
    assert cfg.warnings == []


# -- placeholders: magic variables ------------------------------------------------------------


def test_magic_variables_of_the_file(tmp_path):
    path = write(
        tmp_path,
        "conf/site.prod.ini",
        "[uwsgi]\n"
        "print = d=%d\n"
        "print = p=%p\n"
        "print = s=%s\n"
        "print = n=%n\n"
        "print = e=%e\n"
        "print = c=%c\n"
        "print = x=%x\n"
        "print = o=%o\n"
        "print = i=%i\n"
        "print = 0=%0\n"
        "print = pct=100%%\n",
    )
    cfg = load(["--ini", path], environ={})
    real = str(tmp_path / "conf" / "site.prod.ini")
    first = [c for c in os.path.dirname(real).split("/") if c][0]
    assert cfg.print == [
        f"d={tmp_path}/conf/",
        f"p={real}",
        "s=site.prod.ini",
        "n=site.prod",
        "e=ini",
        "c=conf",
        "x=",
        f"o={path}",
        f"i={os.lstat(real).st_ino}",
        f"0={first}",
        "pct=100%",
    ]


def test_magic_x_is_the_section_asked(tmp_path):
    path = write(tmp_path, "site.ini", "[uwsgi]\n[app1]\nprocname-prefix = %x-\n")
    cfg = load(["--ini", path + ":app1"], environ={})
    assert cfg.procname_prefix == "app1-"


def test_magic_j_is_the_uwsgi_djb33x_hash(tmp_path):
    from procmaster.config.placeholders import _djb33x_hex

    # the value uWSGI computes for this path (djb33x, 4 bytes little-endian, hex)
    assert _djb33x_hex("/etc/uwsgi/app.ini") == (
        _reference_djb33x("/etc/uwsgi/app.ini").to_bytes(4, "little").hex().upper()
    )
    path = write(tmp_path, "site.ini", "[uwsgi]\nprint = %j\n")
    cfg = load(["--ini", path], environ={})
    assert cfg.print == [_djb33x_hex(path)]


def _reference_djb33x(text: str) -> int:
    h = 5381
    for ch in text.encode():
        h = ((h * 33) ^ ch) % 2**32
    return h


def test_host_magic_variables(tmp_path):
    cfg = load_ini(
        tmp_path,
        "[uwsgi]\nprint = %h\nprint = %k\nprint = %u\nprint = %g\nprint = %v\nprint = %t\nprint = %U\n",
    )
    assert cfg.print[0] == os.uname().nodename
    assert cfg.print[1] == str(os.cpu_count())
    assert cfg.print[2] == str(os.getuid())
    assert cfg.print[3] == str(os.getgid())
    assert cfg.print[4] == os.getcwd()
    assert cfg.print[5].isdigit()
    assert cfg.print[6]


def test_uppercase_magic_refers_to_the_first_file(tmp_path):
    write(tmp_path, "inc/base.ini", "[uwsgi]\nprint = %n %N %d %D\n")
    path = write(tmp_path, "vassal.ini", "[uwsgi]\nini = inc/base.ini\n")
    cfg = load(["--ini", path], environ={})
    assert cfg.print == [f"base vassal {tmp_path}/inc/ {tmp_path}/"]


def test_unknown_magic_variable_is_kept_with_a_warning(in_tmp):
    cfg = load_ini(in_tmp, "[uwsgi]\nprint = 50%z\n")
    assert cfg.print == ["50%z"]
    assert cfg.warnings == [
        "site.ini:2: option 'print': '%z' is not a magic variable; kept as is "
        "(uWSGI would remove it; write %% for a literal %)"
    ]


# -- placeholders: %(name), $(ENV), @(file) ------------------------------------------------------


def test_custom_key_placeholder_and_option_placeholder(tmp_path):
    cfg = load_ini(
        tmp_path,
        "[uwsgi]\nproject = myapp\nchdir = /srv/%(project)\npythonpath = %(chdir)/src\n"
        "module = %(project).wsgi\n",
    )
    assert cfg.chdir == "/srv/myapp"
    assert cfg.pythonpath == ["/srv/myapp/src"]
    assert cfg.module == "myapp.wsgi"
    assert cfg.custom == {"project": "myapp"}
    assert cfg.warnings == []


def test_placeholder_sees_the_latest_value(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nbase = /a\nprint = %(base)\nbase = /b\nprint = %(base)\n")
    assert cfg.print == ["/a", "/b"]


def test_placeholder_resolves_aliases_and_underscores(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nworkers = 3\nmy-dir = /x\nprint = %(processes) %(my_dir)\n")
    assert cfg.print == ["3 /x"]


def test_forward_reference_resolves_at_the_end(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nchdir = %(root)/app\nroot = /srv\n")
    assert cfg.chdir == "/srv/app"
    assert cfg.warnings == []


def test_unset_placeholder_is_kept_with_a_warning(in_tmp):
    cfg = load_ini(in_tmp, "[uwsgi]\nchdir = /srv/%(nothing)\n")
    assert cfg.chdir == "/srv/%(nothing)"
    assert cfg.warnings == [
        "site.ini:2: option 'chdir': %(nothing) is not an option or custom key set anywhere; kept as is"
    ]


def test_log_format_request_variables_are_left_alone(tmp_path):
    fmt = '%(addr) - %(user) [%(ltime)] "%(method) %(uri) %(proto)" %(status) %(size)'
    cfg = load_ini(tmp_path, f"[uwsgi]\nlog-format = {fmt}\n")
    assert cfg.log_format == fmt
    assert cfg.warnings == []


def test_placeholder_arithmetic(tmp_path):
    cfg = load_ini(
        tmp_path,
        "[uwsgi]\nfoo = 17\nbar = 30\nprint = %(foo + bar + 3)\nprint = %(foo + bar + 3 * 2)\n"
        "print = %(foo ++)\nprint = %(foo bar)\nprocesses = %(foo / 4)\n",
    )
    assert cfg.print == ["50", "100", "18", "1730"]
    assert cfg.processes == 4


def test_percent_escape_keeps_placeholder_literal(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nfoo = 1\nprint = %%(foo)\n")
    assert cfg.print == ["%(foo)"]


def test_environment_variables(in_tmp):
    cfg = load_ini(
        in_tmp,
        "[uwsgi]\nchdir = $(APP_HOME)/src\nprint = [$(UNSET_VAR)]\n",
        environ={"APP_HOME": "/srv"},
    )
    assert cfg.chdir == "/srv/src"
    assert cfg.print == ["[$(UNSET_VAR)]"]
    assert cfg.warnings == [
        "site.ini:3: option 'print': environment variable 'UNSET_VAR' is not set; "
        "'$(UNSET_VAR)' is kept in the value, as uWSGI 2.0 keeps it"
    ]


def test_environ_defaults_to_os_environ(tmp_path, monkeypatch):
    monkeypatch.setenv("PROCMASTER_TEST_VAR", "from-env")
    path = write(tmp_path, "site.ini", "[uwsgi]\nprint = $(PROCMASTER_TEST_VAR)\n")
    assert load(["--ini", path]).print == ["from-env"]


def test_file_contents_relative_to_the_ini(tmp_path, monkeypatch):
    write(tmp_path, "conf/secret.txt", "  s3cret\n\n")
    path = write(tmp_path, "conf/site.ini", "[uwsgi]\nenv = SECRET=@(secret.txt)\n")
    monkeypatch.chdir("/")
    assert load(["--ini", path], environ={}).env == ["SECRET=s3cret"]


def test_missing_file_placeholder(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nenv = SECRET=@(nope.txt)\n")
    assert msg == "site.ini:2: option 'env': cannot read '@(nope.txt)': No such file or directory"


def test_placeholders_in_custom_key_values_chain(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\na = 1\nb = %(a)2\nc = %(b)3\nprint = %(c)\n")
    assert cfg.print == ["123"]


def test_self_reference_is_left_as_is(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nprint = %(print)x\n")
    assert cfg.print == ["%(print)x"]


# -- unknown keys, custom keys, strict ------------------------------------------------------------


def test_unknown_key_warns_with_suggestion(in_tmp):
    cfg = load_ini(in_tmp, "[uwsgi]\nmaster = true\nprocesess = 4\n")
    assert cfg.processes == 1
    assert cfg.custom == {"procesess": "4"}
    assert cfg.warnings == ["site.ini:3: unknown option 'procesess' (did you mean 'processes'?)"]


def test_unknown_key_without_a_close_match(in_tmp):
    cfg = load_ini(in_tmp, "[uwsgi]\nzzqqx = 4\n")
    assert cfg.warnings == ["site.ini:2: unknown option 'zzqqx'"]


def test_referenced_custom_key_gets_no_warning(tmp_path):
    cfg = load_ini(
        tmp_path, "[uwsgi]\nprint = %(later)\nlater = 1\nbasedir = /srv\nchdir = %(basedir)\n"
    )
    assert cfg.warnings == []
    assert cfg.get("basedir") == "/srv"
    assert cfg.origin("basedir").endswith("site.ini:4")


def test_uwsgi_option_not_supported_is_reported_as_such(in_tmp):
    cfg = load_ini(in_tmp, "[uwsgi]\nso-keepalive = true\nprocname-append = x\n")
    assert cfg.warnings == [
        "site.ini:2: option 'so-keepalive' is a uWSGI option procmaster does not support; ignored",
        "site.ini:3: option 'procname-append' is not supported (not implemented yet); ignored",
    ]
    assert "so-keepalive" not in cfg.custom


def test_blocking_unsupported_option_is_an_error(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nraw-socket = 127.0.0.1:9000\n")
    assert msg.startswith("site.ini:2: option 'raw-socket' is not supported: ")
    assert error(in_tmp, "[uwsgi]\nmount-asap = proc none /proc\n").startswith(
        "site.ini:2: option 'mount-asap' is not supported: "
    )


def test_custom_key_that_starts_like_a_family_stays_custom(tmp_path):
    cfg = load_ini(
        tmp_path,
        "[uwsgi]\ncache_dir = /var/cache\nhook_dir = /x\nprint = %(cache_dir)%(hook_dir)\n",
    )
    assert cfg.print == ["/var/cache/x"]


def test_strict_makes_unknown_keys_fatal(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nstrict = true\nprocesess = 4\nproject = x\nchdir = %(project)\n")
    assert msg == (
        "site.ini:3: unknown option 'procesess' (did you mean 'processes'?) (strict mode: declare "
        "placeholders with set-placeholder = NAME=VALUE)\n"
        "site.ini:4: unknown option 'project' (strict mode: declare placeholders with "
        "set-placeholder = NAME=VALUE)"
    )


def test_strict_applies_to_keys_above_it_but_not_to_real_uwsgi_options(in_tmp):
    # uWSGI's strict mode refuses names it does not know, nothing else: a real uWSGI
    # option procmaster reads without its effect stays a warning
    msg = error(in_tmp, "[uwsgi]\nprocname-apend = x\nstrict\n")
    assert msg.startswith("site.ini:2: unknown option 'procname-apend'")
    cfg = load_ini(in_tmp, "[uwsgi]\nprocname-append = x\nreload-os-env\nstrict\n")
    assert cfg.warnings == [
        "site.ini:2: option 'procname-append' is not supported (not implemented yet); ignored",
        "site.ini:3: option 'reload-os-env' is a uWSGI option procmaster does not support; ignored",
    ]


def test_strict_allows_declared_placeholders(tmp_path):
    cfg = load_ini(
        tmp_path,
        "[uwsgi]\nstrict = true\nset-placeholder = project=shop\nset-ph = n=2\n"
        "module = %(project).wsgi\nprocesses = %(n)\n",
    )
    assert cfg.module == "shop.wsgi"
    assert cfg.processes == 2
    assert cfg.custom == {"project": "shop", "n": "2"}


def test_set_sets_options_and_placeholders(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nset = processes=3\nset = base=/srv\nchdir = %(base)\n")
    assert cfg.processes == 3
    assert cfg.chdir == "/srv"
    assert cfg.warnings == []


def test_set_placeholder_cannot_name_an_option(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nset-placeholder = processes=3\n")
    assert msg == (
        "site.ini:2: option 'set-placeholder': 'processes' is an option, not a placeholder "
        "(use 'set = processes=...' or 'processes = ...')"
    )


def test_plugins_accepted(in_tmp):
    cfg = load_ini(in_tmp, "[uwsgi]\nplugins = python3\nplugin = python311,http\nplugins = php\n")
    assert cfg.plugins == ["python3", "python311,http", "php"]
    assert cfg.warnings == [
        "site.ini:4: plugin 'php' is not available: procmaster runs Python WSGI apps only; ignored"
    ]


def test_accepted_options_are_silent(tmp_path):
    cfg = load_ini(
        tmp_path,
        "[uwsgi]\nenable-threads = true\nsingle-interpreter = true\nthunder-lock = true\n"
        "no-orphans = true\ndie-on-term = true\n",
    )
    assert cfg.warnings == []
    assert cfg.die_on_term is True


def test_cli_only_options_are_refused_in_files(in_tmp):
    assert error(in_tmp, "[uwsgi]\nhelp = true\n") == (
        "site.ini:2: option 'help' can only be given on the command line"
    )


# -- includes -------------------------------------------------------------------------------------


def test_ini_include_is_read_at_that_point(tmp_path):
    write(tmp_path, "base.ini", "[uwsgi]\nprocesses = 2\nsocket = :2\n")
    cfg = load_ini(tmp_path, "[uwsgi]\nsocket = :1\nini = base.ini\nsocket = :3\n")
    assert cfg.socket == [":1", ":2", ":3"]
    assert cfg.processes == 2
    assert cfg.files == [str(tmp_path / "site.ini"), str(tmp_path / "base.ini")]
    assert [e.key for e in cfg.entries] == ["ini", "socket", "ini", "processes", "socket", "socket"]


def test_later_scalars_override_included_ones(tmp_path):
    write(tmp_path, "base.ini", "[uwsgi]\nprocesses = 2\nlisten = 50\n")
    cfg = load_ini(tmp_path, "[uwsgi]\nini = base.ini\nprocesses = 8\n")
    assert cfg.processes == 8 and cfg.listen == 50


def test_include_relative_to_the_including_file(in_tmp):
    write(in_tmp, "conf/common/log.ini", "[uwsgi]\nlogto = /var/log/app.log\nprocesses = x\n")
    write(in_tmp, "conf/site.ini", "[uwsgi]\nini = common/log.ini\n")
    with pytest.raises(ConfigError) as exc:
        load(["conf/site.ini"], environ={})
    assert (
        str(exc.value) == "conf/common/log.ini:3: option 'processes': expected an integer, got 'x'"
    )


def test_include_with_section_and_same_file_section(tmp_path):
    write(tmp_path, "base.ini", "[uwsgi]\nprocesses = 2\n[big]\nprocesses = 16\n")
    cfg = load_ini(
        tmp_path,
        "[uwsgi]\nini = base.ini:big\nini = :extra\n[extra]\nlisten = 10\nmaster = true\n",
    )
    assert cfg.processes == 16
    assert cfg.listen == 10 and cfg.master is True


def test_inherit_and_include(tmp_path):
    write(tmp_path, "tmpl.ini", "[uwsgi]\nprocesses = 2\nmaster = true\n")
    cfg = load_ini(
        tmp_path, "[uwsgi]\ninherit = tmpl.ini\nprocesses = 4\ninclude = tmpl.ini:uwsgi\n"
    )
    assert cfg.processes == 2
    assert cfg.master is True
    assert cfg.inherit == ["tmpl.ini"]
    assert cfg.include == ["tmpl.ini:uwsgi"]


def test_include_may_use_placeholders_set_above(tmp_path):
    write(tmp_path, "envs/prod.ini", "[uwsgi]\nprocesses = 8\n")
    cfg = load_ini(tmp_path, "[uwsgi]\nenv_name = prod\nini = %denvs/%(env_name).ini\n")
    assert cfg.processes == 8


def test_include_loop_names_the_chain(in_tmp):
    import shutil

    for name in ("loop_a.ini", "loop_b.ini"):
        shutil.copy(DATA / name, in_tmp / name)
    with pytest.raises(ConfigError) as exc:
        load(["--ini", "loop_a.ini"], environ={})
    assert str(exc.value) == "loop_b.ini:2: include loop: loop_a.ini -> loop_b.ini -> loop_a.ini"


def test_same_file_section_loop(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nini = :a\n[a]\nini = :uwsgi\n")
    assert msg == "site.ini:4: include loop: site.ini -> site.ini:a -> site.ini"


def test_including_the_same_file_twice_is_not_a_loop(tmp_path):
    write(tmp_path, "common.ini", "[uwsgi]\nsocket = :1\n")
    cfg = load_ini(tmp_path, "[uwsgi]\nini = common.ini\nini = common.ini\n")
    assert cfg.socket == [":1", ":1"]


def test_missing_ini_file(in_tmp):
    with pytest.raises(ConfigError) as exc:
        load(["--ini", "x.ini"], environ={})
    assert str(exc.value) == "cannot read 'x.ini': No such file or directory"


def test_missing_included_file(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nmaster = true\nini = other.ini\n")
    assert msg == "site.ini:3: cannot read 'other.ini': No such file or directory"


def test_other_config_formats_are_refused(in_tmp):
    msg = error(in_tmp, "[uwsgi]\nyaml = site.yaml\n")
    assert msg == (
        "site.ini:2: option 'yaml' is not supported: only INI configuration is read; "
        "convert this file to INI"
    )


def test_data_dir_site(monkeypatch):
    monkeypatch.chdir(DATA)
    cfg = load(["site.ini"], environ={})
    assert cfg.module == "shop.wsgi:application"
    assert cfg.chdir == f"{DATA}/"
    assert cfg.socket == ["/tmp/site.sock"]
    assert cfg.processes == 4
    assert cfg.buffer_size == 8192
    assert cfg.master is True and cfg.vacuum is True
    assert cfg.origin("buffer-size") == "base.ini:3"
    assert cfg.origin("processes") == "site.ini:9"
    assert cfg.warnings == []
    staging = load(["site.ini", "--ini", "base.ini:staging"], environ={})
    assert staging.processes == 1


# -- the result -------------------------------------------------------------------------------


def test_config_is_frozen(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nprocesses = 2\n")
    with pytest.raises(AttributeError):
        cfg.processes = 3
    with pytest.raises(AttributeError):
        del cfg.processes


def test_get_by_name_alias_and_custom(tmp_path):
    cfg = load_ini(
        tmp_path, "[uwsgi]\nworkers = 3\nlazy = true\nmine = 1\nprocname-prefix-spaced = app\n"
    )
    assert cfg.get("processes") == 3
    assert cfg.get("workers") == 3
    assert cfg.get("lazy_apps") is True and cfg.lazy is True and cfg.lazy_apps is True
    assert cfg.procname_prefix == "app "
    assert cfg.get("procname-prefix-spaced") == "app "
    assert cfg.get("mine") == "1"
    assert cfg.get("nothing-here", None) is None
    with pytest.raises(KeyError):
        cfg.get("nothing-here")


def test_sockets_keep_declaration_order_across_kinds(tmp_path):
    cfg = load_ini(
        tmp_path,
        "[uwsgi]\nhttp-socket = :8000\nsocket = /tmp/a.sock\nfastcgi-socket = :9000\n"
        "uwsgi-socket = @abstract\nhttp-socket = [::1]:8001\n",
    )
    assert cfg.sockets_in_order() == [
        ("http-socket", ":8000"),
        ("socket", "/tmp/a.sock"),
        ("fastcgi-socket", ":9000"),
        ("uwsgi-socket", "@abstract"),
        ("http-socket", "[::1]:8001"),
    ]


def test_as_ini_renders_entries(tmp_path):
    cfg = load_ini(tmp_path, "[uwsgi]\nmaster\nprocesses = 2\n")
    text = cfg.as_ini()
    assert "[uwsgi]\n" in text
    assert "\nmaster = true\nprocesses = 2\n" in text
    assert text.startswith(";")


def test_entries_are_key_value_origin(in_tmp):
    cfg = load_ini(in_tmp, "[uwsgi]\nworkers = 2\n")
    (key, value, origin) = cfg.entries[1]
    assert (key, value, origin) == ("processes", "2", "site.ini:2")
    assert cfg.entries[0] == ("ini", "site.ini", "command line")
