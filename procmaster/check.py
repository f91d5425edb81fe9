"""``procmaster --check site.ini``: the resolved configuration and a migration
report (what procmaster does with each option the file uses), without starting.

Owns: the report's wording and the verdict "would start / would not start".
Must not know: how anything is served; it reads the option table and the Config.
"""

from __future__ import annotations

import os

from . import options as _options
from .api import service_problems

__all__ = ["render_check"]

_HEADINGS = {
    _options.FULL: "supported",
    _options.PARTIAL: "partly supported",
    _options.ACCEPTED: "accepted without effect",
    _options.UNSUPPORTED: "not supported",
}


def _problems(cfg) -> list[str]:
    """Why procmaster would not start with this config (empty: it would)."""
    problems = []
    if cfg.emperor:
        return problems  # an emperor serves nothing itself: its vassals do
    if not cfg.sockets_in_order():
        problems.append(
            "no socket: set http-socket (e.g. 127.0.0.1:8000), socket (uwsgi protocol), "
            "fastcgi-socket or scgi-socket"
        )
    if not (cfg.module or cfg.wsgi_file or cfg.mount):
        problems.append("no app: set module (pkg.mod:app), wsgi-file (path.py) or mount")
    problems += service_problems(cfg, cfg.chdir or os.getcwd())  # caches, spoolers, mules
    return problems


def _watch_problems(cfg) -> list[str]:
    """Watched paths whose directory does not exist: such a watch never fires. In
    the order the config declares them (the table says which options are watches)."""
    watched = _options.watch_options()
    problems = []
    for entry in cfg.entries:
        if entry.key not in watched:
            continue
        path = entry.value
        if not os.path.isabs(path) and cfg.chdir:
            path = os.path.join(cfg.chdir, path)  # relative to chdir, as the master
        if os.path.isdir(path):
            continue
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            problems.append(
                f"{entry.origin}: option '{entry.key}': {path!r} can never be "
                f"watched: directory {directory!r} does not exist"
            )
    return problems


def render_check(cfg) -> tuple[str, bool]:
    """(report text, True when procmaster would start with ``cfg``)."""
    out = [cfg.as_ini(), ""]
    seen: dict[str, list[str]] = {}
    for entry in cfg.entries:
        opt = _options.lookup(entry.key)
        if opt is None or entry.key in ("check", "ini"):
            continue
        seen.setdefault(opt.name, []).append(entry.origin)
    by_status: dict[str, list[str]] = {status: [] for status in _HEADINGS}
    for name, origins in seen.items():
        opt = _options.BY_NAME[name]
        note = f": {opt.note}" if opt.note else ""
        by_status[opt.status].append(f"  {name} ({origins[0]}){note}")
    out.append("migration report")
    for status, heading in _HEADINGS.items():
        rows = by_status[status]
        if rows:
            out.append(f" {heading} ({len(rows)}):")
            out.extend(rows)
    if cfg.warnings:
        out.append(f" warnings ({len(cfg.warnings)}):")
        out.extend(f"  {w}" for w in cfg.warnings)
    unwatchable = _watch_problems(cfg)
    if unwatchable:
        out.append(f" watched paths that do not work ({len(unwatchable)}):")
        out.extend(f"  {p}" for p in unwatchable)
    problems = _problems(cfg)
    if problems:
        out.append(" procmaster would NOT start:")
        out.extend(f"  {p}" for p in problems)
    else:
        out.append(" procmaster would start with this configuration.")
    return "\n".join(out) + "\n", not problems
