"""Gathering configuration entries, in order, from the command line and INI files.

Theory of operation
-------------------
``Reader`` keeps one ordered list of ``Item`` s: ``(key, value, where)`` with the
key as written and ``where`` = ``file:line`` or ``command line``. Command-line
items are added in argv order; an ``ini``/``inherit``/``include``/``check`` item is
followed at once by the items of the file it names ("top-bottom and expand
asap", uWSGI's parsing order), so later scalars win wherever they come from.

Each value is expanded (``placeholders.expand``) when its line is read, so a
``%(name)`` sees what was set above it, and includes may use placeholders. A
``%(name)`` not set yet is resolved in ``finish()``, when everything is read.

``set = name=value`` becomes an item for ``name``; ``set-placeholder``/``set-ph``
declares a custom key (allowed in strict mode).

Includes: relative paths are relative to the including file (the working
directory on the command line); ``:section`` alone means another section of the
same file (on the command line: of the last INI file read). A file/section
already being read is a loop and an error naming the chain.

Rules for this module: it knows option *names* (to spot includes, ``set``, bare
booleans and placeholder keys) but not what options mean; converting values is
``build``'s job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .. import options as _options
from ..options import Option
from .errors import ConfigError, prefix
from .ini import DEFAULT_SECTION, parse_lines
from .placeholders import FileContext, PlaceholderError, expand, finish, is_pending

_INCLUDES = frozenset(("ini", "inherit", "include", "check"))


class Item:
    """One entry as read. ``value`` is None for a bare key (``master``, ``--master``)."""

    __slots__ = ("key", "option", "value", "segments", "where", "seq", "declared", "from_file")

    def __init__(
        self, key: str, option: Option | None, where: str, seq: int, from_file: bool
    ) -> None:
        self.key = key  # as written: 'workers', '--processes', '-p', 'my_var'
        self.option = option
        self.value: str | None = None
        self.segments: list | None = None  # while %(...) is pending
        self.where = where
        self.seq = seq
        self.declared = False  # custom key declared with set-placeholder
        self.from_file = from_file

    @property
    def name(self) -> str:
        """The key without leading dashes."""
        return self.key.lstrip("-")

    def __repr__(self) -> str:
        return f"Item({self.key!r}, {self.value!r}, {self.where!r})"


def canonical(key: str) -> str:
    """The name placeholders and origins use: an option's (target) name, else the
    key with ``_`` as ``-``."""
    opt = _options.lookup(key)
    if opt is not None and "*" not in opt.name:
        return opt.store or opt.name
    return key.strip().replace("_", "-")


def item_key(item: Item) -> str:
    """``canonical()`` for an item (its option is already known: ``-p`` is processes)."""
    opt = item.option
    if opt is not None and "*" not in opt.name:
        return opt.store or opt.name
    return canonical(item.name)


def split_ref(ref: str) -> tuple[str, str]:
    """``file.ini:section`` → ``('file.ini', 'section')``; no section → ``''``."""
    path, sep, section = ref.rpartition(":")
    if sep and "/" not in section:
        return path, section
    return ref, ""


class Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.items: list[Item] = []
        self.latest: dict[str, Item] = {}
        self.referenced: set[str] = set()
        self.warnings: list[tuple[int, str]] = []
        self.files: list[str] = []
        self.first_ctx: FileContext | None = None
        self.last_ctx: FileContext | None = None
        self._chain: list[tuple[tuple[str, str], str]] = []
        self._cwd = os.getcwd()

    # -- placeholders ---------------------------------------------------------
    def _lookup(self, name: str) -> str | None:
        key = canonical(name)
        self.referenced.add(key)
        item = self.latest.get(key)
        if item is None or item.segments is not None:
            return None
        return _placeholder_text(item)

    def warn(self, seq: int, where: str, message: str) -> None:
        self.warnings.append((seq, prefix(where) + message))

    # -- adding items -----------------------------------------------------------
    def add(
        self,
        key: str,
        value: str | None,
        where: str,
        ctx: FileContext | None,
        option: Option | None = None,
    ) -> None:
        from_file = ctx is not None
        opt = option if option is not None else _options.lookup(key)
        if value is None:
            if opt is None or not opt.value_optional:
                if not from_file:
                    raise ConfigError(f"option '{key}' needs a value", where, key)
                if opt is None:
                    raise ConfigError(f"expected 'option = value', got '{key}'", where, key)
                raise ConfigError(
                    f"option '{key}' needs a value (write '{key} = VALUE')", where, key
                )
        if opt is not None and opt.name in ("set", "set-placeholder") and value is not None:
            self._add_set(key, opt, value, where, ctx)
            return
        item = Item(key, opt, where, len(self.items), from_file)
        if value is not None:
            item.segments = self._expand(key, value, where, ctx, item.seq)
            if not is_pending(item.segments):
                item.value = "".join(item.segments)
                item.segments = None
        self._append(item)
        if opt is not None and opt.name in _INCLUDES and opt.status != _options.UNSUPPORTED:
            if item.segments is not None:
                raise ConfigError(
                    f"option '{item.key}': a %(placeholder) in an include must be set above it",
                    where,
                    item.key,
                )
            self.read_ini(item.value or "", where, ctx, item.key)

    def _expand(self, key: str, value: str, where: str, ctx: FileContext | None, seq: int) -> list:
        base = os.path.dirname(ctx.path) if ctx is not None else self._cwd
        try:
            return expand(
                value,
                ctx=ctx,
                lookup=self._lookup,
                environ=self.environ,
                base_dir=base,
                warn=lambda m: self.warn(seq, where, f"option '{key}': {m}"),
            )
        except PlaceholderError as e:
            raise ConfigError(f"option '{key}': {e}", where, key) from None

    def _add_set(
        self, key: str, opt: Option, value: str, where: str, ctx: FileContext | None
    ) -> None:
        name, eq, rest = value.partition("=")
        name = name.strip()
        if not eq or not name:
            raise ConfigError(f"option '{key}': expected NAME=VALUE, got '{value}'", where, key)
        target = _options.lookup(name)
        if opt.name == "set-placeholder":
            if target is not None:
                raise ConfigError(
                    f"option '{key}': '{name}' is an option, not a placeholder "
                    f"(use 'set = {name}=...' or '{name} = ...')",
                    where,
                    key,
                )
            item = Item(name, None, where, len(self.items), ctx is not None)
            item.declared = True
            item.segments = self._expand(name, rest, where, ctx, item.seq)
            if not is_pending(item.segments):
                item.value = "".join(item.segments)
                item.segments = None
            self._append(item)
            return
        self.add(name, rest, where, ctx, target)

    def _append(self, item: Item) -> None:
        self.items.append(item)
        self.latest[item_key(item)] = item

    # -- INI files ------------------------------------------------------------------
    def read_ini(
        self, ref: str, where: str, parent: FileContext | None, option: str = "ini"
    ) -> None:
        path, section = split_ref(ref)
        asked = section or DEFAULT_SECTION
        if not path:
            source = parent or self.last_ctx
            if source is None:
                raise ConfigError(
                    f"option '{option}': '{ref}' names a section but no INI file was read before it",
                    where,
                    option,
                )
            abspath, display = source.path, source.display
        elif parent is not None:
            abspath = os.path.normpath(os.path.join(os.path.dirname(parent.path), path))
            if os.path.isabs(path):
                display = path
            else:
                display = os.path.normpath(os.path.join(os.path.dirname(parent.display), path))
        else:
            abspath = os.path.normpath(os.path.join(self._cwd, path))
            display = path
        label = display if asked == DEFAULT_SECTION else f"{display}:{asked}"
        key = (abspath, asked)
        for k, _ in self._chain:
            if k == key:
                chain = " -> ".join([s for _, s in self._chain] + [label])
                raise ConfigError(f"include loop: {chain}", where, option)
        try:
            with open(abspath, "rb") as f:
                data = f.read()
            text = data.decode("utf-8")
        except OSError as e:
            raise ConfigError(
                f"cannot read '{display}': {e.strerror or e}",
                where if parent is not None else "",
                option,
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(
                f"cannot read '{display}': not valid UTF-8",
                where if parent is not None else "",
                option,
            ) from None
        lines, warnings, found = parse_lines(text, display, asked)
        if not found:
            raise ConfigError(
                f"'{display}' has no [{asked}] section",
                where if parent is not None else "",
                option,
            )
        ctx = FileContext(abspath, display, ref, section, self.first_ctx)
        if self.first_ctx is None:
            self.first_ctx = ctx
        self.last_ctx = ctx
        if abspath not in self.files:
            self.files.append(abspath)
        by_line: dict[int, list[str]] = {}
        for lineno, message in warnings:
            by_line.setdefault(lineno, []).append(message)
        self._chain.append((key, label))
        try:
            for line in lines:
                for message in by_line.get(line.lineno, ()):
                    self.warnings.append((len(self.items), message))
                self.add(line.key, line.value, f"{display}:{line.lineno}", ctx)
        finally:
            self._chain.pop()
        if parent is not None:
            self.last_ctx = parent

    # -- the end ---------------------------------------------------------------------
    def finish(self) -> None:
        """Resolve the ``%(...)`` that were not set yet when their line was read."""
        for item in self.items:
            if item.segments is not None:
                self._resolve(item, [])

    def _resolve(self, item: Item, stack: list[Item]) -> str:
        if item.segments is None:
            return _placeholder_text(item)
        stack.append(item)

        def final_lookup(name: str) -> str | None:
            key = canonical(name)
            self.referenced.add(key)
            other = self.latest.get(key)
            if other is None or other in stack:
                return None
            return self._resolve(other, stack)

        unresolved: list[str] = []
        item.value = finish(item.segments, final_lookup, unresolved)
        item.segments = None
        stack.pop()
        if unresolved and not (item.option is not None and item.option.request_vars):
            for expr in unresolved:
                self.warn(
                    item.seq,
                    item.where,
                    f"option '{item.key}': %({expr}) is not an option or custom key set "
                    f"anywhere; kept as is",
                )
        return item.value


def _placeholder_text(item: Item) -> str:
    if item.value is None:  # bare key
        return "true" if item.option is not None and item.option.type == "bool" else ""
    return item.value
