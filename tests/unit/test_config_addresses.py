"""The one address parser (``procmaster.options.parse_address``, uWSGI 2.0's rules from
core/socket.c) and what the sockets build on it: ``sockets.sockaddr`` and the list of
declared sockets, read from the option table."""

from __future__ import annotations

import socket

import pytest

from procmaster import check, options, sockets
from procmaster.config import ConfigError, load
from procmaster.options import parse_address
from procmaster.sockets import sockaddr, socket_specs

# -- classification, as uwsgi_bind_sockets() does it ------------------------------------


@pytest.mark.parametrize(
    "text,kind,host,port,path",
    [
        # no ':' at all: a unix socket path (bind_to_unix)
        ("app.sock", "unix", "", 0, "app.sock"),
        ("./run/app.sock", "unix", "", 0, "./run/app.sock"),
        ("/run/app-8000.sock", "unix", "", 0, "/run/app-8000.sock"),
        # '@' first: a Linux abstract name; procmaster keeps a ':' inside it
        ("@app", "abstract", "", 0, "app"),
        ("@app:1", "abstract", "", 0, "app:1"),
        # a ':': TCP, the last ':' separates the port
        (":8000", "tcp", "", 8000, ""),
        (": 5000", "tcp", "", 5000, ""),
        ("localhost:8000", "tcp", "localhost", 8000, ""),
        ("10.0.0.1:0", "tcp", "10.0.0.1", 0, ""),
        # '[...]:port': IPv6, with a scope id too
        ("[::1]:8000", "tcp", "::1", 8000, ""),
        ("[fe80::1%lo]:80", "tcp", "fe80::1%lo", 80, ""),
    ],
)
def test_address_classification(text, kind, host, port, path):
    a = parse_address(text)
    assert (a.kind, a.host, a.port, a.path) == (kind, host, port, path)
    assert a.text == text


@pytest.mark.parametrize("text", ["/tmp/app:1.sock", "./run/a:b", "/srv/x:8000", "run/a:b:c"])
def test_a_unix_path_with_a_colon_is_refused_and_said_so(text):
    # uWSGI 2.0 reads any name containing ':' as host:port (strrchr in
    # uwsgi_bind_sockets), so such a path never was a unix socket there; the two
    # parsers procmaster had disagreed on it (one bound a unix socket, one refused)
    with pytest.raises(ValueError, match="a unix socket path cannot contain ':'"):
        parse_address(text)
    with pytest.raises(ValueError, match="a unix socket path cannot contain ':'"):
        sockaddr(text)


def test_a_unix_path_with_a_colon_is_a_config_error_naming_the_line(tmp_path):
    ini = tmp_path / "site.ini"
    ini.write_text("[uwsgi]\nmodule = app\nsocket = /tmp/app:1.sock\n")
    with pytest.raises(ConfigError) as exc:
        load(["--ini", str(ini)], environ={})
    message = str(exc.value)
    assert message.startswith(f"{ini}:3:") and "option 'socket'" in message
    assert "cannot contain ':'" in message and "got '/tmp/app:1.sock'" in message


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "expected an address"),
        ("@", "abstract socket name"),
        ("@" + "x" * 107, "at most 106 bytes"),
        ("/" + "x" * 107, "at most 107 bytes"),
        ("::1:8000", "needs brackets"),
        ("[::1]", "expected [ipv6]:port"),
        ("[::1]:", "expected a port number"),
        ("host:65536", "expected a port number"),
        ("host:-1", "expected a port number"),
        ("a b:80", "expected host:port"),
    ],
)
def test_bad_address_shapes(text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_address(text)


# -- sockaddr: what socket.bind takes ----------------------------------------------------


@pytest.mark.parametrize(
    "text,family,addr",
    [
        (":8000", socket.AF_INET, ("0.0.0.0", 8000)),
        (": 5000", socket.AF_INET, ("0.0.0.0", 5000)),
        ("127.0.0.1:0", socket.AF_INET, ("127.0.0.1", 0)),
        ("localhost:80", socket.AF_INET, ("localhost", 80)),
        ("[::1]:8000", socket.AF_INET6, ("::1", 8000)),
        ("[::]:80", socket.AF_INET6, ("::", 80)),
        ("/run/app.sock", socket.AF_UNIX, "/run/app.sock"),
        ("app.sock", socket.AF_UNIX, "app.sock"),
        ("@app", socket.AF_UNIX, "\0app"),
        ("@app:1", socket.AF_UNIX, "\0app:1"),
    ],
)
def test_sockaddr(text, family, addr):
    assert sockaddr(text) == (family, addr)


def test_sockets_has_no_second_parser():
    # the name sockets uses is the table's parser itself, not a second one
    assert getattr(sockets, "parse_address", parse_address) is parse_address
    assert not hasattr(sockets, "_port")


# -- the table says which options declare sockets and which name watched paths ----------


def test_socket_options_come_from_the_table():
    assert options.socket_options() == {
        "socket": "uwsgi",
        "uwsgi-socket": "uwsgi",
        "http-socket": "http",
        "http11-socket": "http",
        "fastcgi-socket": "fastcgi",
        "scgi-socket": "scgi",
        "http": "http",
        "https": "http",
        "https-socket": "http",
        "ssl-socket": "uwsgi",
    }
    assert not hasattr(sockets, "SOCKET_OPTIONS")


def test_watch_options_come_from_the_table():
    assert options.watch_options() == {
        "touch-logrotate": "logrotate",
        "touch-logreopen": "logreopen",
        "touch-reload": "reload",
        "touch-chain-reload": "chain",
        "touch-workers-reload": "workers",
        "fs-reload": "reload",
    }
    assert not hasattr(check, "WATCHED_OPTIONS")


def test_socket_specs_in_declaration_order_across_options(config):
    cfg = config(
        "--http-socket",
        ":8001",
        "--socket",
        "/tmp/a.sock",
        "--uwsgi-socket",
        "@b",
        "--fastcgi-socket",
        "127.0.0.1:9000",
        "--socket",
        ":8002",
        "--scgi-socket",
        ":8003",
        "--http",
        " :8004",
    )
    specs = socket_specs(cfg)
    assert [(s.option, s.address, s.proto, s.origin) for s in specs] == [
        ("http-socket", ":8001", "http", "command line"),
        ("socket", "/tmp/a.sock", "uwsgi", "command line"),
        ("uwsgi-socket", "@b", "uwsgi", "command line"),
        ("fastcgi-socket", "127.0.0.1:9000", "fastcgi", "command line"),
        ("socket", ":8002", "uwsgi", "command line"),
        ("scgi-socket", ":8003", "scgi", "command line"),
        ("http", ":8004", "http", "command line"),
    ]
    assert [(o, a.strip()) for o, a in cfg.sockets_in_order()] == [
        (s.option, s.address) for s in specs
    ]


def test_socket_specs_origins_name_the_ini_line(tmp_path):
    ini = tmp_path / "site.ini"
    ini.write_text("[uwsgi]\nsocket = :9001\nhttp-socket = :9002\nuwsgi-socket = :9003\n")
    specs = socket_specs(load(["--ini", str(ini)], environ={}))
    assert [(s.option, s.origin) for s in specs] == [
        ("socket", f"{ini}:2"),
        ("http-socket", f"{ini}:3"),
        ("uwsgi-socket", f"{ini}:4"),
    ]


def test_a_stale_path_that_is_not_a_socket_is_never_removed(tmp_path):
    path = tmp_path / "app.sock"
    path.write_text("not a socket")
    for probe in (True, False):
        with pytest.raises(OSError, match="exists and is not a socket"):
            sockets._clear_stale(str(path), probe=probe)
    assert path.read_text() == "not a socket"
    sockets._clear_stale(str(tmp_path / "missing.sock"), probe=True)  # nothing there: fine
