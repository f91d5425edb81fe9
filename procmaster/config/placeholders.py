"""Placeholders and magic variables in option values, as uWSGI 2.0 spells them.

Theory of operation
-------------------
``expand()`` first replaces the magic variables of an INI file (as uWSGI does
when it reads the file, so ``%(%k * 2)`` is arithmetic on the CPU count), then
scans the value left to right, once; text it substitutes is never scanned again.
It understands:

``%%``            a literal ``%`` (INI files only, as uWSGI)
``%X``            a magic variable about the INI file being read (files only):
                  ``%d`` its directory (with a trailing slash), ``%p`` its absolute
                  path, ``%s`` its file name, ``%n`` the name without extension,
                  ``%e`` the extension, ``%c`` the name of its directory, ``%x`` the
                  section asked for with ``file:section`` (empty when none),
                  ``%o`` the reference as given, ``%i`` its inode, ``%j`` the
                  djb33x hash of ``%p`` in hex, ``%0``..``%9`` the components of
                  its directory; uppercase ``%D %P %S %N %E %C %X %O %I %J`` the same
                  for the first INI file read from the command line; ``%h``
                  hostname, ``%k`` CPU count, ``%t``/``%T`` start time in
                  seconds/microseconds, ``%u``/``%U`` uid/user name, ``%g``/``%G``
                  gid/group name, ``%v`` the working directory, ``%[`` ESC.
``%(name)``       the value most recently set for option or custom key ``name``
                  (``-``/``_`` alike; aliases resolve). Not set yet: looked up
                  again when everything has been read (forward references work as
                  in uWSGI); never set: left as is. ``%(a + b)``, ``%(a ++)`` ... is
                  uWSGI's placeholder arithmetic (a left-to-right pipeline).
``$(NAME)``       the environment variable NAME; unset: ``$(NAME)`` stays in the
                  value, as uWSGI 2.0 keeps it, with a warning (and the name is
                  handed back, so that an error about the value can name it).
``@(path)``       the contents of a file, stripped; relative to the INI file's
                  directory (the working directory on the command line).
``@(exec://CMD)`` the output of CMD run by /bin/sh, less one trailing newline; a
                  non-zero exit is an error.

Differences from uWSGI (each gives a warning where it matters): an unknown
``%X`` is kept (uWSGI replaces it with nothing); uWSGI resolves ``%(name)`` to the
*first* value ever set, procmaster to the latest one set so far; parentheses group
in arithmetic (``%((%k * 2) + 1)``), where uWSGI splits at spaces only and reads
``(2`` as an unset name.

Rules for this module: pure string work plus the few reads the syntax asks for
(``@(file)``, the environment mapping it is given, host facts for magic
variables). It must not know about options beyond the lookup function it is
handed, nor about serving.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

_START = time.time()


class PlaceholderError(ValueError):
    """A placeholder that cannot be expanded (e.g. ``@(file)`` unreadable)."""


class Pending:
    """A ``%(expr)`` that could not be resolved when its line was read."""

    __slots__ = ("expr",)

    def __init__(self, expr: str) -> None:
        self.expr = expr

    def __repr__(self) -> str:
        return f"Pending({self.expr!r})"


Segments = list  # list[str | Pending]


def _djb33x_hex(text: str) -> str:
    h = 5381
    for b in text.encode():
        sb = b - 256 if b > 127 else b  # uWSGI hashes signed chars
        h = (((h << 5) + h) ^ sb) & 0xFFFFFFFF
    return h.to_bytes(4, "little").hex().upper()


class FileContext:
    """What magic variables say about one INI file being read."""

    def __init__(
        self, path: str, display: str, ref: str, section: str, first: FileContext | None
    ) -> None:
        self.path = path  # absolute
        self.display = display  # as shown in messages
        self.ref = ref  # as given: file[:section]
        self.section = section  # section asked with ':section', '' if none
        self.first = first or self
        self._table: dict[str, str] | None = None

    def table(self) -> dict[str, str]:
        if self._table is None:
            p = self.path
            d, s = os.path.split(p)
            d_slash = d if d.endswith("/") else d + "/"
            n, dot, e = s.rpartition(".")
            if not dot:
                n, e = s, ""
            t = {
                "o": self.ref,
                "p": p,
                "s": s,
                "d": d_slash,
                "e": e,
                "n": n,
                "c": os.path.basename(d.rstrip("/")),
                "x": self.section,
                "j": _djb33x_hex(p),
            }
            try:
                t["i"] = str(os.lstat(p).st_ino)
            except OSError:
                t["i"] = ""
            parts = [c for c in d.split("/") if c]
            for k in range(10):
                t[str(k)] = parts[k] if k < len(parts) else ""
            self._table = t
        return self._table

    def magic(self, letter: str) -> str | None:
        if letter in _FILE_LETTERS:
            return self.table()[letter]
        if letter in _UPPER_LETTERS:
            return self.first.table()[letter.lower()]
        fn = _HOST_MAGIC.get(letter)
        return fn() if fn is not None else None


_FILE_LETTERS = frozenset("opsdencxij0123456789")
_UPPER_LETTERS = frozenset("OPSDENCXIJ")


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def _group() -> str:
    import grp

    try:
        return grp.getgrgid(os.getgid()).gr_name
    except KeyError:
        return str(os.getgid())


_HOST_MAGIC: dict[str, Callable[[], str]] = {
    "h": lambda: os.uname().nodename,
    "k": lambda: str(os.cpu_count() or 1),
    "t": lambda: str(int(_START)),
    "T": lambda: str(int(_START * 1_000_000)),
    "u": lambda: str(os.getuid()),
    "U": _user,
    "g": lambda: str(os.getgid()),
    "G": _group,
    "v": os.getcwd,
    "[": lambda: "\033",
}

MAGIC_LETTERS = "".join(sorted(_FILE_LETTERS | _UPPER_LETTERS | set(_HOST_MAGIC)))


def _to_int(text: str) -> int:
    """strtoll-like: the leading integer of text, 0 if none."""
    text = text.strip()
    end = 0
    if text[:1] in "+-":
        end = 1
    while end < len(text) and text[end].isdigit():
        end += 1
    try:
        return int(text[:end])
    except ValueError:
        return 0


_OPS = frozenset("+-*/")


def _run(
    tokens: list[str], pos: int, lookup: Callable[[str], str | None], final: bool
) -> tuple[str | None, int]:
    """Evaluate tokens from ``pos`` as uWSGI's pipeline (left to right: a value
    after a value is concatenated, an operator applies to the next value) up to a
    closing ``)`` or the end. Returns ``(value or None when a name is unset, pos)``."""
    current: str | None = None
    op = ""
    n = len(tokens)
    while pos < n:
        tok = tokens[pos]
        pos += 1
        if tok == ")":
            break
        if tok in _OPS:
            op = tok
            continue
        if tok in ("++", "--"):
            if current is not None:
                current = str(_to_int(current) + (1 if tok == "++" else -1))
            op = ""
            continue
        if tok == "(":
            value, pos = _run(tokens, pos, lookup, final)
            if value is None:
                return None, pos
        elif tok.isdigit():
            value = tok
        else:
            found = lookup(tok)
            if found is None:
                if not final:
                    return None, pos
                found = ""
            value = found
        if op == "":
            current = (current or "") + value
        else:
            a, b = _to_int(current or ""), _to_int(value)
            if op == "+":
                current = str(a + b)
            elif op == "-":
                current = str(a - b)
            elif op == "*":
                current = str(a * b)
            else:
                current = str(int(a / b)) if b else "0"
        op = ""
    return (current if current is not None else ""), pos


def _group_tokens(expr: str) -> list[str]:
    out: list[str] = []
    for word in expr.split():
        buf = ""
        for ch in word:
            if ch in "()":
                if buf:
                    out.append(buf)
                    buf = ""
                out.append(ch)
            else:
                buf += ch
        if buf:
            out.append(buf)
    return out


def evaluate(expr: str, lookup: Callable[[str], str | None], final: bool) -> str | None:
    """The value of ``%(expr)``, or None when a name is not set (yet).

    ``final``: names still unset count as empty in arithmetic, as in uWSGI; a
    plain ``%(name)`` that is unset stays None (left as is by the caller).
    Parentheses group (``%((a * 2) + 1)``), a procmaster extension: see
    ``uwsgi_reading``.
    """
    tokens = expr.split()
    if len(tokens) <= 1 and "(" not in expr:
        return lookup(expr.strip())
    if "(" in expr or ")" in expr:
        tokens = _group_tokens(expr)
    return _run(tokens, 0, lookup, final)[0]


def uwsgi_reading(expr: str, lookup: Callable[[str], str | None]) -> str | None:
    """What uWSGI 2.0 makes of ``%(expr)`` with parentheses: words split at spaces
    only, so ``(2`` is a name (unset: empty) and ``2)`` reads as 2."""
    return _run(expr.split(), 0, lookup, True)[0]


def _close(value: str, start: int) -> int:
    """The index of the ``)`` matching the ``(`` before ``start``, or -1 (uWSGI
    counts nested parentheses)."""
    depth = 0
    for k in range(start, len(value)):
        c = value[k]
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return k
            depth -= 1
    return -1


_PERCENT = "\x00"  # a literal % from %% while the value is scanned


def _magic(value: str, ctx: FileContext, warn: Callable[[str], None]) -> str:
    """Replace the magic variables (``%d`` ...), as uWSGI does when it reads the file
    (so ``%(%k * 2)`` works); ``%%`` stays a literal ``%``, ``%(`` is left alone."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        nxt = value[i + 1] if i + 1 < n else ""
        if c != "%" or not nxt or nxt == "(":
            out.append(c)
            i += 1
            continue
        if nxt == "%":
            out.append(_PERCENT)
        else:
            res = ctx.magic(nxt)
            if res is None:
                warn(
                    f"'%{nxt}' is not a magic variable; kept as is "
                    f"(uWSGI would remove it; write %% for a literal %)"
                )
                out.append("%" + nxt)
            else:
                out.append(res)
        i += 2
    return "".join(out)


def expand(
    value: str,
    *,
    ctx: FileContext | None,
    lookup: Callable[[str], str | None],
    environ: Mapping[str, str],
    base_dir: str,
    warn: Callable[[str], None],
    unset: list[str] | None = None,
) -> Segments:
    """Expand one value; see the module docstring. Returns segments: strings and
    ``Pending`` parts for ``%(...)`` not resolvable yet (see ``finish``). The names
    of unset ``$(NAME)`` (kept as written) are appended to ``unset``."""
    if ctx is not None and "%" in value:
        value = _magic(value, ctx, warn)
    if "%(" not in value and "$(" not in value and "@(" not in value:
        return [value.replace(_PERCENT, "%")]
    out: Segments = []
    buf: list[str] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        nxt = value[i + 1] if i + 1 < n else ""
        if nxt != "(" or c not in "%$@":
            buf.append(c)
            i += 1
            continue
        end = _close(value, i + 2)
        if end < 0:
            buf.append(c)
            i += 1
            continue
        inner = value[i + 2 : end]
        i = end + 1
        if c == "%":
            res = evaluate(inner, lookup, final=False)
            if res is None:
                if buf:
                    out.append("".join(buf))
                    buf = []
                out.append(Pending(inner))
                continue
            if "(" in inner:
                theirs = uwsgi_reading(inner, lookup)
                if theirs != res:
                    warn(
                        f"%({inner}) is {res}: parentheses group here; uWSGI 2.0 has no "
                        f"parentheses in placeholder arithmetic and would read {theirs!r}"
                    )
            buf.append(res)
        elif c == "$":
            env = environ.get(inner)
            if env is None:
                warn(
                    f"environment variable '{inner}' is not set; '$({inner})' is kept in "
                    f"the value, as uWSGI 2.0 keeps it"
                )
                if unset is not None:
                    unset.append(inner)
                env = f"$({inner})"
            buf.append(env)
        else:
            buf.append(_read_at(inner, base_dir))
    if buf:
        out.append("".join(buf))
    return [s.replace(_PERCENT, "%") if isinstance(s, str) else s for s in out]


def _read_at(name: str, base_dir: str) -> str:
    if name.startswith("exec://"):
        return _run_command(name[7:])
    scheme = name.partition("://")
    if scheme[1] and scheme[0].isalpha():
        raise PlaceholderError(
            f"'@({name})': only files and exec://COMMAND can be read here (not {scheme[0]}://)"
        )
    return _read_at_file(name, base_dir)


def _run_command(command: str) -> str:
    """The output of ``@(exec://COMMAND)`` (run by /bin/sh, as uWSGI's popen), less
    one trailing newline."""
    import subprocess  # lazily: only a config with @(exec://...) runs a command

    try:
        done = subprocess.run(
            command, shell=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise PlaceholderError(f"'@(exec://{command})' did not finish in 60 s") from None
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise PlaceholderError(
            f"'@(exec://{command})' exited with status {done.returncode}"
            + (f": {tail[0]}" if tail[0] else "")
        )
    out = done.stdout.decode("utf-8", "replace")
    return out[:-1] if out.endswith("\n") else out


def _read_at_file(name: str, base_dir: str) -> str:
    path = os.path.join(base_dir, name) if name else name
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise PlaceholderError(f"cannot read '@({name})': {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise PlaceholderError(f"cannot read '@({name})': not valid UTF-8") from None


def is_pending(segments: Segments) -> bool:
    return any(isinstance(s, Pending) for s in segments)


def finish(segments: Segments, lookup: Callable[[str], str | None], unresolved: list[str]) -> str:
    """Join segments, resolving ``Pending`` parts now that everything is read.

    A plain ``%(name)`` that is still unset is kept as written and its name added
    to ``unresolved``.
    """
    parts = []
    for s in segments:
        if isinstance(s, Pending):
            res = evaluate(s.expr, lookup, final=True)
            if res is None:
                unresolved.append(s.expr)
                parts.append(f"%({s.expr})")
            else:
                parts.append(res)
        else:
            parts.append(s)
    return "".join(parts)
