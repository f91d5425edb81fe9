"""procmaster's HTTP parser against gunicorn's request corpus, over a real socket.

gunicorn's released sdist ships request fixtures: ``tests/requests/valid/*.http``
with a ``.py`` of what each must parse into, and ``tests/requests/invalid/*.http``
with the error each must raise. This script downloads the sdist at run time
(``pip download gunicorn==27.0.1 --no-binary :all: --no-deps``, cached in
``$PROCMASTER_CACHE`` or ``~/.cache/procmaster``), reads the fixtures from the
tarball (never copied into this repository), starts this checkout's procmaster
on an ``http-socket`` with an app that echoes what it was given
(``bench/apps/echo_environ.py``) and sends each fixture on its own connection.

The corpus is the fixtures of gunicorn's default configuration: a fixture whose
``.py`` sets ``cfg`` tests one of gunicorn's own settings (proxy protocol,
header limits, ``header_map``, obsolete folding ...) and is left out: 53 invalid
and 47 valid in 27.0.1.

Scoring:

* invalid: *refused* when the first answer is an error status (4xx, 5xx) or the
  connection closes without an answer;
* valid: *parsed* when every request of the fixture reaches the app with the
  expected method, target (``REQUEST_URI``), query, version, headers (as CGI
  variables, repeated fields joined with ", ") and body; or, where the RFC
  mandates a refusal of a request gunicorn accepts, when the answer is exactly
  that refusal (``RFC_REFUSALS``: each rule with its section, each fixture it
  applied to is listed in the report).

    python bench/http_corpus.py             # the figures, and each miss
    python bench/http_corpus.py --gunicorn  # also gunicorn's parser on the same corpus

Exit status 0 when everything is refused or parsed as it should be.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VERSION = "27.0.1"
SDIST = f"gunicorn-{VERSION}.tar.gz"


# -- the sdist ---------------------------------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("PROCMASTER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "procmaster"
    )
    return Path(base)


def fetch_sdist() -> Path:
    """The gunicorn sdist, downloaded once (raises with pip's words if it cannot)."""
    target = cache_dir()
    path = target / SDIST
    if path.exists():
        return path
    target.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [sys.executable, "-m", "pip", "download", f"gunicorn=={VERSION}"]
        + ["--no-binary", ":all:", "--no-deps", "-d", str(target)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if not path.exists():
        raise RuntimeError(f"cannot download the gunicorn {VERSION} sdist:\n{run.stderr[-2000:]}")
    return path


# -- the fixtures ------------------------------------------------------------------


def decode_http(raw: bytes) -> bytes:
    """A fixture's bytes, as gunicorn's tests/treq.py reads them: newlines in
    the file are not data, ``\\r\\n``, ``\\n``, ``\\t``, ``\\0``, ``\\xHH`` are."""
    data = raw.replace(b"\n", b"").replace(b"\\r\\n", b"\r\n")
    data = data.replace(b"\\0", b"\0").replace(b"\\n", b"\n").replace(b"\\t", b"\t")
    return re.sub(rb"\\x([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data)


def uri(data: str) -> dict:
    """gunicorn's ``uri()`` of the expectations: the target split as it does."""
    if data.startswith("//"):
        parts = urlsplit("." + data)
        parts = parts._replace(path=parts.path[1:])
    else:
        parts = urlsplit(data)
    return {"raw": data, "path": parts.path, "query": parts.query, "fragment": parts.fragment}


@dataclass
class Fixture:
    name: str  # valid/001
    data: bytes
    expect: list[dict] = field(default_factory=list)  # valid: the requests


def load_corpus(sdist: Path) -> tuple[list[Fixture], list[Fixture]]:
    """(valid, invalid) fixtures of gunicorn's default configuration."""
    valid, invalid = [], []
    prefix = f"gunicorn-{VERSION}/tests/requests/"
    with tarfile.open(sdist) as tar:
        members = {m.name[len(prefix) :]: m for m in tar if m.name.startswith(prefix)}
        for name in sorted(members):
            if not name.endswith(".http"):
                continue
            stem = name[: -len(".http")]
            spec = tar.extractfile(members[stem + ".py"]).read().decode()
            if re.search(r"^cfg\s*=", spec, re.M):
                continue  # a test of one of gunicorn's own settings
            fixture = Fixture(stem, decode_http(tar.extractfile(members[name]).read()))
            if stem.startswith("valid/"):
                namespace: dict = {"uri": uri}
                exec(compile(spec, stem + ".py", "exec"), namespace)  # noqa: S102 (its data)
                expect = namespace["request"]
                fixture.expect = expect if isinstance(expect, list) else [expect]
                valid.append(fixture)
            else:
                invalid.append(fixture)
    return valid, invalid


# -- the RFC's refusals of requests gunicorn accepts ----------------------------------

_CODINGS = re.compile(r"\s*,\s*")


def rfc_refusal(exp: dict) -> tuple[int, str] | None:
    """The status the RFC asks of a server for this expected request, when it is
    a refusal, with the rule (section and words); None: it must be served."""
    headers: dict[str, str] = {}
    for name, value in exp["headers"]:  # repeated fields, joined as a recipient does
        key = name.upper()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    declared = headers.get("CONTENT-LENGTH", "")
    if declared.isdigit() and int(declared) > len(exp["body"]):
        return 0, (
            "RFC 9112 6.3: the client closed before the Content-Length's octets came; "
            "the recipient MUST consider the message incomplete and close the connection"
        )
    if exp["version"] == (1, 1) and "HOST" not in headers:
        return 400, (
            "RFC 9112 3.2: a server MUST respond with 400 to any HTTP/1.1 request "
            "that lacks a Host header field"
        )
    if exp["uri"]["fragment"] or "#" in exp["uri"]["raw"]:
        return 400, (
            "RFC 9112 3.2 / RFC 3986 3.5: the request-target has no fragment "
            "(origin-form = absolute-path [ '?' query ]); an invalid request-line is a 400 (RFC 9112 3)"
        )
    codings = [c for c in _CODINGS.split(headers.get("TRANSFER-ENCODING", "").lower()) if c]
    if any(c != "chunked" for c in codings):
        return 501, (
            "RFC 9112 6.1: a server that receives a transfer coding it does not "
            "understand SHOULD respond with 501 (procmaster decodes only chunked; "
            "'identity' is no longer a transfer coding, RFC 9112 7)"
        )
    authority = exp["uri"]["raw"].partition("://")[2].partition("/")[0]
    if "://" in exp["uri"]["raw"] and "@" in authority:
        return 400, (
            "RFC 9110 4.2.4: a recipient SHOULD treat userinfo in an http(s) URI "
            "as an error (it hides the authority)"
        )
    if exp["method"] == "CONNECT":
        return 501, (
            "RFC 9110 9.3.6: CONNECT asks for a tunnel, a proxy's job; an origin "
            "server answers 501 (RFC 9110 15.6.2) with Allow"
        )
    return None


# -- the server -------------------------------------------------------------------


class Procmaster:
    """This checkout's procmaster on a free port, one worker, the echo app."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE / "apps"), str(ROOT)])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "procmaster", "--http-socket", f"127.0.0.1:{self.port}"]
            + ["--module", "echo_environ", "--processes", "1", "--disable-logging"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("procmaster did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)  # its own session: the master and its worker
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()

    def exchange(
        self, data: bytes, answers: int, timeout: float = 10.0
    ) -> list[tuple[int, dict, bytes]]:
        """Send ``data`` on a fresh connection; the answers, read until the server
        closes or ``answers`` complete ones came (keep-alive)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)  # all of it: a short body is incomplete
            buf = b""
            deadline = time.monotonic() + timeout
            while True:
                got = parse_responses(buf)
                if len(got) >= answers:
                    return got
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                except TimeoutError:
                    raise RuntimeError(f"no answer within {timeout}s: {buf[:200]!r}") from None
                if not chunk:
                    return parse_responses(buf)
                buf += chunk


def parse_responses(buf: bytes) -> list[tuple[int, dict, bytes]]:
    """The complete responses in ``buf`` (each with a Content-Length)."""
    out = []
    while True:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            return out
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", 0))
        if len(rest) < length:
            return out
        out.append((int(lines[0].split()[1]), headers, rest[:length]))
        buf = rest[length:]


# -- judging -------------------------------------------------------------------------


def expected_environ(exp: dict) -> dict:
    """The CGI variables the app must see for an expected request."""
    env: dict[str, str] = {
        "REQUEST_METHOD": exp["method"],
        "REQUEST_URI": exp["uri"]["raw"],
        "QUERY_STRING": exp["uri"]["query"],
        "SERVER_PROTOCOL": "HTTP/{}.{}".format(*exp["version"]),
        "body": exp["body"].decode("latin-1") if type(exp["body"]) is bytes else exp["body"],
    }
    raw = exp["uri"]["raw"]
    if raw.startswith("/"):
        env["PATH_INFO"] = unquote_to_bytes(exp["uri"]["path"]).decode("latin-1")
    for name, value in exp["headers"]:
        key = name.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        env[key] = f"{env[key]}, {value}" if key in env else value
    return env


def judge_valid(server: Procmaster, fixture: Fixture) -> tuple[bool, str, list[str]]:
    """(right, what went wrong, the RFC rules applied)."""
    answers = server.exchange(fixture.data, len(fixture.expect))
    rules = []
    for n, exp in enumerate(fixture.expect):
        refusal = rfc_refusal(exp)
        if n >= len(answers):
            if refusal is not None and refusal[0] == 0:
                rules.append(refusal[1])
                return True, "", rules
            return False, f"request {n + 1}: no answer", rules
        status, headers, body = answers[n]
        if refusal is not None:
            want, rule = refusal
            if status != want:
                return False, f"request {n + 1}: {status}, the RFC asks {want}: {rule}", rules
            if want == 501 and exp["method"] == "CONNECT" and "allow" not in headers:
                return False, "CONNECT answered 501 without Allow", rules
            rules.append(rule)
            return True, "", rules  # the connection closes after a refusal
        if status != 200:
            return False, f"request {n + 1}: {status} {body[:80]!r}", rules
        got = json.loads(body)
        want = expected_environ(exp)
        wrong = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        extra = sorted(k for k in got if k.startswith("HTTP_") and k not in want)
        if wrong or extra:
            return False, f"request {n + 1}: got/expected {wrong} extra {extra}", rules
    return True, "", rules


_REQUEST_LINE = re.compile(rb"(?:^|(?<=\r\n\r\n))([^\r\n]+ HTTP/1\.[01]\r\n)")
NO_HOST = "RFC 9112 3.2"


def judge_with_host(server: Procmaster, fixture: Fixture) -> tuple[bool, str]:
    """A fixture refused for its missing Host, sent again with ``Host: corpus``
    after each request line: the rest of it must parse as expected."""
    data = _REQUEST_LINE.sub(rb"\1Host: corpus\r\n", fixture.data)
    expect = [{**exp, "headers": [("HOST", "corpus"), *exp["headers"]]} for exp in fixture.expect]
    right, why, _ = judge_valid(server, Fixture(fixture.name, data, expect))
    return right, why


def judge_invalid(server: Procmaster, fixture: Fixture) -> tuple[bool, str]:
    answers = server.exchange(fixture.data, 1)
    if not answers:
        return True, "closed without an answer"
    status = answers[0][0]
    if status >= 400:
        return True, str(status)
    return False, f"answered {status}: {answers[0][2][:120]!r}"


@dataclass
class Figures:
    valid: int
    valid_total: int
    invalid: int
    invalid_total: int
    misses: list[str]
    rules: dict[str, list[str]]
    # fixtures refused for their missing Host that parse as expected with one
    with_host: int = 0
    with_host_total: int = 0
    notes: list[str] = field(default_factory=list)


def measure() -> Figures:
    valid, invalid = load_corpus(fetch_sdist())
    server = Procmaster()
    misses: list[str] = []
    notes: list[str] = []  # the figure with a Host added: reported, not counted
    rules: dict[str, list[str]] = {}
    ok_valid = ok_invalid = with_host = with_host_total = 0
    try:
        for fixture in valid:
            right, why, applied = judge_valid(server, fixture)
            ok_valid += right
            if right and any(rule.startswith(NO_HOST) for rule in applied):
                good, why = judge_with_host(server, fixture)
                with_host += good
                with_host_total += 1
                if not good:
                    notes.append(f"{fixture.name} (with a Host added): {why}")
            for rule in applied:
                rules.setdefault(rule, []).append(fixture.name)
            if not right:
                misses.append(f"{fixture.name}: {why}")
        for fixture in invalid:
            right, why = judge_invalid(server, fixture)
            ok_invalid += right
            if not right:
                misses.append(f"{fixture.name}: {why}")
    finally:
        server.stop()
    return Figures(
        ok_valid,
        len(valid),
        ok_invalid,
        len(invalid),
        misses,
        rules,
        with_host,
        with_host_total,
        notes,
    )


def measure_gunicorn() -> tuple[int, int, int, int, int]:
    """gunicorn's own (Python) parser on the same corpus: (valid parsed as its
    tests expect, of them without a request the RFC asks to refuse, valid total,
    invalid refused, invalid total)."""
    # lazily: only this optional measurement needs gunicorn installed
    from gunicorn.config import Config
    from gunicorn.http.parser import RequestParser

    valid, invalid = load_corpus(fetch_sdist())
    ok_valid = ok_rfc = ok_invalid = 0
    for fixture in valid:
        good = True
        try:
            count = 0
            parser = RequestParser(Config(), iter([fixture.data]), None)
            for req, exp in zip(parser, fixture.expect, strict=False):
                body = req.body.read()  # before the next request is parsed
                count += 1
                good = good and req.method == exp["method"] and req.uri == exp["uri"]["raw"]
                good = good and req.version == exp["version"] and req.headers == exp["headers"]
                good = good and body == exp["body"]
            good = good and count == len(fixture.expect)
        except Exception:
            good = False
        ok_valid += good
        ok_rfc += good and not any(rfc_refusal(exp) for exp in fixture.expect)
    for fixture in invalid:
        try:
            for req in RequestParser(Config(), iter([fixture.data]), None):
                req.body.read()
        except Exception:
            ok_invalid += 1
    return ok_valid, ok_rfc, len(valid), ok_invalid, len(invalid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gunicorn", action="store_true", help="also measure gunicorn's parser")
    args = parser.parse_args()
    figures = measure()
    print(f"gunicorn {VERSION} request corpus (default configuration), procmaster over a socket:")
    print(f"  invalid refused: {figures.invalid}/{figures.invalid_total}")
    print(f"  valid parsed:    {figures.valid}/{figures.valid_total}")
    print(
        f"  of the valid refused for their missing Host, parsed as expected with one: "
        f"{figures.with_host}/{figures.with_host_total}"
    )
    for rule, names in figures.rules.items():
        print(f"  counted right as the RFC asks ({len(names)}): {rule}\n    {', '.join(names)}")
    for miss in figures.misses:
        print(f"  MISS {miss}")
    for note in figures.notes:
        print(f"  note {note}")
    if args.gunicorn:
        gv, grfc, gvt, gi, git = measure_gunicorn()
        print(f"gunicorn {VERSION}'s own parser on the same corpus:")
        print(f"  invalid refused: {gi}/{git}")
        print(f"  valid parsed as its tests expect: {gv}/{gvt}")
        print(
            f"  valid right by the same RFC rules (accepting what the RFC refuses is wrong): {grfc}/{gvt}"
        )
    return 0 if not figures.misses else 1


if __name__ == "__main__":
    sys.exit(main())
