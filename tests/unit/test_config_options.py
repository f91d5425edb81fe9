"""The option table: integrity, look-ups, suggestions, value types, address shapes,
and that --help and docs/options.md come from it (and the committed docs are current)."""

from __future__ import annotations

import pytest
from support import ROOT

from procmaster import helpdoc, options
from procmaster.options import (
    ACCEPTED,
    FULL,
    GROUPS,
    OPTIONS,
    PARTIAL,
    STATUSES,
    TYPES,
    UNSUPPORTED,
    convert,
    lookup,
    lookup_short,
    parse_address,
    suggest,
)

REQUIRED = """
ini socket uwsgi-socket http-socket http fastcgi-socket scgi-socket processes master module
callable wsgi-file chdir pythonpath virtualenv env lazy-apps lazy need-app strict plugins
buffer-size listen disable-logging log-format log-date logto logto2 log-maxsize log-backupname
log-reopen req-logger logger daemonize pidfile pidfile2 safe-pidfile vacuum die-on-term procname
procname-prefix procname-prefix-spaced procname-master auto-procname harakiri harakiri-verbose
max-requests max-requests-delta reload-on-rss reload-on-as evil-reload-on-rss max-worker-lifetime
reload-mercy worker-reload-mercy socket-timeout http-keepalive post-buffering limit-post
chmod-socket chown-socket uid gid threads enable-threads offload-threads single-interpreter
thunder-lock no-orphans memory-report locks mount manage-script-name static-map static-map2
static-check static-index static-safe touch-reload touch-chain-reload touch-workers-reload
touch-logrotate touch-logreopen fs-reload py-autoreload cheaper cheaper-initial cheaper-step
cheaper-algo cheaper-overload stats stats-http master-fifo max-fd attach-daemon
smart-attach-daemon cron print show-config gevent cache2 cache route mule spooler emperor
help version check hook-asap inherit include
""".split()

SUPPORTED_NOW = """
socket uwsgi-socket http-socket fastcgi-socket scgi-socket processes master module callable
wsgi-file chdir
pythonpath virtualenv env lazy-apps lazy need-app strict buffer-size listen disable-logging
log-format log-date logto pidfile vacuum chmod-socket socket-timeout http-keepalive limit-post
post-buffering reload-mercy worker-reload-mercy mount manage-script-name help version check
print show-config ini touch-reload touch-chain-reload touch-workers-reload touch-logreopen fs-reload
max-fd
static-map static-map2 static-check static-index static-safe log-maxsize log-backupname log-reopen
log-x-forwarded-for memory-report attach-daemon smart-attach-daemon cron
""".split()
# the kernel's process name only, not the command line
PARTIAL_NOW = (
    "procname-prefix procname-prefix-spaced auto-procname py-autoreload "
    "procname procname-master http daemonize logger req-logger".split()
)


# -- the table ----------------------------------------------------------------------


def test_every_required_option_is_declared():
    missing = [n for n in REQUIRED if lookup(n) is None]
    assert missing == []


def test_supported_options_are_full():
    assert [n for n in SUPPORTED_NOW if lookup(n).status != FULL] == []
    assert [n for n in PARTIAL_NOW if lookup(n).status != PARTIAL] == []
    # no effect by design, not missing features
    assert lookup("plugins").status == ACCEPTED
    assert lookup("die-on-term").status == ACCEPTED
    assert lookup("enable-threads").status == ACCEPTED


def test_table_is_well_formed():
    for opt in OPTIONS:
        assert opt.type in TYPES, opt
        assert opt.status in STATUSES, opt
        assert opt.group in GROUPS, opt
        assert opt.help and not opt.help.endswith("."), opt
        if opt.status != FULL:
            assert opt.note, f"{opt.name}: a {opt.status} option must say why in its note"
        if opt.blocking:
            assert opt.status == UNSUPPORTED, opt
        if opt.store:
            assert lookup(opt.store) is not None and lookup(opt.store).store is None
        if opt.short:
            assert len(opt.short) == 1
        if opt.multi:
            assert opt.default == []


def test_defaults_are_values_of_their_type():
    for opt in OPTIONS:
        if opt.default is None or opt.multi:
            continue
        if opt.type == "bool" or opt.type == "bool-or-str":
            assert isinstance(opt.default, bool), opt
        elif opt.type in ("int", "size", "megabytes"):
            assert isinstance(opt.default, int) and not isinstance(opt.default, bool), opt
        elif opt.type == "seconds":
            assert isinstance(opt.default, (int, float)), opt
        else:
            assert convert(opt, str(opt.default)) == opt.default, opt


def test_uwsgi_defaults():
    assert lookup("buffer-size").default == 4096
    assert lookup("listen").default == 100
    assert lookup("socket-timeout").default == 4
    assert lookup("reload-mercy").default == 60
    assert lookup("worker-reload-mercy").default == 60
    assert lookup("processes").default == 1
    assert lookup("callable").default == "application"


def test_multi_options():
    for name in (
        "socket uwsgi-socket http-socket http fastcgi-socket scgi-socket env mount static-map "
        "static-map2 touch-reload touch-chain-reload touch-workers-reload fs-reload pythonpath "
        "attach-daemon cron ini print master-fifo"
    ).split():
        assert lookup(name).multi, name
    for name in "processes module chdir buffer-size master".split():
        assert not lookup(name).multi, name


def test_names_are_unique_and_real_uwsgi_names():
    seen = set()
    for opt in OPTIONS:
        names = [opt.name, *opt.aliases] if "*" not in opt.name else list(opt.aliases)
        for n in names:
            assert n not in seen
            seen.add(n)
    # everything declared is a uWSGI option, except procmaster's own --check and
    # --chain-reload PIDFILE, --check-no-import, --reload PIDFILE --wait [--wait-timeout],
    # the switch that lets emperor-tyrant run root-owned vassals (uWSGI always
    # refuses them), and the trusted networks of the PROXY protocol and of forwarded
    # headers (uWSGI has none; gunicorn's names)
    own = {
        "proxy-allow-ips",
        "forwarded-allow-ips",
        "check",
        "check-no-import",
        "chain-reload",
        "wait",
        "wait-timeout",
        "emperor-tyrant-allow-root",
        # uWSGI's statsd pusher options after 2.0 (its master branch), taken as named there
        "statsd-all-gauges",
        "statsd-no-workers",
        "asgi",  # an ASGI app (uWSGI never shipped ASGI) and its loop
        "asgi-loop",
        "ssl-tickets-rotate",  # TLS session ticket keys renewed on a timer (uWSGI never does)
    }
    not_uwsgi = [n for n in seen if not options.is_uwsgi_option(n) and n not in own]
    assert not_uwsgi == []


def test_option_attributes_do_not_shadow_config_members():
    from procmaster.config import Config

    members = {n for n in dir(Config) if not n.startswith("__")} | {
        "warnings",
        "argv",
        "files",
        "custom",
        "entries",
    }
    assert [o.attr for o in OPTIONS if o.attr in members] == []


# -- look-ups -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alias,name",
    [
        ("workers", "processes"),
        ("module", "module"),
        ("wsgi", "module"),
        ("home", "virtualenv"),
        ("venv", "virtualenv"),
        ("pyhome", "virtualenv"),
        ("pp", "pythonpath"),
        ("python-path", "pythonpath"),
        ("file", "wsgi-file"),
        ("logformat", "log-format"),
        ("logdate", "log-date"),
        ("chmod", "chmod-socket"),
        ("plugin", "plugins"),
        ("set-ph", "set-placeholder"),
        ("stats-server", "stats"),
        ("usage", "help"),
        ("buffer_size", "buffer-size"),
        ("lazy_apps", "lazy-apps"),
        (" master ", "master"),
    ],
)
def test_lookup_resolves_aliases_and_underscores(alias, name):
    assert lookup(alias).name == name


@pytest.mark.parametrize(
    "letter,name",
    [
        ("s", "socket"),
        ("p", "processes"),
        ("M", "master"),
        ("w", "module"),
        ("H", "virtualenv"),
        ("b", "buffer-size"),
        ("l", "listen"),
        ("L", "disable-logging"),
        ("t", "harakiri"),
        ("z", "socket-timeout"),
        ("C", "chmod-socket"),
        ("d", "daemonize"),
        ("T", "enable-threads"),
        ("i", "single-interpreter"),
        ("m", "memory-report"),
        ("R", "max-requests"),
        ("Q", "spooler"),
        ("S", "set"),
        ("h", "help"),
    ],
)
def test_uwsgi_short_letters(letter, name):
    assert lookup_short(letter).name == name


def test_short_letters_are_not_names():
    assert lookup("p") is None
    assert lookup("M") is None


def test_lazy_is_its_own_option_storing_into_lazy_apps():
    assert lookup("lazy").name == "lazy"
    assert lookup("lazy").store == "lazy-apps"


def test_families_cover_real_uwsgi_names_only():
    assert lookup("hook-asap").name == "hook-*"
    assert lookup("hook-pre-app").name == "hook-*"
    assert lookup("route-host").name == "route-*"
    assert lookup("ifenv").name == "if-env"
    assert lookup("end-if").name == "endif"
    assert lookup("emperor-broodlord").name == "emperor-*"
    assert lookup("vassal-sos").name == "emperor-*"
    assert lookup("emperor-tyrant").name == "emperor-tyrant"
    assert lookup("hook-dir") is None
    assert lookup("cache-dir") is None
    assert lookup("nonsense") is None


def test_suggestions():
    assert suggest("procesess") == "processes"
    assert suggest("proceses") == "processes"
    assert suggest("workres") == "workers"
    assert suggest("http_sockets") == "http-socket"
    assert suggest("Master") == "master"
    assert suggest("zzqqx") is None
    assert options.did_you_mean("buffersize") == " (did you mean 'buffer-size'?)"
    assert options.did_you_mean("zzqqx") == ""


# -- value types ------------------------------------------------------------------------


def opt(name):
    return lookup(name)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("4096", 4096),
        ("64k", 65536),
        ("64K", 65536),
        ("1m", 1048576),
        ("2g", 2 * 1024**3),
        ("0", 0),
    ],
)
def test_size(value, expected):
    assert convert(opt("buffer-size") if expected else opt("limit-post"), value) == expected


@pytest.mark.parametrize("value", ["", "4 k", "1.5k", "-1", "1t", "k"])
def test_bad_size(value):
    with pytest.raises(ValueError, match="expected a size in bytes"):
        convert(opt("limit-post"), value)


def test_seconds_and_megabytes():
    assert convert(opt("socket-timeout"), "10") == 10
    assert convert(opt("socket-timeout"), "0.25") == 0.25
    assert isinstance(convert(opt("socket-timeout"), "10"), int)
    with pytest.raises(ValueError, match="seconds"):
        convert(opt("socket-timeout"), "10s")
    assert convert(opt("reload-on-rss"), "256") == 256 * 1024 * 1024


def test_mode():
    assert convert(opt("chmod-socket"), "660") == 0o660
    assert convert(opt("chmod-socket"), "0660") == 0o660
    assert convert(opt("chmod-socket"), "1") == 0o666
    assert convert(opt("chmod-socket"), "") == 0o666
    for bad in ("66", "888", "rw-rw----", "06600"):
        with pytest.raises(ValueError, match="octal mode"):
            convert(opt("chmod-socket"), bad)


def test_keyval_and_mapping():
    assert convert(opt("env"), "A=") == "A="
    for bad in ("A", "=x"):
        with pytest.raises(ValueError, match="NAME=VALUE"):
            convert(opt("env"), bad)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        convert(opt("mount"), "/app")


def test_log_date_is_bool_or_format():
    assert convert(opt("log-date"), "true") is True
    assert convert(opt("log-date"), "off") is False
    assert convert(opt("log-date"), "%Y") == "%Y"


def test_text_may_be_empty_str_may_not():
    assert convert(opt("print"), "") == ""
    with pytest.raises(ValueError):
        convert(opt("module"), "")


# -- addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,kind,host,port,path",
    [
        ("127.0.0.1:8000", "tcp", "127.0.0.1", 8000, ""),
        (":8000", "tcp", "", 8000, ""),
        ("localhost:0", "tcp", "localhost", 0, ""),
        ("0.0.0.0:65535", "tcp", "0.0.0.0", 65535, ""),
        ("[::1]:8000", "tcp", "::1", 8000, ""),
        ("[::]:80", "tcp", "::", 80, ""),
        ("/tmp/app.sock", "unix", "", 0, "/tmp/app.sock"),
        ("app.sock", "unix", "", 0, "app.sock"),
        ("@app", "abstract", "", 0, "app"),
    ],
)
def test_address_shapes(text, kind, host, port, path):
    a = parse_address(text)
    assert (a.kind, a.host, a.port, a.path) == (kind, host, port, path)
    assert a.ipv6 == text.startswith("[")


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "expected an address"),
        (":http", "expected a port number"),
        (":70000", "expected a port number"),
        ("host:", "expected a port number"),
        ("::1:8000", "needs brackets"),
        ("[::1]8000", "expected [ipv6]:port"),
        ("[zz]:80", "valid IPv6"),
        ("@", "abstract socket name"),
        ("/" + "x" * 200, "at most 107 bytes"),
        ("a b:80", "expected host:port"),
    ],
)
def test_bad_addresses(text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_address(text)


# -- help and docs -------------------------------------------------------------------------


def test_help_lists_every_option():
    text = helpdoc.render_help()
    assert text.startswith("Usage: procmaster")
    for o in OPTIONS:
        assert f"--{o.name}" in text, o.name
    assert "-p, --processes N" in text
    assert "--chmod-socket[=MODE]" in text
    assert "also --workers" in text
    for group in GROUPS:
        assert f"\n{group}:\n" in text


def test_markdown_has_a_row_per_option_with_status():
    text = helpdoc.render_markdown()
    for o in OPTIONS:
        rows = [line for line in text.splitlines() if line.startswith(f"| `{o.name}` |")]
        row = max(rows, key=lambda line: line.count(" | "))
        assert f"| {o.status}" in row


def test_committed_docs_are_up_to_date():
    committed = (ROOT / "docs" / "options.md").read_text()
    assert committed == helpdoc.render_markdown(), (
        "docs/options.md is stale: run python -m procmaster.helpdoc > docs/options.md"
    )
