"""Turning the ordered entries into a frozen, validated ``Config`` through the table.

Theory of operation
-------------------
``build()`` walks the reader's items in order. For an option it converts the
value with the option's type (``procmaster.options.convert``), appends it (list
options) or replaces the value (scalars: the last one wins), and remembers where
it came from. Then:

* ``unsupported`` options: an error when ``blocking`` (all of them are reported
  at once, after the walk), else a warning that the option is ignored (also in
  strict mode: uWSGI's strict mode refuses only names it does not know);
* a word or nothing given to a numeric option (``cheaper = true``) is 0, as
  uWSGI's atoi reads it, with a warning;
* keys that are not options are custom keys (placeholders): a warning with a
  suggestion unless some ``%(key)`` refers to them; in strict mode they are errors
  unless declared with ``set-placeholder``. Names uWSGI has but procmaster does not
  declare are reported as unsupported, not unknown.

Rules for this module: it knows the table and the entries, never how an option is
carried out.
"""

from __future__ import annotations

from collections import namedtuple

from .. import options as _options
from ..options import ACCEPTED, BOOL_WORDS, NUMERIC_TYPES, OPTIONS, UNSUPPORTED, Option
from .errors import ConfigError, prefix
from .reader import ENV_WHERE, Item, Reader, canonical, item_key

Entry = namedtuple("Entry", "key value origin")
Entry.__doc__ = """One resolved entry: ``key`` (an option's name, or a custom key as written),
``value`` (the string after placeholders; ``true`` for a bare flag), ``origin``
(``file:line`` or ``command line``)."""

_PYTHON_PLUGIN_PREFIXES = ("python", "pypy")


def _attr_options() -> list[Option]:
    return [o for o in OPTIONS if o.attr is not None]


class Config:
    """The configuration, frozen once built. One attribute per option (``-`` as
    ``_``): ``cfg.processes``, ``cfg.socket`` ... List options are lists (do not
    change them). Options that store into another (``lazy`` → ``lazy-apps``,
    ``procname-prefix-spaced`` → ``procname-prefix``) show the shared value.
    """

    warnings: list[str]
    argv: list[str]
    files: list[str]
    custom: dict[str, str]
    entries: list

    def __init__(self) -> None:
        object.__setattr__(self, "_frozen", False)

    def __setattr__(self, name: str, value: object) -> None:
        if self._frozen:
            raise AttributeError(f"Config is frozen: cannot set {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Config is frozen: cannot delete {name!r}")

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    def __repr__(self) -> str:
        return f"<Config files={self.files!r} entries={len(self.entries)}>"

    # -- by name ------------------------------------------------------------------
    def _target(self, name: str) -> Option | None:
        opt = _options.lookup(name)
        if opt is None or opt.attr is None:
            return None
        return _options.BY_NAME[opt.store] if opt.store else opt

    def get(self, name: str, default: object = ...) -> object:
        """The value of option ``name`` (name or alias, ``-``/``_`` alike), else of
        custom key ``name``; KeyError when neither (unless ``default`` is given)."""
        opt = self._target(name)
        if opt is not None:
            return getattr(self, opt.attr)  # type: ignore[arg-type]
        key = canonical(name)
        if key in self._custom_by_key:
            return self.custom[self._custom_by_key[key]]
        if default is not ...:
            return default
        raise KeyError(name)

    def origin(self, name: str, index: int = -1) -> str:
        """Where the value of ``name`` came from: ``file:line``, ``command line``, or
        ``default`` when it was not set. For list options, of item ``index``."""
        opt = self._target(name)
        key = opt.name if opt is not None else canonical(name)
        if opt is None and key not in self._custom_by_key:
            raise KeyError(name)
        where = self._origins.get(key)
        if where is None:
            return "default"
        if isinstance(where, list):
            return where[index]
        return where

    def is_set(self, name: str) -> bool:
        """True if option or custom key ``name`` was given anywhere."""
        opt = self._target(name)
        key = opt.name if opt is not None else canonical(name)
        return key in self._origins

    def sockets_in_order(self) -> list[tuple[str, str]]:
        """``(option name, address)`` of every socket, in declaration order across kinds
        (``socket``, ``uwsgi-socket``, ``http-socket``, ``fastcgi-socket`` ...)."""
        out = []
        for e in self.entries:
            opt = _options.BY_NAME.get(e.key)
            if opt is not None and opt.protocol is not None:
                out.append((e.key, e.value))
        return out

    def as_ini(self) -> str:
        """The resolved entries as an INI ``[uwsgi]`` section (for show-config and
        --check). Include lines are shown as comments: their entries follow."""
        lines = [";procmaster resolved configuration", "[uwsgi]"]
        for e in self.entries:
            if e.key in ("ini", "inherit", "include", "check"):
                lines.append(f";{e.key} = {e.value}  ({e.origin})")
            else:
                lines.append(f"{e.key} = {e.value}")
        lines.append(";end of configuration")
        return "\n".join(lines) + "\n"


def build(reader: Reader, argv: list[str]) -> Config:
    """The frozen ``Config`` for everything ``reader`` read."""
    values: dict[str, object] = {}
    for opt in _attr_options():
        if opt.store is None:
            values[opt.name] = list(opt.default) if opt.multi else opt.default  # type: ignore[call-overload]
    origins: dict[str, object] = {}
    custom: dict[str, str] = {}
    custom_by_key: dict[str, str] = {}
    entries: list = []
    warnings = list(reader.warnings)
    ignored: list[tuple[Item, str]] = []
    custom_items: list[Item] = []
    # blocking options: all of them are reported together (--check lists every one)
    errors: list[tuple[int, str, str]] = []

    for item in reader.items:
        opt = item.option
        text = item.value if item.value is not None else ""
        if opt is None:
            key = canonical(item.name)
            if not item.declared and _options.is_uwsgi_option(key):
                ignored.append(
                    (
                        item,
                        f"option '{item.key}' is a uWSGI option procmaster does not support; ignored",
                    )
                )
            else:
                spelled = custom_by_key.setdefault(key, item.name)
                custom[spelled] = text
                custom_items.append(item)
            origins[key] = item.where
            entries.append(Entry(item.name, text, item.where))
            continue
        if opt.cli_only and item.from_file:
            raise ConfigError(
                f"option '{item.key}' can only be given on the command line", item.where, item.key
            )
        value = _convert(opt, item, warnings)
        if opt.status == UNSUPPORTED:
            why = opt.note or "not implemented yet"
            if opt.blocking:
                errors.append(
                    (item.seq, item.where, f"option '{item.key}' is not supported: {why}")
                )
            else:
                ignored.append((item, f"option '{item.key}' is not supported ({why}); ignored"))
        elif opt.status == ACCEPTED and opt.name == "plugins":
            _check_plugins(item, text, warnings)
        if opt.attr is None:  # a family such as hook-*: no attribute to set
            key = canonical(item.name)
            origins[key] = item.where
            entries.append(Entry(key, text, item.where))
            continue
        target = item_key(item)
        if opt.multi:
            values[target].append(value)  # type: ignore[union-attr]
            origins.setdefault(target, []).append(item.where)  # type: ignore[union-attr]
        else:
            values[target] = value
            origins[target] = item.where
        if opt.store:
            origins[opt.name] = item.where
        if item.value is None and opt.type == "bool":
            text = "true"
        entries.append(Entry(opt.name, text, item.where))

    strict = bool(values["strict"])
    # strict mode refuses what uWSGI's strict mode refuses (names it does not know),
    # never a real uWSGI option that procmaster reads without its effect
    for item, message in ignored:
        warnings.append((item.seq, prefix(item.where) + message))
    for item in custom_items:
        key = canonical(item.name)
        if item.declared or (key in reader.referenced and not strict):
            continue
        hint = _options.did_you_mean(item.name)
        # UWSGI_* variables are read before any strict line, so uWSGI's strict mode
        # never sees them: an unknown one stays a warning
        if strict and not item.where.startswith(ENV_WHERE):
            errors.append(
                (
                    item.seq,
                    item.where,
                    f"unknown option '{item.key}'{hint} (strict mode: declare placeholders "
                    f"with set-placeholder = NAME=VALUE)",
                )
            )
        else:
            warnings.append((item.seq, prefix(item.where) + f"unknown option '{item.key}'{hint}"))
    if errors:
        errors.sort(key=lambda e: e[0])
        seq, where, message = errors[0]
        err = ConfigError(message, where)
        if len(errors) > 1:
            rest = "\n".join(prefix(w) + m for _, w, m in errors[1:])
            err.args = (f"{err}\n{rest}",)
        raise err

    warnings.sort(key=lambda w: w[0])

    cfg = Config()
    for opt in _attr_options():
        source = opt.store or opt.name
        object.__setattr__(cfg, opt.attr, values[source])  # type: ignore[arg-type]
    # a line repeated by a for block warns once
    cfg.warnings = list(dict.fromkeys(w for _, w in warnings))
    cfg.argv = list(argv)
    cfg.files = list(reader.files)
    cfg.custom = custom
    cfg.entries = entries
    object.__setattr__(cfg, "_origins", origins)
    object.__setattr__(cfg, "_custom_by_key", custom_by_key)
    cfg._freeze()
    return cfg


def _convert(opt: Option, item: Item, warnings: list[tuple[int, str]]) -> object:
    raw = item.value
    if raw is None or raw == "":
        if opt.value_optional:
            return opt.bare
        raw = ""
    if opt.type in NUMERIC_TYPES and (raw == "" or raw.strip().lower() in BOOL_WORDS):
        # uWSGI 2.0 reads these with atoi/strtoul: a word or nothing is 0
        given = f"'{raw}'" if raw else "no value"
        try:
            value = _options.convert(opt, "0")
        except ValueError as e:
            raise ConfigError(
                f"option '{item.key}': {e}, got {given} (uWSGI 2.0 reads it as 0)",
                item.where,
                item.key,
            ) from None
        warnings.append(
            (
                item.seq,
                prefix(item.where) + f"option '{item.key}': {given} is not a number; read "
                f"as 0, as uWSGI 2.0 reads it (write a number)",
            )
        )
        return value
    try:
        return _options.convert(opt, raw)
    except ValueError as e:
        got = f"'{raw}'" if raw else "an empty value"
        why = ""
        if item.unset_env:
            names = ", ".join(item.unset_env)
            verb = "is" if len(item.unset_env) == 1 else "are"
            why = f" (environment variable {names} {verb} not set)"
        raise ConfigError(
            f"option '{item.key}': {e}, got {got}{why}", item.where, item.key
        ) from None


def _check_plugins(item: Item, text: str, warnings: list[tuple[int, str]]) -> None:
    for name in text.replace(" ", ",").split(","):
        name = name.strip()
        if not name or name.startswith(_PYTHON_PLUGIN_PREFIXES) or name in ("0", "http", "logfile"):
            continue
        warnings.append(
            (
                item.seq,
                prefix(item.where) + f"plugin '{name}' is not available: procmaster runs Python "
                f"WSGI apps only; ignored",
            )
        )
