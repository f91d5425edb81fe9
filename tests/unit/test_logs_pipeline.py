"""The logging pieces without processes: logger values as uWSGI reads them,
encoders (format/json variables, chains, use_for), routes and the pipeline's
dispatch, conditional request logging, and rotation of a file logger."""

from __future__ import annotations

import gzip
import json
import os
import re
import time
import zlib
from types import SimpleNamespace

import pytest

from procmaster.logs.encoders import Encoder, EncoderError, encode, parse_encoders
from procmaster.logs.request import RequestLogger, request_logger
from procmaster.logs.sinks import (
    FileSink,
    LoggerError,
    Pipeline,
    parse_logger,
    parse_route,
)


def test_logger_values_as_uwsgi_reads_them():
    spec = parse_logger("file:/var/log/app.log")
    assert (spec.name, spec.plugin, spec.path, spec.maxsize) == (
        None,
        "file",
        "/var/log/app.log",
        0,
    )
    spec = parse_logger("file:logfile=/var/log/a.log,maxsize=2000,backupname=/var/log/a.old")
    assert (spec.path, spec.maxsize, spec.backupname) == ("/var/log/a.log", 2000, "/var/log/a.old")
    spec = parse_logger("access file:/var/log/access.log")
    assert (spec.name, spec.plugin, spec.path) == ("access", "file", "/var/log/access.log")
    # a space after a colon is part of the argument, not a name
    spec = parse_logger("file:/var/log/my app.log")
    assert (spec.name, spec.path) == (None, "/var/log/my app.log")
    assert parse_logger("stdio").plugin == "stdio"
    assert parse_logger("syslog:myapp").plugin == "syslog"  # reported at start, not here
    assert parse_logger("fd:3").arg == "3"


@pytest.mark.parametrize(
    "value, why",
    [
        ("file:logfile=/x,maxsize=10M", "maxsize"),
        ("file:maxsize=100", "logfile key is missing"),
        ("file:logfile=/x,colour=red", "unknown key"),
        ("file:logfile=/x,oops", "KEY=VALUE"),
        ("file:", "file:PATH"),
        ("fd:stderr", "fd:N"),
    ],
)
def test_malformed_loggers_are_refused_with_the_reason(value, why):
    with pytest.raises(LoggerError, match=why):
        parse_logger(value)


def test_routes():
    name, regex = parse_route("errors (error|Traceback)")
    assert name == "errors" and regex.search(b"a Traceback here")
    for bad in ("errors", "", "x (unclosed"):
        with pytest.raises(LoggerError):
            parse_route(bad)


def test_format_encoder_variables():
    enc = Encoder("format [${strftime:%Y}] ${unix} ${millis} ${micros} <${msg}> ${nope}$x")
    out = enc.func(b"hello\n").decode()
    year, unix, millis, micros, rest = out.split(" ", 4)
    assert year == f"[{time.strftime('%Y')}]"
    now = time.time()
    assert abs(int(unix) - now) < 60 and abs(int(millis) / 1e3 - now) < 60
    assert abs(int(micros) / 1e6 - now) < 60
    assert rest == "<hello> $x"  # msg without its newline; unknown variables are empty
    assert Encoder("format ${msgnl}").func(b"hello\n") == b"hello\n"


def test_json_encoder_escapes_the_message():
    enc = Encoder('json {"msg":"${msg}","nl":"${msgnl}"}')
    hostile = 'a "quoted" \\ back\tslash \x01 ünï\n'.encode()
    record = json.loads(enc.func(hostile))
    assert record == {"msg": hostile.decode()[:-1], "nl": hostile.decode()}
    assert json.loads(enc.func(b"\xff\xfe raw bytes\n"))["msg"] == "\\xff\\xfe raw bytes"


def test_simple_encoders_and_compression():
    assert Encoder("prefix [app] ").func(b"x\n") == b"[app] x\n"
    assert Encoder("suffix <").func(b"x\n") == b"x\n<"
    assert Encoder("nl").func(b"x") == b"x\n"
    assert gzip.decompress(Encoder("gzip").func(b"x\n")) == b"x\n"
    assert zlib.decompress(Encoder("compress").func(b"x\n")) == b"x\n"
    with pytest.raises(EncoderError, match="does not exist"):
        Encoder("base64")


def test_encoders_chain_in_order_and_use_for_names_one_logger():
    chain = parse_encoders(["prefix A", "suffix Z:", "prefix:errors B", "nl"])
    assert chain[1].use_for is None  # "suffix Z:" is the suffix "Z:"
    assert encode(chain, None, b"m") == b"AmZ:\n"
    assert encode(chain, "errors", b"m") == b"BAmZ:\n"
    assert encode(chain, "other", b"m") == b"AmZ:\n"


class Sink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.lines.append(data)


def test_pipeline_routes_then_unnamed_then_plain():
    plain, first, second, errors, slow = Sink(), Sink(), Sink(), Sink(), Sink()
    routes = [
        (re.compile(b"error"), errors, "errors"),
        (re.compile(b"slow|error"), slow, "slow"),
    ]
    chain = parse_encoders(["prefix:errors >"])
    pipe = Pipeline([first, second], routes, chain, plain.write)
    pipe.emit(b"an error\n")
    pipe.emit(b"fine\n")
    assert errors.lines == [b">an error\n"] and slow.lines == [b"an error\n"]
    assert first.lines == second.lines == [b"fine\n"] and plain.lines == []
    Pipeline([], [], [], plain.write).emit(b"x\n")
    assert plain.lines == [b"x\n"]


def test_file_logger_rotates_past_maxsize_without_losing_lines(tmp_path):
    path = tmp_path / "app.log"
    spec = parse_logger(f"file:logfile={path},maxsize=100")
    notices: list[str] = []
    sink = FileSink(spec, notices.append)
    try:
        for i in range(30):
            sink.write(f"line {i:02d} of the log\n".encode())
    finally:
        os.close(sink.fd)
    files = [path, *sorted(tmp_path.glob("app.log.*"))]
    assert len(files) > 2 and not notices
    text = "".join(p.read_text() for p in files)
    assert all(f"line {i:02d} " in text for i in range(30))


def _cfg(**kw):
    base = dict(
        disable_logging=True,
        log_4xx=False,
        log_5xx=False,
        log_zero=False,
        log_slow=0,
        log_big=0,
        log_sendfile=False,
        log_ioerror=False,
        log_x_forwarded_for=False,
        memory_report=False,
        log_date=False,
        logformat_strftime=False,
    )
    base.update(kw)
    ns = SimpleNamespace(**base)
    ns.get = lambda name: getattr(ns, name.replace("-", "_"), None)
    return ns


def test_no_request_logger_when_nothing_is_ever_logged():
    assert request_logger(_cfg(), 1) is None
    assert request_logger(_cfg(disable_logging=False), 1).every
    assert not request_logger(_cfg(log_4xx=True), 1).every


@pytest.mark.parametrize(
    "option, value, hit, miss",
    [
        ("log_4xx", True, ("404", 10, 0.0, False), ("500", 10, 0.0, False)),
        ("log_5xx", True, ("502", 10, 0.0, False), ("404", 10, 0.0, False)),
        ("log_zero", True, ("200", 0, 0.0, False), ("200", 1, 0.0, False)),
        ("log_slow", 300, ("200", 10, 0.3, False), ("200", 10, 0.299, False)),
        ("log_big", 1000, ("200", 1000, 0.0, False), ("200", 999, 0.0, False)),
        ("log_sendfile", True, ("200", 10, 0.0, True), ("200", 10, 0.0, False)),
    ],
)
def test_conditional_logging(option, value, hit, miss):
    logger = RequestLogger(_cfg(**{option: value}), 1)
    assert logger.wanted(*hit) and not logger.wanted(*miss)


def test_ftime_takes_log_date_format_with_logformat_strftime():
    cfg = _cfg(disable_logging=False, log_date="%Y!", logformat_strftime=True)
    cfg.get = lambda name: "%(ftime)" if name == "log-format" else None
    line = RequestLogger(cfg, 1).line({}, "200 OK", 0, 0, 0, time.time(), time.time(), 1, 1)
    assert line == time.strftime("%Y!") + "\n"
    cfg.logformat_strftime = False
    line = RequestLogger(cfg, 1).line({}, "200 OK", 0, 0, 0, 0.0, 0.0, 1, 1)
    assert line == time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(0)) + "\n"


_ENVIRONS = [
    {"REQUEST_METHOD": "GET", "REQUEST_URI": "/a?b=1", "REMOTE_ADDR": "10.0.0.1"},
    {"SCRIPT_NAME": "/app", "PATH_INFO": "/x", "QUERY_STRING": "q=2", "REMOTE_USER": "bob"},
    {"SCRIPT_NAME": "", "PATH_INFO": "/y", "REQUEST_URI": "", "HTTP_USER_AGENT": "ua"},
    {"HTTP_X_FORWARDED_FOR": "1.2.3.4", "REMOTE_ADDR": "10.0.0.2", "SERVER_PROTOCOL": "HTTP/1.1"},
    {"CONTENT_LENGTH": "3", "X_APP_NUMBER": 7, "X_APP_BYTES": b"xy", "wsgi.input": object()},
    {"uwsgi.logvars": {"mine": "v"}, "HTTP_HOST": "h", "HTTP_REFERER": "r", "PATH_INFO": "/"},
]


@pytest.mark.parametrize("forwarded", [False, True])
@pytest.mark.parametrize("environ", _ENVIRONS)
def test_a_compiled_line_says_what_each_variable_says_alone(environ, forwarded):
    """The generated values function (the common variables inline) gives, for
    every variable uWSGI knows plus var.X and a logvar, what the variable's own
    reading gives."""
    from procmaster.logs.request import _KNOWN

    names = sorted(_KNOWN - {"rss", "vsz"}) + ["var.HTTP_HOST", "mine", "nosuch"]
    cfg = _cfg(disable_logging=False, log_x_forwarded_for=forwarded)
    cfg.get = lambda name: " ".join(f"%({n})" for n in names) if name == "log-format" else None
    logger = RequestLogger(cfg, 3)
    args = ("404 Not Found", 12, 34, 2, 1000.25, 1000.5, 5, 9)
    line = logger.line(environ, *args)
    alone = []
    for name in names:
        if name == "mine" or name == "nosuch":
            found = environ.get("uwsgi.logvars")
            alone.append(found.get(name, "-") if found else "-")
        else:
            alone.append(logger._value(name, environ, *args))
    assert line == " ".join(map(str, alone)) + "\n"


@pytest.mark.parametrize("environ", _ENVIRONS)
def test_vars_and_pktsize_count_the_cgi_variables_with_text_values(environ):
    from procmaster.logs.request import _pktsize, _vars

    cgi = {k: v for k, v in environ.items() if k.isupper()}
    assert _vars(environ) == len(cgi)
    assert _pktsize(environ) == sum(len(k) + len(v) for k, v in cgi.items() if isinstance(v, str))


def test_ctime_formatted_once_per_second_is_time_ctime():
    """``%(ctime)`` is kept per second: every value is what ``time.ctime`` says,
    across second boundaries, going back in time and far apart."""
    import time

    from procmaster.logs.request import _ctime

    for when in (1000.0, 1000.25, 1000.999, 1001.0, 999.5, 1_764_650_000.4, 1000.1):
        assert _ctime(when) == time.ctime(when)


def test_cgi_keys_of_environs_are_kept_bounded_and_start_again(monkeypatch):
    """The CGI keys of an environ's shape are cached: environs that never repeat
    keep the cache within its bound, and a shape that repeats is kept again."""
    from procmaster.logs import request

    monkeypatch.setattr(request, "_SHAPES", {})
    for n in range(request._SHAPES_MAX * 3):
        environ = {"REQUEST_METHOD": "GET", f"HTTP_X_{n}": "1", "wsgi.input": None}
        assert request._vars(environ) == 2
        assert len(request._SHAPES) <= request._SHAPES_MAX
    environ = {"REQUEST_METHOD": "GET", "HTTP_HOST": "x"}
    first = request._cgi_keys(environ)
    assert first == (("REQUEST_METHOD", "HTTP_HOST"), len("REQUEST_METHOD") + len("HTTP_HOST"))
    assert request._cgi_keys(dict(environ)) is first
