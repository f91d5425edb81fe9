"""Reading uWSGI-style command-line flags into ordered ``(option, value)`` items.

Theory of operation
-------------------
Forms (all options from the one table in ``procmaster.options``):

* ``--socket X``, ``--socket=X``, ``-s X``, ``-sX``.
* Flags (bool options) take no separate value: ``--master``, ``--master=false``,
  ``-M``; one-letter flags group (``-ML``). ``--no-master`` is a procmaster
  extension: ``--no-X`` sets bool option X to false when ``no-X`` is not itself an
  option (``--no-orphans`` is uWSGI's own option).
* Options whose value is optional (``--chmod-socket``, ``--http-keepalive``,
  ``--log-date``) take it as ``--opt=VALUE``, ``-CVALUE`` or the next argument
  when that is not an option (nor an ``.ini`` file, except for ``--check FILE``:
  a bare ``--check`` checks what the other options give).
* A bare argument ending in ``.ini`` (or ``.ini:section``) is ``--ini`` at that
  position; ``--`` ends the options.
* Items keep argv order: the reader applies them in that order (later scalars
  win), with ``--ini`` files expanded where they appear.

Unlike uWSGI's getopt, long options are never abbreviated (``--proc`` is an
error with a suggestion) and a bare ``.ini`` argument is read where it appears,
not after all flags.

Rules for this module: argv in, items out; no files, no placeholders.
"""

from __future__ import annotations

from .. import options as _options
from ..options import Option
from .errors import ConfigError

_CONFIG_EXTS = (".xml", ".yaml", ".yml", ".json", ".js")


class CliItem:
    """One option from argv: ``flag`` as typed (``--socket``, ``-s``); ``value`` is
    None when given bare (``--master``)."""

    __slots__ = ("flag", "option", "value")

    def __init__(self, flag: str, option: Option, value: str | None) -> None:
        self.flag = flag
        self.option = option
        self.value = value

    def __repr__(self) -> str:
        return f"CliItem({self.flag!r}, {self.option.name!r}, {self.value!r})"


def _unknown(flag: str, name: str) -> ConfigError:
    if _options.is_uwsgi_option(name):
        return ConfigError(
            f"option '{flag}' is a uWSGI option procmaster does not support", "command line", flag
        )
    hint = _options.suggest(name)
    more = f" (did you mean '--{hint}'?)" if hint else ""
    return ConfigError(f"unknown option '{flag}'{more}", "command line", flag)


def _is_ini_arg(arg: str) -> bool:
    path, sep, section = arg.rpartition(":")
    if sep and "/" not in section and path.endswith(".ini"):
        return True
    return arg.endswith(".ini")


def parse_argv(argv: list[str]) -> list[CliItem]:
    """The options of ``argv`` (without the program name), in order."""
    items: list[CliItem] = []
    ini = _options.BY_NAME["ini"]
    i, n = 0, len(argv)
    only_positional = False
    while i < n:
        arg = argv[i]
        i += 1
        if only_positional or not arg.startswith("-") or arg == "-":
            items.append(_positional(arg, ini, argv, i - 1))
            continue
        if arg == "--":
            only_positional = True
            continue
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            opt = _options.lookup(name) if name else None
            if opt is None:
                neg = _negated(name)
                if neg is None:
                    raise _unknown(f"--{name}", name)
                if eq:
                    raise ConfigError(
                        f"option '--{name}' takes no value", "command line", f"--{name}"
                    )
                items.append(CliItem(f"--{name}", neg, "false"))
                continue
            flag = f"--{name}"
            if eq:
                items.append(CliItem(flag, opt, value))
            elif opt.takes_value and not opt.value_optional:
                if i >= n or argv[i].startswith("--"):
                    raise ConfigError(f"option '{flag}' needs a value", "command line", flag)
                items.append(CliItem(flag, opt, argv[i]))
                i += 1
            elif (
                opt.takes_value
                and opt.type != "bool"
                and i < n
                and not argv[i].startswith("-")
                and (opt.type == "ini" or not _is_ini_arg(argv[i]))
            ):
                # an optional value given as the next argument (--chmod-socket 660,
                # --post-buffering 8192), as uWSGI's own parser takes it
                items.append(CliItem(flag, opt, argv[i]))
                i += 1
            else:
                items.append(CliItem(flag, opt, None))
            continue
        # one-letter options, possibly grouped (-ML) or with an attached value (-p4)
        j = 1
        while j < len(arg):
            letter = arg[j]
            opt = _options.lookup_short(letter)
            flag = f"-{letter}"
            if opt is None:
                if letter in _options.UWSGI_SHORTS:
                    raise ConfigError(
                        f"option '{flag}' (uWSGI's --{_options.UWSGI_SHORTS[letter]}) is not "
                        f"supported by procmaster",
                        "command line",
                        flag,
                    )
                raise ConfigError(f"unknown option '{flag}' (see --help)", "command line", flag)
            rest = arg[j + 1 :]
            if not opt.takes_value:
                items.append(CliItem(flag, opt, None))
                j += 1
                continue
            if rest:
                items.append(CliItem(flag, opt, rest))
            elif opt.value_optional:
                items.append(CliItem(flag, opt, None))
            else:
                if i >= n or argv[i].startswith("--"):
                    raise ConfigError(f"option '{flag}' needs a value", "command line", flag)
                items.append(CliItem(flag, opt, argv[i]))
                i += 1
            break
    return items


def _negated(name: str) -> Option | None:
    """The bool option X of ``--no-X``, if that is what ``name`` is."""
    if not name.startswith("no-") and not name.startswith("no_"):
        return None
    if _options.is_uwsgi_option(name):
        return None
    opt = _options.lookup(name[3:])
    if opt is not None and opt.type == "bool" and not opt.cli_only:
        return opt
    return None


def _positional(arg: str, ini: Option, argv: list[str], index: int) -> CliItem:
    if _is_ini_arg(arg):
        return CliItem(arg, ini, arg)
    if arg.rpartition(":")[0].endswith(_CONFIG_EXTS) or arg.endswith(_CONFIG_EXTS):
        raise ConfigError(
            f"cannot read '{arg}': only INI configuration files are supported; convert it to INI",
            "command line",
        )
    hint = ""
    if index > 0:
        prev = argv[index - 1]
        name = prev.lstrip("-").partition("=")[0]
        if prev.startswith("--"):
            opt = _options.lookup(name)
        elif prev.startswith("-") and len(prev) == 2:
            opt = _options.lookup_short(name)
        else:
            opt = None
        if opt is not None and "=" not in prev:
            if opt.type == "bool":
                hint = f" (a flag takes a value only as {prev}=VALUE)"
            elif opt.value_optional:
                hint = f" (an optional value is given as {prev}=VALUE)"
    raise ConfigError(f"unexpected argument '{arg}'{hint}", "command line")
