"""Route rules as uWSGI 2.0 writes them, read once at start into a tuple.

Theory of operation
-------------------
Every ``route*`` line of the config, in order, becomes one ``Rule``:

* ``route = REGEX ACTION:ARGS`` (and ``route-uri``, ``route-host``, ``route-qs``,
  ``route-remote-addr``, ``route-user-agent``, ``route-referer``,
  ``route-remote-user``): the regex is matched (``re.search``, as PCRE does
  without anchors) against ``PATH_INFO`` or the subject the option names;
* ``route-if = COND:ARGS ACTION:ARGS`` / ``route-if-not``: a condition
  (``equal:A;B``, ``startswith``, ``endswith``, ``contains``, ``regexp:S;RE``,
  ``exists``, ``isfile``, ``isdir``, ``islink``, ``isexec``, ``empty``, ``ishigher``
  ``>`` ``islower`` ``<`` ``>=`` ``<=``);
* ``route-run = ACTION:ARGS``: always;
* ``route-label = NAME``: a target for ``goto:NAME``.

Arguments are templates: ``$0``..``$9`` are the regex's groups, ``${VAR}`` a
request variable (``${HTTP_HOST}``, ``${REQUEST_URI}``), ``${qs[NAME]}`` and
``${cookie[NAME]}`` one query or cookie value. A template is split into parts
once; rendering is one pass, and a value that came from the request is never
expanded again (uWSGI re-expands ``${...}`` found inside a capture; we do not:
a request could otherwise read another header into a response).

Syntax errors (no action, unknown action or condition, a regex that does not
compile, a ``goto`` to no label) are ``RouteError`` naming file:line, found when
the master starts (and by ``--check``), never per request.

Must not know: how an action is carried out, sockets, workers.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

__all__ = [
    "ACTIONS",
    "DONOTLOG",
    "Rule",
    "RouteError",
    "check_routes",
    "compile_rules",
    "header_lines",
    "render",
    "template",
]

# the environ key ``donotlog`` sets: the worker writes no request line for it
DONOTLOG = "procmaster.donotlog"

# option name -> the environ key its regex is matched against
SUBJECTS = {
    "route": "PATH_INFO",
    "route-uri": "REQUEST_URI",
    "route-host": "HTTP_HOST",
    "route-qs": "QUERY_STRING",
    "route-remote-addr": "REMOTE_ADDR",
    "route-user-agent": "HTTP_USER_AGENT",
    "route-referer": "HTTP_REFERER",
    "route-remote-user": "REMOTE_USER",
}
ROUTE_KEYS = frozenset((*SUBJECTS, "route-if", "route-if-not", "route-run", "route-label"))

# actions: name -> what its argument is ("template", "none", "status", "keyval",
# "header", "auth", "label", "name")
ACTIONS = {
    "continue": "none",
    "last": "none",
    "break": "status",
    "return": "status",
    "break-with-status": "status",
    "log": "template",
    "donotlog": "none",
    "goto": "label",
    "addvar": "keyval",
    "addheader": "header",
    "delheader": "name",
    "remheader": "name",
    "redirect": "template",
    "redirect-302": "template",
    "redirect-permanent": "template",
    "redirect-301": "template",
    "rewrite": "template",
    "rewrite-last": "template",
    "basicauth": "auth",
    "basicauth-next": "auth",
    "static": "template",
    "static-next": "template",
    "file": "template",
    "setscriptname": "template",
    "setmethod": "template",
    "seturi": "template",
    "setpathinfo": "template",
    "setremoteaddr": "template",
    "setdocroot": "template",
    "setscheme": "template",
    "setuser": "template",
}

_TOKEN = re.compile(r"\$(\d)|\$\{([^}]*)\}")


class RouteError(ValueError):
    """A route line that cannot work; the message names file:line."""


def template(text: str) -> tuple:
    """``text`` split into parts: str (literal), int (a regex group), or a
    (kind, name) pair: ("var", "HTTP_HOST"), ("qs", "a"), ("cookie", "sid")."""
    parts: list = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        if m.group(1) is not None:
            parts.append(int(m.group(1)))
        else:
            name = m.group(2)
            key, bracket, rest = name.partition("[")
            if bracket and rest.endswith("]") and key in ("qs", "cookie"):
                parts.append((key, rest[:-1]))
            else:
                parts.append(("var", name))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


def render(parts: tuple, match: re.Match | None, env: dict) -> str:
    """One pass over a template's parts; nothing that comes from the request is
    read as a template again."""
    if len(parts) == 1 and type(parts[0]) is str:
        return parts[0]
    out = []
    for part in parts:
        kind = type(part)
        if kind is str:
            out.append(part)
        elif kind is int:
            if match is not None and part <= (match.re.groups or 0):
                out.append(match.group(part) or "")
        elif part[0] == "var":
            value = env.get(part[1])
            if type(value) is str:
                out.append(value)
        elif part[0] == "qs":
            out.append(_first(parse_qsl(env.get("QUERY_STRING", ""), True), part[1]))
        else:
            out.append(_cookie(env.get("HTTP_COOKIE", ""), part[1]))
    return "".join(out)


def _first(pairs: list[tuple[str, str]], name: str) -> str:
    for key, value in pairs:
        if key == name:
            return value
    return ""


def _cookie(header: str, name: str) -> str:
    for piece in header.split(";"):
        key, _, value = piece.strip().partition("=")
        if key == name:
            return value
    return ""


class Rule:
    """One compiled route line. ``regex`` (subject rules and ``regexp:``
    conditions), ``cond``/``cond_args``/``negate`` (route-if), ``action`` and
    ``arg`` (the parsed argument), ``where`` (file:line) and ``text``."""

    __slots__ = (
        "subject",
        "regex",
        "cond",
        "cond_args",
        "negate",
        "action",
        "arg",
        "label",
        "where",
        "text",
    )

    def __init__(self, where: str, text: str) -> None:
        self.where = where
        self.text = text
        self.subject: str | None = None
        self.regex: re.Pattern | None = None
        self.cond: str | None = None
        self.cond_args: tuple = ()
        self.negate = False
        self.action = ""
        self.arg: object = None
        self.label: str | None = None

    def __repr__(self) -> str:
        return f"Rule({self.text!r} at {self.where})"


CONDITIONS = {
    "exists": 1,
    "isfile": 1,
    "isdir": 1,
    "islink": 1,
    "isexec": 1,
    "empty": 1,
    "equal": 2,
    "isequal": 2,
    "eq": 2,
    "==": 2,
    "startswith": 2,
    "endswith": 2,
    "contains": 2,
    "contain": 2,
    "regexp": 2,
    "re": 2,
    "ishigher": 2,
    ">": 2,
    "islower": 2,
    "<": 2,
    "ishigherequal": 2,
    ">=": 2,
    "islowerequal": 2,
    "<=": 2,
}


def compile_rules(entries) -> tuple[Rule, ...]:
    """The route lines among config ``entries`` (key, value, origin), compiled.
    Empty when there are none: the worker then does no routing work at all."""
    rules: list[Rule] = []
    for entry in entries:
        if entry.key in ROUTE_KEYS:
            rules.append(_rule(entry.key, entry.value, entry.origin))
    labels = {r.label for r in rules if r.label is not None}
    for r in rules:
        if r.action == "goto" and r.arg not in labels:
            raise RouteError(f"{r.where}: {r.text}: goto to an unknown label {r.arg!r}")
    return tuple(rules)


def check_routes(cfg) -> None:
    """Compile the route lines and ``add-header`` of ``cfg`` (the master, before it
    forks, and ``--check``): ``RouteError``/``ValueError`` naming the line."""
    compile_rules(cfg.entries)
    header_lines(cfg.add_header)


_BAD = frozenset("\r\n\0")


def header_lines(values: list[str]) -> tuple[tuple[str, str], ...]:
    """``add-header`` values (``Name: value``) as header pairs; ValueError when one
    is not a header."""
    out = []
    for value in values:
        name, colon, val = value.partition(":")
        name = name.strip()
        if not colon or not _is_token(name):
            raise ValueError(f"add-header = {value}: expected 'Name: value'")
        if not _BAD.isdisjoint(val):
            raise ValueError(f"add-header = {value}: a header value cannot hold a line break")
        out.append((name, val.strip()))
    return tuple(out)


def _rule(key: str, value: str, where: str) -> Rule:
    text = f"{key} = {value}"
    rule = Rule(where, text)
    value = value.strip()

    def fail(why: str) -> RouteError:
        return RouteError(f"{where}: {text}: {why}")

    if key == "route-label":
        if not value:
            raise fail("a label needs a name")
        rule.label = value
        return rule
    if key == "route-run":
        command = value
    else:
        head, sep, command = value.partition(" ")
        command = command.strip()
        if not sep or not command:
            raise fail("expected '<match> <action>:<args>'")
        if key in ("route-if", "route-if-not"):
            name, colon, args = head.partition(":")
            if not colon or name not in CONDITIONS:
                raise fail(f"unknown route condition {name!r} (known: {', '.join(CONDITIONS)})")
            rule.cond = name
            rule.negate = key == "route-if-not"
            if CONDITIONS[name] == 2:
                first, semi, second = args.partition(";")
                if not semi:
                    raise fail(f"condition {name} takes two values: {name}:A;B")
                if name in ("regexp", "re"):
                    rule.regex = _regex(second, fail)
                    rule.cond_args = (template(first),)
                else:
                    rule.cond_args = (template(first), template(second))
            else:
                rule.cond_args = (template(args),)
        else:
            rule.subject = SUBJECTS[key]
            rule.regex = _regex(head, fail)
    action, colon, arg = command.partition(":")
    if not colon:
        raise fail(f"the action {action!r} needs a colon: {action}:ARGS")
    kind = ACTIONS.get(action)
    if kind is None:
        raise fail(f"unknown route action {action!r} (supported: {', '.join(ACTIONS)})")
    rule.action = action
    rule.arg = _argument(kind, action, arg, fail)
    return rule


def _regex(text: str, fail) -> re.Pattern:
    try:
        return re.compile(text)
    except re.error as exc:
        raise fail(f"the regex {text!r} does not compile: {exc}") from None


def _argument(kind: str, action: str, arg: str, fail) -> object:
    if kind == "none":
        return None
    if kind == "template":
        if not arg and action not in ("log",):
            raise fail(f"{action} needs an argument")
        return template(arg)
    if kind == "status":
        arg = arg.strip()
        if arg and not (arg[:3].isdigit() and len(arg) >= 3):
            raise fail(f"{action} takes an HTTP status: {action}:403")
        return arg
    if kind == "label":
        if not arg:
            raise fail("goto needs a label")
        return arg
    if kind == "keyval":
        name, eq, val = arg.partition("=")
        if not eq or not name:
            raise fail(f"{action} takes KEY=VALUE")
        return name, template(val)
    if kind == "header":
        name, colon, val = arg.partition(":")
        if not colon or not _is_token(name.strip()):
            raise fail(f"{action} takes 'Name: value'")
        return name.strip(), template(val.strip())
    if kind == "name":
        if not _is_token(arg.strip()):
            raise fail(f"{action} takes a header name")
        return arg.strip().lower()
    if kind == "auth":
        realm, comma, cred = arg.partition(",")
        if not comma or not cred:
            raise fail(f"{action} takes REALM,USER:PASSWORD or REALM,HTPASSWD_FILE")
        if any(c in realm for c in '"\r\n'):
            raise fail("the realm must not hold quotes or line breaks")
        return realm, cred
    raise AssertionError(kind)


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _is_token(name: str) -> bool:
    return bool(name) and all(c in _TOKEN_CHARS for c in name)
