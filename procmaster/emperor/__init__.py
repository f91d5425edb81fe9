"""The Emperor: one process that supervises a procmaster master ("vassal") per
INI file, and the vassal's end of the pipe between them.

Parts
-----
* ``discovery`` -- patterns -> files -> a diff against the last look (pure).
* ``vassal`` -- one vassal: its ``VassalState`` and back-off (no processes).
* ``spawn`` -- starting one vassal's master (command line, config check, owner).
* ``loop`` -- the Emperor itself: processes, inotify, signals, stats, systemd.
* ``link`` -- ``EmperorLink``, the vassal's side of the pipe (used by the master).

Must not know: protocols, WSGI, workers (a vassal is just ``procmaster --ini``);
the master imports only ``link`` through this package, never the loop.
"""

from __future__ import annotations

from .link import EmperorLink

__all__ = ["EmperorLink", "run"]


def run(cfg) -> int:
    """Run the Emperor for ``cfg`` (its ``emperor`` patterns) until it stops."""
    # lazy: the master imports this package for EmperorLink alone; the emperor's
    # loop (config loading, subprocess, its supervision) loads only in an emperor
    from .loop import run as run_loop

    return run_loop(cfg)
