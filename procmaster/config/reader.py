"""Gathering configuration entries, in order, from the command line and INI files.

Theory of operation
-------------------
``Reader`` keeps one ordered list of ``Item`` s: ``(key, value, where)`` with the
key as written and ``where`` = ``file:line``, ``command line`` or ``environment
variable UWSGI_X``. ``UWSGI_*`` variables come first (``add_environ``, uWSGI's
order), then command-line items in argv order; an ``ini``/``inherit``/``include``/``check`` item is
followed at once by the items of the file it names ("top-bottom and expand
asap", uWSGI's parsing order), so later scalars win wherever they come from.

Lines inside ``if-*``/``for`` blocks go through ``logic.Logic`` first (one per
file, and one for the command line): a line may be skipped or repeated before it
is read; a block must end in the file that opened it.

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
from ..options import NUMERIC_TYPES, Option
from .errors import ConfigError, prefix
from .ini import DEFAULT_SECTION, parse_lines
from .logic import WORDS as LOGIC_WORDS
from .logic import Logic
from .placeholders import FileContext, PlaceholderError, expand, finish, is_pending

_INCLUDES = frozenset(("ini", "inherit", "include", "check"))
ENV_WHERE = "environment variable "  # where an option from UWSGI_NAME comes from

# options uWSGI 2.0 applies the moment it reads them (UWSGI_OPT_IMMEDIATE), before
# its placeholder passes: it never expands $(...), %(...) or @(...) in their values
_IMMEDIATE = frozenset(("ini", "include", "listen", "set-placeholder", "plugins", "strict"))


def _has_placeholder(value: str) -> bool:
    return "$(" in value or "%(" in value or "@(" in value


# UWSGI_* variables uWSGI 2.0 keeps for itself (parse_sys_envs in core/utils.c)
_ENV_NOT_OPTIONS = frozenset(
    (
        "UWSGI_RELOADS",
        "UWSGI_VASSALS_DIR",
        "UWSGI_EMPEROR_FD",
        "UWSGI_BROODLORD_NUM",
        "UWSGI_EMPEROR_FD_CONFIG",
        "UWSGI_EMPEROR_PROXY",
        "UWSGI_JAIL_PID",
        "UWSGI_ORIGINAL_PROC_NAME",
    )
)


class Item:
    """One entry as read. ``value`` is None for a bare key (``master``, ``--master``)."""

    __slots__ = (
        "key",
        "option",
        "value",
        "segments",
        "where",
        "seq",
        "declared",
        "from_file",
        "unset_env",
    )

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
        self.unset_env: list[str] = []  # $(NAME) left as written: NAME is not set

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
    def __init__(self, environ: Mapping[str, str], reloading: bool = False) -> None:
        self.environ = environ
        self.reloading = reloading
        self.items: list[Item] = []
        self.latest: dict[str, Item] = {}
        self.referenced: set[str] = set()
        self.warnings: list[tuple[int, str]] = []
        self.files: list[str] = []
        self.first_ctx: FileContext | None = None
        self.last_ctx: FileContext | None = None
        self._chain: list[tuple[tuple[str, str], str]] = []
        self._cwd = os.getcwd()
        self.logic = self._new_logic()

    def _new_logic(self) -> Logic:
        return Logic(self.environ, self._lookup, self.reloading, self._logic_warn, self._cwd)

    def _logic_warn(self, where: str, message: str) -> None:
        self.warn(len(self.items), where, message)

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
        opt = option if option is not None else _options.lookup(key)
        if opt is not None and opt.name in LOGIC_WORDS:
            self._logic_line(opt.name, key, value, where, ctx)
            return
        if self.logic.stack:
            for each in self.logic.lines(value):
                self._add(key, opt, each, where, ctx)
            return
        self._add(key, opt, value, where, ctx)

    def _logic_line(
        self, word: str, key: str, value: str | None, where: str, ctx: FileContext | None
    ) -> None:
        arg = value or ""
        if "%" in arg or "$(" in arg or "@(" in arg:
            # expanded like any value; %(_) is kept for the blocks around this one
            seq = len(self.items)
            expanded = "%(_)".join(
                "".join(s if isinstance(s, str) else f"%({s.expr})" for s in segments)
                for segments in (
                    self._expand(key, part, where, ctx, seq) for part in arg.split("%(_)")
                )
            )
            if "$(" in arg or "@(" in arg or arg.replace("%(_)", "").count("%(") > 0:
                self.warn(
                    seq,
                    where,
                    f"'{key} = {arg}' is tested as '{expanded}' (uWSGI 2.0 does not expand "
                    f"$(...), %(...) or @(...) in a block's argument)",
                )
            arg = expanded
        self.logic.word(word, arg, where)

    def _add(
        self, key: str, opt: Option | None, value: str | None, where: str, ctx: FileContext | None
    ) -> None:
        from_file = ctx is not None
        if value is None and from_file:
            if opt is None and " " not in key and _options.is_uwsgi_option(key):
                value = ""  # a bare uWSGI option procmaster does not have: reported as such
            elif opt is not None and opt.type in NUMERIC_TYPES:
                value = ""  # uWSGI reads a bare numeric option as 0: build says so
        if value is None:
            if opt is None or not opt.value_optional:
                if not from_file:
                    raise ConfigError(f"option '{key}' needs a value", where, key)
                if opt is None:
                    raise ConfigError(f"expected 'option = value', got '{key}'", where, key)
                raise ConfigError(
                    f"option '{key}' needs a value (write '{key} = VALUE')", where, key
                )
        if opt is not None and opt.name in _IMMEDIATE and value and _has_placeholder(value):
            if opt.name != "set-placeholder":
                self.warn(
                    len(self.items),
                    where,
                    f"option '{key}': uWSGI 2.0 reads this option at once, before "
                    f"placeholders are expanded, and would use '{value}' as written; "
                    f"procmaster expands it",
                )
        if opt is not None and opt.name in ("set", "set-placeholder") and value is not None:
            self._add_set(key, opt, value, where, ctx)
            return
        item = Item(key, opt, where, len(self.items), from_file)
        if value is not None:
            item.segments = self._expand(key, value, where, ctx, item.seq, item.unset_env)
            if not is_pending(item.segments):
                item.value = "".join(item.segments)
                item.segments = None
        self._append(item)
        if (
            opt is not None
            and opt.name in _INCLUDES
            and opt.status != _options.UNSUPPORTED
            and (value is not None or opt.name != "check")  # bare --check names no file
        ):
            if item.segments is not None:
                raise ConfigError(
                    f"option '{item.key}': a %(placeholder) in an include must be set above it",
                    where,
                    item.key,
                )
            self.read_ini(item.value or "", where, ctx, item.key)

    def _expand(
        self,
        key: str,
        value: str,
        where: str,
        ctx: FileContext | None,
        seq: int,
        unset: list[str] | None = None,
    ) -> list:
        base = os.path.dirname(ctx.path) if ctx is not None else self._cwd
        try:
            return expand(
                value,
                ctx=ctx,
                lookup=self._lookup,
                environ=self.environ,
                base_dir=base,
                warn=lambda m: self.warn(seq, where, f"option '{key}': {m}"),
                unset=unset,
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
        if opt.name == "set-placeholder" and _has_placeholder(rest):
            self.warn(
                len(self.items),
                where,
                f"option '{key}': uWSGI 2.0 stores a placeholder before $(...), @(...) and "
                f"%(...) are expanded and would keep '{rest}' as written; procmaster expands it",
            )
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
        self._add(name, target, rest, where, ctx)

    def _append(self, item: Item) -> None:
        self.items.append(item)
        self.latest[item_key(item)] = item

    # -- UWSGI_* environment variables -------------------------------------------------
    def add_environ(self) -> None:
        """Every ``UWSGI_NAME=VALUE`` of the environment is option ``name`` (lower case,
        ``_`` as ``-``), read before the command line, as uWSGI 2.0 does: so the INI
        and the command line win over them, and their errors name the variable."""
        for var, value in self.environ.items():
            if not var.startswith("UWSGI_") or var in _ENV_NOT_OPTIONS or len(var) < 7:
                continue
            name = var[6:].lower().replace("_", "-")
            where = ENV_WHERE + var
            opt = _options.lookup(name)
            if opt is not None and opt.cli_only:
                self.warn(
                    len(self.items),
                    where,
                    f"'--{opt.name}' can only be given on the command line; ignored",
                )
                continue
            self.add(name, value, where, None, opt)

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
        outer_logic, self.logic = self.logic, self._new_logic()
        try:
            for line in lines:
                for message in by_line.get(line.lineno, ()):
                    self.warnings.append((len(self.items), message))
                self.add(line.key, line.value, f"{display}:{line.lineno}", ctx)
            self.logic.finish(f"the end of {label}")
        finally:
            self._chain.pop()
            self.logic = outer_logic
        if parent is not None:
            self.last_ctx = parent

    # -- the end ---------------------------------------------------------------------
    def finish(self) -> None:
        """Resolve the ``%(...)`` that were not set yet when their line was read."""
        self.logic.finish("the end of the command line")
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
