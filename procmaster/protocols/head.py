"""The response head every protocol writes, and what of the request may reach it.

Theory of operation
-------------------
HTTP writes ``HTTP/1.1 200 OK`` + headers; uwsgi the same with the proxy's
``SERVER_PROTOCOL``; FastCGI and SCGI the CGI form ``Status: 200 OK`` + headers.
``serialize_head`` writes all of them, and it is the one gate between text and
the wire: the whole head must match the grammar of RFC 9110/9112 (a status of
three digits and a reason without control characters, header names that are
tokens, values without CR, LF, NUL or other control characters but HTAB, all of
it latin-1). Anything else raises ``HeadError`` naming what is wrong, never
writes a byte: the worker turns it into a 500 (the app's headers) or closes
(its own). The check is a few C-speed passes over the encoded head (control
characters deleted and counted: only our CR LF may be there) and a set lookup
per header name; HTTP and uwsgi cache finished heads, so a repeated answer pays
nothing.

What a client or a proxy sends reaches a head only through the status line's
version: HTTP takes it from its own table, uwsgi from ``SERVER_PROTOCOL``, which
``status_version`` passes only when it is ``HTTP/<digit>[.<digit>]``. What a
proxy sends reaches the logs (request lines, the request log's variables):
``check_vars`` refuses CR, LF and NUL in the values of a proxy's variables,
which no HTTP field can hold (RFC 9110 5.5), so none ever reaches the environ,
a log line or, through an app that echoes it, a head.

Must not know: sockets, ``os``, WSGI, logging, which protocol calls it.
"""

from __future__ import annotations

import re
import time

from .base import ProtocolError

__all__ = [
    "HeadError",
    "cached_head",
    "check_vars",
    "http_date",
    "serialize_head",
    "status_version",
    "with_length",
]

_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"  # RFC 9110 5.6.2 token characters
_TEXT = r"[^\x00-\x08\x0a-\x1f\x7f]*"  # field-value / reason-phrase: no CTL but HTAB
# every control character but HTAB, as bytes to delete (``bytes.translate``)
_CTLS = bytes([*range(0, 9), *range(10, 32), 127])
# header names known to be tokens: most apps send the same few
_TOKENS_SEEN: set[str] = set()
_AFTER_CODE = (" ", "")  # what may follow the status code: a reason, or nothing
_TOKEN = re.compile(rf"[{_TCHAR}]+")
_BAD_TEXT = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_VERSION = re.compile(r"HTTP/[0-9](?:\.[0-9])?")
# what nginx and Apache send as SERVER_PROTOCOL: no regular expression for these
KNOWN_VERSIONS = frozenset(("HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/3.0"))
_BAD_VAR = re.compile("[\x00\r\n]")

_date_cache = [0, ""]
# (version, status, length, *headers) -> finished head (``cached_head``)
HEADS: dict[tuple, bytes] = {}


class HeadError(ValueError):
    """The app's status or headers cannot go on the wire (header injection, a
    name that is not a token, a character past latin-1). The message names the
    header (as ``repr``, cut short): it is safe to log."""


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def imf_date(when: float) -> str:
    """RFC 9110's IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), in English
    whatever the locale (what ``email.utils.formatdate(usegmt=True)`` gives,
    without importing the email package into every worker)."""
    year, month, day, hour, minute, second, weekday = time.gmtime(when)[:7]
    return (
        f"{_DAYS[weekday]}, {day:02d} {_MONTHS[month - 1]} {year:04d} "
        f"{hour:02d}:{minute:02d}:{second:02d} GMT"
    )


def http_date() -> str:
    """The ``Date`` header value, recomputed at most once a second."""
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[0] = now
        _date_cache[1] = imf_date(now)
    return _date_cache[1]


def with_length(headers: list[tuple[str, str]], length: int | None) -> list[tuple[str, str]]:
    """The app's headers plus ``Content-Length: length`` when the length is known
    and the app framed nothing itself (a new list: the app's is never changed)."""
    if length is None:
        return headers
    for name, _ in headers:
        if len(name) in (14, 17) and name.lower() in ("content-length", "transfer-encoding"):
            return headers
    return [*headers, ("Content-Length", str(length))]


def serialize_head(version: str, status: str, headers: list[tuple[str, str]]) -> bytes:
    """``HTTP/1.1 200 OK`` (or ``Status: 200 OK``) + headers + blank line, as bytes.

    Raises ``HeadError`` when any part breaks the grammar (see the module
    docstring): a CR or LF would let data split the response."""
    try:
        lines = "".join([f"{k}: {v}\r\n" for k, v in headers])
        head = f"{version} {status}\r\n{lines}\r\n".encode("latin-1")
    except (TypeError, ValueError):  # not (name, value) pairs; past latin-1
        raise HeadError(_what_is_wrong(version, status, headers)) from None
    lines_out = len(headers) + 2
    code = status[:3]
    if (
        # the only control characters are the CR LF we put (HTAB is allowed):
        # data with CR LF in it would make lines that each look well formed
        len(head) - len(head.translate(None, _CTLS)) != 2 * lines_out
        or not (code.isdecimal() and code.isascii())
        or status[3:4] not in _AFTER_CODE
        or " " in version
        or not version
    ):
        raise HeadError(_what_is_wrong(version, status, headers))
    for name, _ in headers:
        if name not in _TOKENS_SEEN:
            if type(name) is not str or not _TOKEN.fullmatch(name):
                raise HeadError(_what_is_wrong(version, status, headers))
            if len(_TOKENS_SEEN) < 1024:
                _TOKENS_SEEN.add(name)
    return head


def cached_head(
    version: str, status: str, headers: list[tuple[str, str]], length: int | None
) -> bytes:
    """``serialize_head`` of the headers plus the Content-Length of ``length``
    (``with_length``), for the heads with no ``Date``: the same app answers the
    same way most of the time, so finished heads are kept (at most 512, never a
    refused one) by (version, status, length, headers)."""
    key = (version, status, length, *headers)
    try:
        return HEADS[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable header value
        return serialize_head(version, status, with_length(headers, length))
    head = serialize_head(version, status, with_length(headers, length))
    if len(HEADS) < 512:
        HEADS[key] = head
    return head


def _what_is_wrong(version, status, headers) -> str:
    """Why ``serialize_head`` refused (the slow path: only on a refusal)."""
    if type(version) is not str or not version or _BAD_TEXT.search(version) or " " in version:
        return f"invalid response status line version {_short(version)}"
    if (
        type(status) is not str
        or not re.fullmatch(rf"[0-9]{{3}}(?: {_TEXT})?", status)
        or not _latin1(status)
    ):
        return f"invalid response status {_short(status)}: three digits and a reason phrase"
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            return f"invalid response header {_short(item)}: not a (name, value) tuple"
        name, value = item
        if type(name) is not str or not _TOKEN.fullmatch(name):
            return f"invalid response header name {_short(name)}: not a token (RFC 9110 5.1)"
        if type(value) is not str:
            return f"invalid response header {name}: value {_short(value)} is not a str"
        bad = _BAD_TEXT.search(value)
        if bad:
            return (
                f"invalid response header {name}: value {_short(value)} holds the control "
                f"character {bad.group()!r} (CR, LF, NUL: header injection)"
            )
        if not _latin1(value):
            return f"invalid response header {name}: value {_short(value)} is not latin-1"
    return "invalid response head"


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def status_version(environ: dict) -> str:
    """The version of the status line answering a proxy (uwsgi): its
    ``SERVER_PROTOCOL`` when that is ``HTTP/<digit>[.<digit>]``, else (absent,
    empty, or anything else) ``HTTP/1.0``, as uWSGI answers without one."""
    version = environ.get("SERVER_PROTOCOL")
    if version in KNOWN_VERSIONS:
        return version
    if version and _VERSION.fullmatch(version):
        return version
    return "HTTP/1.0"


def check_vars(environ: dict, protocol: str) -> None:
    """Refuse (``ProtocolError``, close) a proxy's variables whose values hold
    CR, LF or NUL: no HTTP field can hold them (RFC 9110 5.5), and they would
    forge log lines or, echoed by an app, split a response (the head's gate
    would refuse it). Names are the proxy's own (its params; HTTP_* from header
    names it checked) and reach no log line; an app echoing one meets the gate."""
    text = "".join(environ.values())
    if "\n" not in text and "\r" not in text and "\0" not in text:  # memchr: faster than re
        return
    for name, value in environ.items():
        if _BAD_VAR.search(value):
            raise ProtocolError(
                f"invalid {protocol} request: variable {_short(name)} = {_short(value)} "
                "holds CR, LF or NUL",
                0,
            )
