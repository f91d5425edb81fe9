"""The worker's front door: route rules, then static files, then the app, and the
response headers the rules and ``add-header`` ask for.

Theory of operation
-------------------
``front_door(cfg, apps)`` is built once in each worker. With no route rule and no
``add-header`` it is simply the static file server (or None), so a plain request
pays nothing for routing. Otherwise ``Front.match(environ)`` -- the same call
the worker makes to the static files -- runs the rules in order:

* a rule whose regex (or condition) does not match is skipped;
* its action returns NEXT (go on), CONTINUE (stop routing: on to static files and
  the app), BREAK (the action answered: ``return``, ``break``, ``redirect``, a
  failed ``basicauth``, ``static``), or a label to go to;
* after the rules: a static file, else the app. ``addheader``/``delheader`` and
  ``add-header`` change the response's headers on their way to the client;
  ``donotlog`` marks the environ (``DONOTLOG``) so no request line is written.

Values rendered from the request that go into a header (``redirect``'s
``Location``, ``addheader``) are refused when they hold CR, LF or NUL: a
redirect answers 400, an added header is dropped. A ``goto`` loop stops after
``MAX_STEPS`` rules with a 500.

``match`` returns a WSGI callable or None (None: the worker finds the app itself).

Must not know: sockets, protocols, workers.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from ..logs import log
from ..static import file_app, static_files
from .rules import DONOTLOG, RouteError, Rule, compile_rules, header_lines, render

__all__ = ["DONOTLOG", "Front", "RouteError", "front_door", "header_lines"]

NEXT, CONTINUE, BREAK = -1, -2, -3
MAX_STEPS = 1000  # rules run for one request (a goto loop ends here)
_BAD = frozenset("\r\n\0")

WSGIApp = Callable[[dict, Callable], object]


def front_door(cfg, apps):
    """What the worker asks before calling the app: a ``Front`` when routes or
    ``add-header`` are configured, else the static files (or None)."""
    static = static_files(cfg)
    rules = compile_rules(cfg.entries)
    extra = header_lines(cfg.add_header)
    if not rules and not extra:
        return static
    return Front(rules, static, extra, apps)


class _State:
    """What the rules decided for one request."""

    __slots__ = ("add", "delete", "reply")

    def __init__(self) -> None:
        self.add: list[tuple[str, str]] = []
        self.delete: set[str] = set()
        self.reply: WSGIApp | None = None


class Front:
    """Rules, static files and extra headers in front of the app."""

    def __init__(self, rules: tuple[Rule, ...], static, extra: tuple, apps) -> None:
        self.rules = rules
        self.static = static
        self.extra = list(extra)
        self.apps = apps
        self.labels = {r.label: i for i, r in enumerate(rules) if r.label is not None}
        # add-header with one app: the same wrapper for every request, made once
        single = apps.single
        self.plain = _Headers(single, self.extra, ()) if self.extra and single else None

    def match(self, env: dict) -> WSGIApp | None:
        static = self.static
        if not self.rules:  # add-header alone
            app = static.match(env) if static is not None else None
            if app is None and self.plain is not None:
                return self.plain
            return _Headers(app or self._app(env), self.extra, ())
        state = self.route(env)
        app = state.reply
        if app is None and static is not None:
            app = static.match(env)
        add = self.extra + state.add if state.add else self.extra
        delete = state.delete
        if not add and not delete:
            return app  # None: the worker calls the app itself
        return _Headers(app or self._app(env), add, delete)

    def route(self, env: dict) -> _State:
        state = _State()
        rules = self.rules
        i, n, steps = 0, len(rules), 0
        while i < n:
            rule = rules[i]
            i += 1
            steps += 1
            if steps > MAX_STEPS:
                log(f"route: more than {MAX_STEPS} rules for one request (a goto loop?)")
                state.reply = _reply("500 Internal Server Error", [], b"route loop\n")
                break
            if rule.label is not None:
                continue
            m = None
            if rule.cond is not None:
                ok, m = _condition(rule, env)
                if ok == rule.negate:
                    continue
                if rule.negate:
                    m = None
            elif rule.regex is not None:
                m = rule.regex.search(env.get(rule.subject) or "")
                if m is None:
                    continue
            code = ACTIONS[rule.action](self, rule, m, env, state)
            if code == NEXT:
                continue
            if code == CONTINUE or code == BREAK:
                break
            i = code  # a goto: the rules after the label
        return state

    def _app(self, env: dict) -> WSGIApp:
        """The app the worker would call for this environ (mounts resolved)."""
        apps = self.apps
        app = apps.single
        if app is None:
            app, script_name, path_info = apps.resolve(env.get("PATH_INFO", ""))
            if app is None:
                return _reply("404 Not Found", [], b"no app mounted here\n")
            env["SCRIPT_NAME"] = env.get("SCRIPT_NAME", "").rstrip("/") + script_name
            env["PATH_INFO"] = path_info
        return app


class _Headers:
    """The wrapped app's response, with headers added and removed."""

    __slots__ = ("app", "add", "delete")

    def __init__(self, app: WSGIApp, add: list, delete) -> None:
        self.app = app
        self.add = add
        self.delete = delete

    def __call__(self, env: dict, start_response: Callable) -> object:
        add, delete = self.add, self.delete

        def amended(status, headers, exc_info=None):
            if delete:
                headers = [h for h in headers if h[0].lower() not in delete]
            return start_response(status, list(headers) + add, exc_info)

        return self.app(env, amended)


def _reply(status: str, headers: list, body: bytes) -> WSGIApp:
    def reply(env: dict, start_response: Callable) -> list[bytes]:
        start_response(status, headers + [("Content-Length", str(len(body)))])
        return [body]

    return reply


def _status_line(text: str) -> str:
    code = text[:3]
    if len(text) > 3:
        return text
    from http import HTTPStatus  # lazily: only route lines with a bare status code

    try:
        return f"{code} {HTTPStatus(int(code)).phrase}"
    except ValueError:
        return f"{code} Unknown"


# -- conditions ----------------------------------------------------------------------


def _int(text: str) -> int:
    digits = ""
    for c in text.strip():
        if c.isdigit() or (c == "-" and not digits):
            digits += c
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


def _condition(rule: Rule, env: dict):
    """(true?, the regex match for ``regexp``)."""
    name = rule.cond
    a = render(rule.cond_args[0], None, env)
    if name in ("regexp", "re"):
        m = rule.regex.search(a)
        return m is not None, m
    if len(rule.cond_args) == 1:
        if name == "empty":
            return a == "", None
        try:
            st = os.lstat(a) if name == "islink" else os.stat(a)
        except (OSError, ValueError):
            return False, None
        if name == "isfile":
            return stat.S_ISREG(st.st_mode), None
        if name == "isdir":
            return stat.S_ISDIR(st.st_mode), None
        if name == "islink":
            return stat.S_ISLNK(st.st_mode), None
        if name == "isexec":
            return os.access(a, os.X_OK), None
        return True, None  # exists
    b = render(rule.cond_args[1], None, env)
    if name in ("equal", "isequal", "eq", "=="):
        return a == b, None
    if name == "startswith":
        return a.startswith(b), None
    if name == "endswith":
        return a.endswith(b), None
    if name in ("contains", "contain"):
        return b in a, None
    x, y = _int(a), _int(b)
    if name in ("ishigher", ">"):
        return x > y, None
    if name in ("islower", "<"):
        return x < y, None
    if name in ("ishigherequal", ">="):
        return x >= y, None
    return x <= y, None


# -- actions -------------------------------------------------------------------------


def _continue(front, rule, m, env, state) -> int:
    return CONTINUE


def _break(front, rule, m, env, state) -> int:
    status = _status_line(rule.arg) if rule.arg else "500 Internal Server Error"
    state.reply = _reply(status, [("Content-Type", "text/plain")], b"")
    return BREAK


def _return(front, rule, m, env, state) -> int:
    status = _status_line(rule.arg or "500")
    reason = status[4:].encode("latin-1", "replace")
    state.reply = _reply(status, [("Content-Type", "text/plain")], reason)
    return BREAK


def _log(front, rule, m, env, state) -> int:
    log(render(rule.arg, m, env))
    return NEXT


def _donotlog(front, rule, m, env, state) -> int:
    env[DONOTLOG] = True
    return NEXT


def _goto(front, rule, m, env, state) -> int:
    return front.labels[rule.arg] + 1


def _addvar(front, rule, m, env, state) -> int:
    name, value = rule.arg
    env[name] = render(value, m, env)
    return NEXT


def _addheader(front, rule, m, env, state) -> int:
    name, value = rule.arg
    text = render(value, m, env)
    if _BAD.isdisjoint(text):
        state.add.append((name, text))
    return NEXT


def _delheader(front, rule, m, env, state) -> int:
    state.delete.add(rule.arg)
    return NEXT


def _redirect(front, rule, m, env, state) -> int:
    where = render(rule.arg, m, env)
    if not _BAD.isdisjoint(where):
        state.reply = _reply("400 Bad Request", [("Content-Type", "text/plain")], b"Bad Request\n")
    elif rule.action in ("redirect-permanent", "redirect-301"):
        state.reply = _reply("301 Moved Permanently", [("Location", where)], b"Moved Permanently")
    else:
        state.reply = _reply("302 Found", [("Location", where)], b"Moved")
    return BREAK


def _rewrite(front, rule, m, env, state) -> int:
    target = render(rule.arg, m, env)
    path, question, query = target.partition("?")
    old = env.get("QUERY_STRING", "")
    if question:
        env["QUERY_STRING"] = f"{query}&{old}" if old else query
    env["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1")
    return CONTINUE if rule.action == "rewrite-last" else NEXT


def _basicauth(front, rule, m, env, state) -> int:
    if env.get("REMOTE_USER"):
        return NEXT
    realm, cred = rule.arg
    header = env.get("HTTP_AUTHORIZATION", "")
    if len(header) > 7:
        from . import auth  # lazily: hashlib/hmac/base64 only for basicauth routes

        user = auth.check(header, cred)
        if user is not None:
            env["REMOTE_USER"] = user
            return NEXT
        if rule.action == "basicauth-next":
            return NEXT
    state.reply = _reply(
        "401 Unauthorized",
        [("WWW-Authenticate", f'Basic realm="{realm}"'), ("Content-Type", "text/plain")],
        b"Unauthorized",
    )
    return BREAK


def _static(front, rule, m, env, state) -> int:
    path = render(rule.arg, m, env)
    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        regular = False
    if not regular:
        if rule.action == "static-next":
            return NEXT
        state.reply = _reply("404 Not Found", [("Content-Type", "text/plain")], b"Not Found\n")
        return BREAK
    state.reply = file_app(path)
    return BREAK


_SETTERS = {
    "setscriptname": "SCRIPT_NAME",
    "setmethod": "REQUEST_METHOD",
    "seturi": "REQUEST_URI",
    "setpathinfo": "PATH_INFO",
    "setremoteaddr": "REMOTE_ADDR",
    "setdocroot": "DOCUMENT_ROOT",
    "setscheme": "wsgi.url_scheme",
    "setuser": "REMOTE_USER",
}


def _setter(front, rule, m, env, state) -> int:
    env[_SETTERS[rule.action]] = render(rule.arg, m, env)
    return NEXT


ACTIONS: dict[str, Callable[..., int]] = {
    "continue": _continue,
    "last": _continue,
    "break": _break,
    "return": _return,
    "break-with-status": _return,
    "log": _log,
    "donotlog": _donotlog,
    "goto": _goto,
    "addvar": _addvar,
    "addheader": _addheader,
    "delheader": _delheader,
    "remheader": _delheader,
    "redirect": _redirect,
    "redirect-302": _redirect,
    "redirect-permanent": _redirect,
    "redirect-301": _redirect,
    "rewrite": _rewrite,
    "rewrite-last": _rewrite,
    "basicauth": _basicauth,
    "basicauth-next": _basicauth,
    "static": _static,
    "static-next": _static,
    "file": _static,
    **dict.fromkeys(_SETTERS, _setter),
}
