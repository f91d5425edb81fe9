"""uwsgi.set_logvar/get_logvar: found without the environ, read by the request log."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from procmaster.api.logvars import current_environ, get_logvar, set_logvar
from procmaster.logs.request import RequestLogger


def _environ() -> dict:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.input": io.BytesIO()}


def _app(environ, start_response):
    return _deep()


def _deep():
    set_logvar("who", "bob")
    set_logvar(b"raw", b"\xff")
    return get_logvar("who"), get_logvar("raw"), get_logvar("nothing")


def test_the_app_sets_and_reads_its_request_variables_from_anywhere_below_it():
    env = _environ()
    assert _app(env, None) == (b"bob", b"\xff", None)
    assert env["uwsgi.logvars"] == {"who": "bob", "raw": "\udcff"}


def test_outside_a_request_it_is_a_system_error_as_in_uwsgi():
    with pytest.raises(SystemError):
        set_logvar("a", "b")
    with pytest.raises(SystemError):
        get_logvar("a")


def test_the_outermost_environ_wins_over_a_copy_made_by_a_middleware():
    def middleware(environ, start_response):
        env = dict(environ)  # an app copying the environ still tags the server's
        return current_environ() is environ and env is not environ

    assert middleware(_environ(), None)


def test_hostile_values_are_refused_or_kept_on_one_line():
    env = _environ()

    def app(environ, start_response):
        with pytest.raises(ValueError):
            set_logvar("k", "x" * 256)
        with pytest.raises(TypeError):
            set_logvar("k", 5)
        set_logvar("k", "a\r\nb")

    app(env, None)
    assert env["uwsgi.logvars"]["k"] == "a\\r\\nb"


def _logger(fmt: str) -> RequestLogger:
    cfg = SimpleNamespace(
        log_x_forwarded_for=False,
        memory_report=False,
        disable_logging=False,
        log_4xx=False,
        log_5xx=False,
        log_zero=False,
        log_slow=0,
        log_big=0,
        log_sendfile=False,
        log_ioerror=False,
        log_date=None,
        logformat_strftime=False,
    )
    cfg.get = lambda name: fmt if name == "log-format" else None
    return RequestLogger(cfg, 1)


def test_a_format_names_logvars_and_an_unset_one_is_a_dash():
    logger = _logger("%(method) who=%(who) none=%(none) v=%(var.PATH_INFO)")
    env = _environ()
    env["uwsgi.logvars"] = {"who": "bob"}
    assert logger.line(env, "200 OK", 0, 0, 0, 0.0, 0.0, 1, 1) == "GET who=bob none=- v=/\n"
    assert logger.line(_environ(), "200 OK", 0, 0, 0, 0.0, 0.0, 1, 1) == "GET who=- none=- v=/\n"
