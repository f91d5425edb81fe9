"""Config logic: ``if-*`` … ``endif`` and ``for*`` … ``endfor`` blocks, as uWSGI 2.0
evaluates them.

Theory of operation
-------------------
uWSGI 2.0 does not skip a block once: while a block is open it runs the block's
test again for *every* line inside it (``add_exported_option`` in core/config.c).
So procmaster does the same. ``Logic.lines(value)`` returns what one line inside
the open blocks becomes:

* an ``if`` block whose test fails: nothing (the line is never read, so an
  error in it is never reported);
* an ``if`` block whose test holds: the line once, with ``%(_)`` replaced by what
  the test found (``if-env``: the variable's value; ``if-opt``: the option's value;
  ``if-exists``/``if-file``/``if-dir``/``if-hostname``: the argument; ``if-reload``
  and an unset ``if-not-env``: nothing, ``%(_)`` stays);
* a ``for`` block: the line once per item (``for``: the space-separated words;
  ``for-glob``: the matching paths, sorted, a directory with a trailing ``/``, and
  the pattern itself when nothing matches, as glob(3) with GLOB_NOCHECK;
  ``for-times = N``: 1..N; ``for-readline``: the lines of a file). So a block of
  two lines gives line 1 for every item, then line 2 for every item, as uWSGI.

Because the test runs per line, an ``if-not-opt = threads`` block that sets
``threads`` skips its later lines (uWSGI's reading); procmaster says so in a
warning. Any ``endif``/``endfor``/``end-if``/``end-for`` closes a block.

Differences from uWSGI 2.0, each with a warning: blocks nest (uWSGI stops with
"recursive logic in options is not supported", or ends both blocks at the first
``endif``); a block must be closed in the file that opened it; ``endif`` with no
open block, ``for-readline`` over a file that cannot be read and ``for-times``
without a number are errors (uWSGI ignores them); the argument of a block is
expanded like any value (``$(VAR)``, ``%(name)``), where uWSGI tests its text as
written.

Rules for this module: it knows the logic words and their tests (environment,
file system, the options read so far through a lookup function), nothing of
other options, values or serving.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from .errors import ConfigError

# name as written -> (test, negated); aliases as uWSGI 2.0 spells them
OPENERS: dict[str, tuple[str, bool]] = {
    "if-env": ("env", False),
    "ifenv": ("env", False),
    "if-not-env": ("env", True),
    "if-opt": ("opt", False),
    "if-not-opt": ("opt", True),
    "if-exists": ("exists", False),
    "ifexists": ("exists", False),
    "if-not-exists": ("exists", True),
    "if-file": ("file", False),
    "if-not-file": ("file", True),
    "if-dir": ("dir", False),
    "ifdir": ("dir", False),
    "if-directory": ("dir", False),
    "if-not-dir": ("dir", True),
    "if-reload": ("reload", False),
    "if-not-reload": ("reload", True),
    "if-hostname": ("hostname", False),
    "if-not-hostname": ("hostname", True),
    "if-hostname-match": ("hostname-match", False),
    "if-not-hostname-match": ("hostname-match", True),
    "if-plugin": ("plugin", False),
    "ifplugin": ("plugin", False),
    "if-not-plugin": ("plugin", True),
    "for": ("for", False),
    "for-glob": ("for-glob", False),
    "for-times": ("for-times", False),
    "for-readline": ("for-readline", False),
}
CLOSERS = frozenset(("endif", "end-if", "endfor", "end-for"))
WORDS = frozenset(OPENERS) | CLOSERS
# procmaster runs Python apps: the plugins a config may test for that are "loaded"
_PLUGINS = frozenset(("python", "python3", "python2", "python27", "python311", "pypy"))
_US = "%(_)"


class Block:
    __slots__ = ("word", "test", "negated", "arg", "where", "first", "flipped", "cache")

    def __init__(self, word: str, arg: str, where: str) -> None:
        self.word = word
        self.test, self.negated = OPENERS[word]
        self.arg = arg
        self.where = where
        self.first: bool | None = None  # the test's result at the first line
        self.flipped = False
        self.cache: dict[str, list[str]] = {}

    @property
    def is_for(self) -> bool:
        return self.test.startswith("for")

    def label(self) -> str:
        return f"{self.word} = {self.arg}" if self.arg else self.word


class Logic:
    """The open blocks of one file (or of the command line)."""

    def __init__(
        self,
        environ: Mapping[str, str],
        lookup: Callable[[str], str | None],
        reloading: bool,
        warn: Callable[[str, str], None],
        base_dir: str,
    ) -> None:
        self.environ = environ
        self.lookup = lookup
        self.reloading = reloading
        self.warn = warn  # (where, message)
        self.base_dir = base_dir
        self.stack: list[Block] = []

    # -- opening and closing --------------------------------------------------------------
    def word(self, word: str, arg: str, where: str) -> None:
        """Handle one logic line (``word`` is in ``WORDS``)."""
        if word in CLOSERS:
            if not self.stack:
                raise ConfigError(f"'{word}' without an open if-*/for block above it", where, word)
            block = self.stack.pop()
            if block.is_for != word.endswith("for"):
                self.warn(
                    where,
                    f"'{word}' closes '{block.label()}' ({block.where}); write "
                    f"'{'endfor' if block.is_for else 'endif'}' (uWSGI closes any block "
                    f"with any end word)",
                )
            return
        block = Block(word, arg, where)
        if block.test == "plugin" and "%(" not in arg and arg.strip() not in _PLUGINS:
            self.warn(
                where,
                f"'{block.label()}': procmaster has no plugin {arg.strip()!r}, so the test "
                f"is {'true' if block.negated else 'false'} (uWSGI's answer depends on the "
                f"plugins it was built with or loads)",
            )
        if self.stack:
            self.warn(
                where,
                f"'{block.label()}' inside '{self.stack[-1].label()}' "
                f"({self.stack[-1].where}): procmaster nests blocks; uWSGI 2.0 does not "
                f"(it stops with 'recursive logic in options is not supported', or ends "
                f"both blocks at the first end word)",
            )
        # test the block now wherever a line would reach it, so that a bad argument
        # (an unreadable for-readline file) is reported at its line, and only there
        for binding in self._bindings(len(self.stack)):
            self._run(block, self._arg(block, binding))
        self.stack.append(block)

    def finish(self, closing: str) -> None:
        """The end of the file (or command line): every block must be closed."""
        if self.stack:
            block = self.stack[-1]
            end = "endfor" if block.is_for else "endif"
            raise ConfigError(
                f"'{block.label()}' is never closed: expected '{end}' before {closing}",
                block.where,
                block.word,
            )

    # -- lines ----------------------------------------------------------------------------
    def lines(self, value: str | None) -> list[str | None]:
        """What one line with ``value`` becomes inside the open blocks (see module)."""
        out: list[str | None] = []
        self._walk(0, None, value, out)
        return out

    def _bindings(self, depth: int) -> list[str | None]:
        out: list[str | None] = []
        self._walk(0, None, None, out, depth, collect=True)
        return out

    def _walk(
        self,
        i: int,
        binding: str | None,
        value: str | None,
        out: list,
        depth: int | None = None,
        collect: bool = False,
    ) -> None:
        stop = len(self.stack) if depth is None else depth
        if i == stop:
            if collect:
                out.append(binding)
            elif binding is not None and value is not None:
                out.append(value.replace(_US, binding))
            else:
                out.append(value)
            return
        block = self.stack[i]
        results = self._run(block, self._arg(block, binding))
        if not block.is_for and not collect and i == 0:
            ok = bool(results)
            if block.first is None:
                block.first = ok
            elif ok != block.first and not block.flipped:
                block.flipped = True
                self.warn(
                    block.where,
                    f"'{block.label()}' {'now holds' if ok else 'no longer holds'} for the "
                    f"lines below an option its block set: uWSGI 2.0 tests it again at "
                    f"every line, so procmaster {'reads' if ok else 'skips'} them too",
                )
        for found in results:
            self._walk(i + 1, binding if found is None else found, value, out, depth, collect)

    @staticmethod
    def _arg(block: Block, binding: str | None) -> str:
        if binding is None:
            return block.arg
        return block.arg.replace(_US, binding)

    # -- the tests ---------------------------------------------------------------------------
    def _run(self, block: Block, arg: str) -> list:
        """A for block: its items. An if block: [] when the test fails, else one
        element, what ``%(_)`` becomes (None: ``%(_)`` stays as it is)."""
        test = block.test
        if block.is_for:
            items = block.cache.get(arg)
            if items is None:
                items = block.cache[arg] = self._items(block, arg)
            return items
        found: str | None
        if test in ("env", "opt"):
            name, eq, expected = arg.partition("=")
            got = self.environ.get(name) if test == "env" else self.lookup(name.strip())
            ok = got is not None and (not eq or got == expected)
            if block.negated:
                ok = not ok
            found = got
        elif test == "reload":
            ok = self.reloading != block.negated
            found = None
        else:
            ok = self._path_test(block, arg) != block.negated
            found = arg
        return [found] if ok else []

    def _path_test(self, block: Block, arg: str) -> bool:
        test = block.test
        if test == "exists":
            return os.path.exists(arg)
        if test == "file":
            return os.path.isfile(arg)
        if test == "dir":
            return os.path.isdir(arg)
        if test == "hostname":
            return os.uname().nodename == arg
        if test == "hostname-match":
            import re  # lazily: only this rare test needs regular expressions

            try:
                return re.search(arg, os.uname().nodename) is not None
            except re.error as e:
                raise ConfigError(
                    f"'{block.word}': expected a regular expression, got '{arg}' ({e})",
                    block.where,
                    block.word,
                ) from None
        return arg in _PLUGINS  # plugin

    def _items(self, block: Block, arg: str) -> list[str]:
        test = block.test
        if test == "for":
            return [w for w in arg.split(" ") if w]
        if test == "for-times":
            text = arg.strip()
            if not text.lstrip("-").isdigit():
                raise ConfigError(
                    f"'{block.word}': expected a whole number of times, got '{arg}'",
                    block.where,
                    block.word,
                )
            return [str(k) for k in range(1, int(text) + 1)]
        if test == "for-glob":
            import glob  # lazily: only for-glob needs it

            found = sorted(glob.glob(arg))
            if not found:
                self.warn(
                    block.where,
                    f"'{block.label()}' matches nothing: the pattern itself is the one "
                    f"item (as uWSGI 2.0, which globs with GLOB_NOCHECK)",
                )
                return [arg]
            return [p + "/" if os.path.isdir(p) and not p.endswith("/") else p for p in found]
        path = os.path.join(self.base_dir, arg)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return [line.rstrip("\r\n") for line in f]
        except OSError as e:
            raise ConfigError(
                f"'{block.word}': cannot read '{arg}': {e.strerror or e}", block.where, block.word
            ) from None
