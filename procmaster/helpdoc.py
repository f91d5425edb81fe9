"""``procmaster --help`` text and ``docs/options.md``, both rendered from the option table.

Regenerate the docs with::

    python -m procmaster.helpdoc > docs/options.md

(``python -m procmaster.helpdoc --help-text`` prints the ``--help`` text.) A test
checks that the committed file is up to date.

Rules for this module: it reads ``procmaster.options`` and formats text; it knows
nothing else and is imported only when help or docs are asked for.
"""

from __future__ import annotations

import sys
import textwrap

from .options import (
    ACCEPTED,
    FULL,
    GROUPS,
    OPTIONS,
    PARTIAL,
    TYPE_DOCS,
    UNSUPPORTED,
    Option,
)

_METAVAR = {
    "bool": "",
    "int": "N",
    "size": "BYTES",
    "megabytes": "MB",
    "seconds": "SECONDS",
    "str": "VALUE",
    "text": "TEXT",
    "spaced-text": "TEXT",
    "path": "PATH",
    "address": "ADDRESS",
    "mode": "MODE",
    "keyval": "NAME=VALUE",
    "mapping": "KEY=VALUE",
    "ini": "FILE[:section]",
    "bool-or-str": "FORMAT",
}

_STATUS_DOC = {
    FULL: "behaves as in uWSGI 2.0",
    PARTIAL: "works, with the difference given in the notes",
    ACCEPTED: "read and checked, but has no effect (the notes say why nothing is lost)",
    UNSUPPORTED: "not honoured: using it is a warning (the option is ignored), or an error "
    "where ignoring it would change what runs (marked *error*); the notes say what to do "
    "instead",
}

USAGE = """\
Usage: procmaster [--ini FILE[:section]]... [OPTIONS]
       procmaster FILE.ini [OPTIONS]
       procmaster --check FILE.ini[:section]

Options are uWSGI 2.0's: each works as --name VALUE (or --name=VALUE) on the
command line and as 'name = VALUE' in the [uwsgi] section of an INI file; '-'
and '_' are the same. Options and INI files apply in command-line order; for
options that take one value the last one wins, repeatable ones add up.
Flags take no separate value: --master, --master=false, --no-master.
An optional value is attached: --chmod-socket=660.
"""


def _metavar(opt: Option) -> str:
    mv = _METAVAR.get(opt.type, "VALUE")
    if not mv:
        return ""
    return f"[={mv}]" if opt.value_optional else f" {mv}"


def _default_text(opt: Option) -> str:
    d = opt.default
    if opt.multi or d is None:
        return ""
    if isinstance(d, bool):
        return "true" if d else "false"
    if opt.type == "mode" and isinstance(d, int):
        return f"{d:o}"
    return str(d)


def _bare_text(opt: Option) -> str:
    if not opt.value_optional or opt.type == "bool":
        return ""
    b = opt.bare
    if opt.type == "mode" and isinstance(b, int):
        return f"{b:o}"
    if b is True:
        return "true"
    return str(b) if b != "" else "empty"


def _names(opt: Option) -> list[str]:
    return [opt.name, *opt.aliases] if "*" not in opt.name else [opt.name, *opt.aliases]


def _flag_line(opt: Option) -> str:
    mv = _metavar(opt)
    parts = []
    if opt.short:
        parts.append(f"-{opt.short}")
    parts.append(f"--{opt.name}{mv}")
    return ", ".join(parts)


def render_help() -> str:
    """The text ``procmaster --help`` prints: usage, then every option by group."""
    out = [USAGE]
    width = 100
    for group in GROUPS:
        opts = [o for o in OPTIONS if o.group == group]
        if not opts:
            continue
        out.append(f"{group}:")
        for opt in opts:
            out.append("  " + _flag_line(opt))
            bits = [opt.help]
            extra = []
            if opt.aliases:
                extra.append("also " + ", ".join(f"--{a}" for a in opt.aliases))
            if opt.multi:
                extra.append("repeatable")
            dt = _default_text(opt)
            if dt:
                extra.append(f"default {dt}")
            bt = _bare_text(opt)
            if bt:
                extra.append(f"bare: {bt}")
            if opt.status == UNSUPPORTED:
                extra.append("NOT SUPPORTED" + (", error if used" if opt.blocking else ", ignored"))
            elif opt.status == ACCEPTED:
                extra.append("no effect")
            elif opt.status == PARTIAL:
                extra.append("partial: " + opt.note)
            if extra:
                bits.append("[" + "; ".join(extra) + "]")
            text = " ".join(bits)
            out.extend(
                textwrap.wrap(text, width, initial_indent="        ", subsequent_indent="        ")
            )
        out.append("")
    out.append("Statuses and notes for every option: docs/options.md")
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code_list(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"`{n}`" for n in names)


_READING_RULES = """\
## How configuration is read

* **Command line**: `--name VALUE`, `--name=VALUE`, `-x VALUE`, `-xVALUE`. Flags take
  no separate value: `--master`, `--master=false`, and (a procmaster extension)
  `--no-master`. An optional value is attached: `--chmod-socket=660`. A bare
  `site.ini` argument is `--ini site.ini`, read where it stands. Long options are
  never abbreviated. Everything applies in argv order; later scalars win.
* **INI files**: the `[uwsgi]` section (`FILE:section` picks another); `;` and `#`
  start full-line comments; `-` and `_` in keys are the same; the value is
  everything after the first `=`, stripped. A bare `master` line means
  `master = true` (options that may be bare only); any other line without `=` is
  an error. List options append, scalars: last one wins.
* **Clean-ups uWSGI does not do** (each with a `file:line` warning): a trailing
  inline comment (` #` or ` ;` after the value) is removed, and one pair of
  quotes around the whole value is removed.
* **Includes**: `ini = other.ini[:section]` (relative to the including file),
  `ini = :section` (another section of the same file), `inherit`, `include`;
  read at that point; loops are errors naming the chain.
* **Placeholders**: `%d` (the INI file's directory, with a trailing slash), `%p`,
  `%s`, `%n`, `%e`, `%c`, `%x`, `%o`, `%i`, `%j`, `%0`..`%9` and their uppercase
  forms (first INI file); `%h`, `%k`, `%t`, `%T`, `%u`, `%U`, `%g`, `%G`, `%v`,
  `%[`; `%%` is a literal `%` (INI files only). `%(name)` is the latest value of
  an option or custom key (forward references resolve at the end; uWSGI takes the
  first value), with uWSGI's arithmetic (`%(a + 1)`). `$(NAME)` is an environment
  variable (unset: empty, with a warning). `@(path)` is a file's contents,
  stripped, relative to the INI file.
* **Unknown keys** are custom keys (placeholders): a warning with a suggestion
  unless a `%(key)` uses them; with `strict = true` they are errors (declare them
  with `set-placeholder`), and so are ignored unsupported options.
"""


def render_markdown() -> str:
    """The text of docs/options.md."""
    out = [
        "# procmaster options",
        "",
        "<!-- Generated from the option table (procmaster/options/table.py) by "
        "`python -m procmaster.helpdoc > docs/options.md`. Do not edit by hand. -->",
        "",
        "procmaster reads uWSGI 2.0's options. Every option below works on the command "
        "line (`--name VALUE`) and in an INI file (`name = VALUE`), unless it says "
        "*command line only*.",
        "",
        "Status:",
        "",
    ]
    for status in (FULL, PARTIAL, ACCEPTED, UNSUPPORTED):
        out.append(f"* **{status}**: {_STATUS_DOC[status]}.")
    out += [
        "",
        "Apps written for uWSGI keep `import uwsgi` and `uwsgidecorators` (see the options "
        "`cache2`, `spooler`, `mule`, `locks`, `sharedarea`, `rpc-max`; `procmaster --check` "
        "lists each subsystem). An app tells procmaster from uWSGI by `uwsgi.procmaster`, "
        "procmaster's version (uWSGI has no such name): "
        '`hasattr(uwsgi, "procmaster")`.',
        "",
        "A uWSGI option not listed here is reported as not supported: ignored with a warning "
        "in an INI file, an error on the command line (where procmaster cannot tell whether "
        "it takes a value).",
        "",
    ]
    out.append(_READING_RULES)
    out += ["## Value types", "", "| type | value |", "|---|---|"]
    for name, doc in TYPE_DOCS.items():
        out.append(f"| `{name}` | {_md(doc)} |")
    out.append("")
    counts = {
        s: sum(1 for o in OPTIONS if o.status == s) for s in (FULL, PARTIAL, ACCEPTED, UNSUPPORTED)
    }
    out.append(
        "Options: "
        + ", ".join(f"{counts[s]} {s}" for s in (FULL, PARTIAL, ACCEPTED, UNSUPPORTED))
        + "."
    )
    out.append("")
    for group in GROUPS:
        opts = [o for o in OPTIONS if o.group == group]
        if not opts:
            continue
        out += [
            f"## {group}",
            "",
            "| option | aliases | type | default | status | description | notes |",
            "|---|---|---|---|---|---|---|",
        ]
        for opt in opts:
            aliases = list(opt.aliases)
            if opt.short:
                aliases.insert(0, f"-{opt.short}")
            typ = f"`{opt.type}`" + (" (list)" if opt.multi else "")
            default = _default_text(opt)
            bare = _bare_text(opt)
            if bare:
                default = (default + "; " if default else "") + f"bare: {bare}"
            status = opt.status + (
                " (*error*)" if opt.status == UNSUPPORTED and opt.blocking else ""
            )
            notes = opt.note
            if opt.cli_only:
                notes = "command line only" + ("; " + notes if notes else "")
            if opt.prefixes:
                fam = "also every uWSGI option starting with " + _code_list(opt.prefixes)
                notes = fam + ("; " + notes if notes else "")
            out.append(
                f"| `{opt.name}` | {_code_list(aliases)} | {typ} | {_md(default)} | {status} "
                f"| {_md(opt.help)} | {_md(notes)} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--help-text":
        sys.stdout.write(render_help())
    else:
        sys.stdout.write(render_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
