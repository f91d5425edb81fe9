"""Reading the lines of one uWSGI-style INI file (not configparser: uWSGI differs).

Theory of operation
-------------------
``parse_lines()`` turns the text of one file into the ``(line number, key, value)``
lines of the section asked for, in file order; it knows nothing of options,
placeholders or other files (the reader in ``procmaster.config.reader`` does that).

* ``[name]`` starts a section; only lines of the asked section (``uwsgi`` unless
  ``file.ini:name``) are returned; a section may appear more than once. Lines of
  other sections are not looked at (they may belong to other tools), except that
  a merge-conflict marker anywhere is an error.
* Full-line comments start with ``;`` or ``#``. Blank lines are skipped.
* ``key = value``: the value is everything after the first ``=``, stripped. A line
  with no ``=`` gives value ``None`` (uWSGI's bare boolean: ``master``); the
  reader decides whether that option may be bare.
* Value clean-ups uWSGI does not do, each with a warning: a trailing inline
  comment (whitespace then ``#`` or ``;``) is removed, and one pair of matching
  quotes around the whole value is removed.

Rules for this module: text in, lines and warnings out. No file system, no
options, no placeholders.
"""

from __future__ import annotations

import re

from .errors import ConfigError

DEFAULT_SECTION = "uwsgi"

_MERGE_MARKER = re.compile(r"(<{7}|={7}|>{7}|\|{7})(\s|$)")
_INLINE_COMMENT = re.compile(r"\s[#;]")


class Line:
    """One ``key = value`` line of the asked section. ``value`` is None for a bare key."""

    __slots__ = ("lineno", "key", "value")

    def __init__(self, lineno: int, key: str, value: str | None) -> None:
        self.lineno = lineno
        self.key = key
        self.value = value

    def __repr__(self) -> str:
        return f"Line({self.lineno}, {self.key!r}, {self.value!r})"


def clean_value(value: str) -> tuple[str, bool, bool]:
    """Remove surrounding quotes and a trailing inline comment from a stripped value.

    Returns ``(value, removed_quotes, removed_comment)``.
    """
    if value[:1] in ("'", '"'):
        q = value[0]
        end = value.find(q, 1)
        if end > 0:
            rest = value[end + 1 :].strip()
            if not rest:
                return value[1:end], True, False
            if rest[0] in "#;" and value[end + 1 : end + 2].isspace():
                return value[1:end], True, True
    m = _INLINE_COMMENT.search(value)
    if m:
        return value[: m.start()].rstrip(), False, True
    return value, False, False


def parse_lines(
    text: str, display: str, section: str = DEFAULT_SECTION
) -> tuple[list[Line], list[tuple[int, str]], bool]:
    """The lines of ``section`` in ``text``; ``display`` names the file in messages.

    Returns ``(lines, warnings, found)``: warnings are ``(lineno, message)`` with
    the message already prefixed by ``display:lineno:``; ``found`` tells whether
    the section exists at all.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    lines: list[Line] = []
    warnings: list[tuple[int, str]] = []
    current = ""
    found = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if _MERGE_MARKER.match(line):
            raise ConfigError(
                f"merge conflict marker '{line[:7]}': resolve the conflict in this file",
                f"{display}:{lineno}",
            )
        first = line[0]
        if first == ";" or first == "#":
            continue
        if first == "[":
            if not line.endswith("]") or len(line) < 3:
                raise ConfigError(
                    f"expected a section header like [uwsgi], got '{line}'", f"{display}:{lineno}"
                )
            current = line[1:-1].strip()
            if current == section:
                found = True
            continue
        if current != section:
            continue
        key, eq, value = line.partition("=")
        key = key.strip()
        if not eq:
            lines.append(Line(lineno, key, None))
            continue
        if not key:
            raise ConfigError(f"expected 'option = value', got '{line}'", f"{display}:{lineno}")
        value = value.strip()
        if value:
            value, quotes, comment = clean_value(value)
            if comment:
                warnings.append(
                    (
                        lineno,
                        f"{display}:{lineno}: inline comment removed from '{key}' value "
                        f"(uWSGI would keep it in the value)",
                    )
                )
            if quotes:
                warnings.append(
                    (
                        lineno,
                        f"{display}:{lineno}: quotes removed from '{key}' value "
                        f"(uWSGI would keep them in the value)",
                    )
                )
        lines.append(Line(lineno, key, value))
    return lines, warnings, found
