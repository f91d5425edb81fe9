"""Internal routing (procmaster.routing): rules read as uWSGI 2.0 writes them, the
front door's decisions on an environ, and hostile input against the rules."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path

import pytest

from procmaster.config import load
from procmaster.routing import auth
from procmaster.routing.front import MAX_STEPS, front_door
from procmaster.routing.rules import DONOTLOG, RouteError, compile_rules, render, template


class Apps:
    """The app table the worker hands the front door: one app at the root."""

    def __init__(self) -> None:
        self.single = self.app
        self.calls: list[dict] = []

    def app(self, env, start_response):
        self.calls.append(dict(env))
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-App", "1")])
        return [b"app"]

    def resolve(self, path):
        return self.app, "", path


def config(tmp_path: Path, lines: str):
    ini = tmp_path / "site.ini"
    ini.write_text("[uwsgi]\nhttp-socket = :8000\nmodule = testapp\n" + lines)
    return load(["--ini", str(ini)], environ={})


def front(tmp_path: Path, lines: str, apps=None):
    return front_door(config(tmp_path, lines), apps or Apps())


def environ(path: str = "/", **extra) -> dict:
    env = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "REQUEST_URI": path,
        "HTTP_HOST": "example.com",
        "REMOTE_ADDR": "127.0.0.1",
    }
    env.update(extra)
    return env


def call(app, env) -> tuple[str, list, bytes]:
    got = {}

    def start_response(status, headers, exc_info=None):
        got["status"], got["headers"] = status, headers

    body = b"".join(app(env, start_response))
    return got["status"], got["headers"], body


def respond(door, env) -> tuple[str, dict, bytes]:
    app = door.match(env)
    if app is None:  # the worker would call the app itself
        app = Apps().app
    status, headers, body = call(app, env)
    return status, dict(headers), body


# -- no rules, no cost ----------------------------------------------------------------


def test_without_routes_the_front_door_is_the_static_files_or_nothing(tmp_path):
    assert front(tmp_path, "") is None
    static = front(tmp_path, f"static-map = /s={tmp_path}\n")
    assert type(static).__name__ == "StaticFiles"


# -- templates --------------------------------------------------------------------------


def test_template_parts_and_rendering():
    import re

    m = re.search(r"^/u/(\w+)/(\d+)$", "/u/bob/42")
    parts = template("/x/$1?id=$2&h=${HTTP_HOST}&q=${qs[a]}&c=${cookie[sid]}$9$")
    env = {"HTTP_HOST": "h.example", "QUERY_STRING": "a=1&b=2", "HTTP_COOKIE": "x=1; sid=abc"}
    assert render(parts, m, env) == "/x/bob?id=42&h=h.example&q=1&c=abc$"


def test_a_capture_is_never_expanded_again():
    import re

    m = re.search(r"^/(.*)$", "/${HTTP_AUTHORIZATION}")
    got = render(template("/x/$1"), m, {"HTTP_AUTHORIZATION": "Basic c2VjcmV0"})
    assert got == "/x/${HTTP_AUTHORIZATION}"


# -- syntax errors name the line --------------------------------------------------------


@pytest.mark.parametrize(
    "line, why",
    [
        ("route = ^/( redirect:/", "does not compile"),
        ("route = ^/ frobnicate:x", "unknown route action 'frobnicate'"),
        ("route = ^/ donotlog", "needs a colon"),
        ("route = ^/", "expected '<match> <action>:<args>'"),
        ("route-if = nosuch:a return:403", "unknown route condition 'nosuch'"),
        ("route-if = equal:a return:403", "takes two values"),
        ("route = ^/ goto:nowhere", "goto to an unknown label 'nowhere'"),
        ("route = ^/ return:abc", "takes an HTTP status"),
        ("route = ^/ addheader:no colon here", "takes 'Name: value'"),
        ("route = ^/ basicauth:realm-only", "REALM,USER:PASSWORD"),
    ],
)
def test_bad_rules_are_refused_with_file_and_line(tmp_path, line, why):
    cfg = config(tmp_path, line + "\n")
    with pytest.raises(RouteError) as exc:
        compile_rules(cfg.entries)
    assert f"site.ini:4: {line}" in str(exc.value)
    assert why in str(exc.value)


def test_subjects_and_order_are_kept(tmp_path):
    cfg = config(
        tmp_path,
        "route-host = ^a return:403\nroute = ^/b return:404\nroute-label = x\n"
        "route-qs = c=1 goto:x\nroute-run = log:hi\n",
    )
    rules = compile_rules(cfg.entries)
    assert [(r.subject, r.action, r.label) for r in rules] == [
        ("HTTP_HOST", "return", None),
        ("PATH_INFO", "return", None),
        (None, "", "x"),
        ("QUERY_STRING", "goto", None),
        (None, "log", None),
    ]


# -- actions ------------------------------------------------------------------------------


def test_return_redirect_and_break(tmp_path):
    door = front(
        tmp_path,
        "route = ^/gone return:410\nroute = ^/old/(.*)$ redirect-permanent:/new/$1\n"
        "route = ^/tmp redirect:http://${HTTP_HOST}/t\nroute = ^/no break:403 Nope\n",
    )
    assert respond(door, environ("/gone"))[::2] == ("410 Gone", b"Gone")
    status, headers, _ = respond(door, environ("/old/a/b"))
    assert (status, headers["Location"]) == ("301 Moved Permanently", "/new/a/b")
    status, headers, body = respond(door, environ("/tmp"))
    assert (status, headers["Location"], body) == ("302 Found", "http://example.com/t", b"Moved")
    assert respond(door, environ("/no"))[::2] == ("403 Nope", b"")
    assert respond(door, environ("/other"))[::2] == ("200 OK", b"app")


def test_rules_run_in_order_until_one_answers_or_continues(tmp_path):
    door = front(
        tmp_path,
        "route = ^/c continue:\nroute = ^/c return:500\nroute = ^/g goto:here\n"
        "route = ^/g return:500\nroute-label = here\nroute = ^/g addheader:X-Label: yes\n",
    )
    assert respond(door, environ("/c"))[0] == "200 OK"
    status, headers, _ = respond(door, environ("/g"))
    assert (status, headers["X-Label"]) == ("200 OK", "yes")


def test_conditions(tmp_path):
    (tmp_path / "f").write_text("x")
    door = front(
        tmp_path,
        f"route-if = isfile:{tmp_path}/f addheader:X-File: yes\n"
        f"route-if = isdir:{tmp_path}/f addheader:X-Dir: yes\n"
        "route-if = regexp:${HTTP_HOST};^(\\w+)\\.com$ addheader:X-Name: $1\n"
        "route-if-not = startswith:${PATH_INFO};/api addheader:X-Not-Api: 1\n"
        "route-if = >:${HTTP_X_N};10 addheader:X-Big: 1\n"
        "route-if = contains:${HTTP_USER_AGENT};bot return:403\n",
    )
    _, headers, _ = respond(door, environ("/", HTTP_X_N="11"))
    assert headers["X-File"] == "yes" and "X-Dir" not in headers
    assert headers["X-Name"] == "example" and headers["X-Not-Api"] == "1"
    assert headers["X-Big"] == "1"
    assert "X-Not-Api" not in respond(door, environ("/api/x"))[1]
    assert respond(door, environ("/", HTTP_USER_AGENT="a bot"))[0] == "403 Forbidden"


def test_rewrite_and_environ_setters(tmp_path):
    apps = Apps()
    door = front(
        tmp_path,
        "route = ^/p/(\\w+)$ rewrite:/page-$1?x=1\nroute = ^/page setscriptname:/app\n"
        "route-run = addvar:MYVAR=${REQUEST_METHOD}\n",
        apps,
    )
    env = environ("/p/two", QUERY_STRING="y=2")
    assert door.match(env) is None  # nothing to add: the worker calls the app
    assert env["PATH_INFO"] == "/page-two"
    assert env["QUERY_STRING"] == "x=1&y=2"
    assert env["SCRIPT_NAME"] == "/app"
    assert env["MYVAR"] == "GET"


def test_addheader_delheader_and_add_header_option(tmp_path):
    door = front(
        tmp_path,
        "add-header = X-Every: 1\nroute = ^/h addheader:X-Path: $0\nroute = ^/h delheader:X-App\n",
    )
    _, headers, _ = respond(door, environ("/h"))
    assert headers["X-Every"] == "1" and headers["X-Path"] == "/h" and "X-App" not in headers
    _, headers, _ = respond(door, environ("/"))
    assert headers["X-Every"] == "1" and headers["X-App"] == "1"


def test_donotlog_marks_the_request(tmp_path):
    door = front(tmp_path, "route = ^/health donotlog:\n")
    env = environ("/health")
    door.match(env)
    assert env[DONOTLOG] is True
    env = environ("/")
    door.match(env)
    assert DONOTLOG not in env


def test_static_action(tmp_path):
    (tmp_path / "robots.txt").write_text("User-agent: *\n")
    door = front(
        tmp_path,
        f"route = ^/robots.txt$ static:{tmp_path}/robots.txt\n"
        f"route = ^/none static:{tmp_path}/none.txt\n"
        f"route = ^/next static-next:{tmp_path}/none.txt\n",
    )
    assert respond(door, environ("/robots.txt"))[::2] == ("200 OK", b"User-agent: *\n")
    assert respond(door, environ("/none"))[0] == "404 Not Found"
    assert respond(door, environ("/next"))[::2] == ("200 OK", b"app")


# -- basicauth -------------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basicauth_inline(tmp_path):
    door = front(tmp_path, "route = ^/admin basicauth:Staff only,admin:s3cret\n")
    status, headers, _ = respond(door, environ("/admin"))
    assert (status, headers["WWW-Authenticate"]) == ("401 Unauthorized", 'Basic realm="Staff only"')
    bad = environ("/admin", HTTP_AUTHORIZATION=_basic("admin", "wrong"))
    assert respond(door, bad)[0] == "401 Unauthorized"
    good = environ("/admin", HTTP_AUTHORIZATION=_basic("admin", "s3cret"))
    assert respond(door, good)[::2] == ("200 OK", b"app")
    assert good["REMOTE_USER"] == "admin"
    garbage = environ("/admin", HTTP_AUTHORIZATION="Basic !!!not-base64")
    assert respond(door, garbage)[0] == "401 Unauthorized"


def test_basicauth_htpasswd_sha_and_crypt(tmp_path):
    sha = base64.b64encode(hashlib.sha1(b"pw1").digest()).decode()
    lines = [f"ann:{{SHA}}{sha}", "bob:$apr1$abc$notsupportedxxxxxxxxxxx"]
    crypt = auth._crypt_module()
    if crypt is not None:
        lines.append("cid:" + crypt.crypt("pw3", crypt.mksalt(crypt.METHOD_SHA512)))
    (tmp_path / "htpasswd").write_text("\n".join(lines) + "\n")
    cred = str(tmp_path / "htpasswd")
    assert auth.check(_basic("ann", "pw1"), cred) == "ann"
    assert auth.check(_basic("ann", "nope"), cred) is None
    assert auth.check(_basic("bob", "anything"), cred) is None
    assert auth.check(_basic("zed", "pw1"), cred) is None
    if crypt is not None:
        assert auth.check(_basic("cid", "pw3"), cred) == "cid"
        assert auth.check(_basic("cid", "pw1"), cred) is None


def test_basicauth_next_lets_wrong_credentials_through(tmp_path):
    door = front(tmp_path, "route = ^/ basicauth-next:r,a:b\n")
    env = environ("/", HTTP_AUTHORIZATION=_basic("a", "wrong"))
    assert respond(door, env)[0] == "200 OK"
    assert "REMOTE_USER" not in env


# -- hostile input -----------------------------------------------------------------------


def test_line_breaks_from_a_capture_never_reach_a_header(tmp_path):
    door = front(
        tmp_path,
        "route = ^/r/(.*) redirect:/x/$1\nroute = (?s)^/h/(.*)$ addheader:X-Echo: $1\n",
    )
    status, headers, _ = respond(door, environ("/r/a\r\nSet-Cookie: evil=1"))
    assert status == "400 Bad Request" and "Location" not in headers
    status, headers, _ = respond(door, environ("/h/a\nSet-Cookie: evil=1"))
    assert status == "200 OK" and "X-Echo" not in headers and "Set-Cookie" not in headers


def test_a_goto_loop_ends(tmp_path):
    door = front(tmp_path, "route-label = top\nroute-run = goto:top\n")
    assert respond(door, environ("/"))[0] == "500 Internal Server Error"
    assert MAX_STEPS >= 100


def test_a_huge_uri_against_the_rules_is_quick(tmp_path):
    door = front(
        tmp_path,
        "route = ^/a/(.*)/b$ addheader:X-M: $1\nroute-uri = \\.php$ return:404\n"
        "route-if = contains:${REQUEST_URI};zzz return:403\n",
    )
    huge = "/a/" + "x/" * 500_000 + "c"
    start = time.perf_counter()
    status, headers, _ = respond(door, environ(huge, REQUEST_URI=huge))
    assert status == "200 OK" and "X-M" not in headers
    assert time.perf_counter() - start < 2.0


def test_add_header_alone_on_the_app_and_on_static_files(tmp_path):
    (tmp_path / "a.txt").write_text("file")
    door = front(tmp_path, f"add-header = X-Every: 1\nstatic-map = /s={tmp_path}\n")
    status, headers, body = respond(door, environ("/"))
    assert (status, headers["X-Every"], headers["X-App"], body) == ("200 OK", "1", "1", b"app")
    env = environ("/s/a.txt")
    app = door.match(env)
    status, headers = [], {}

    def start_response(s, h, exc_info=None):
        status.append(s)
        headers.update(h)

    result = app(env, start_response)
    assert status == ["200 OK"] and headers["X-Every"] == "1"
    assert result.filelike.read() == b"file"  # still a file for sendfile
    result.close()
