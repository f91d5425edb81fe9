"""The Emperor: one process that supervises a procmaster master ("vassal") per
INI file. (The vassal's end of the pipe between them is the master's:
``procmaster.master.vassal``; both ends speak ``procmaster.ipc``'s words.)

Parts
-----
* ``discovery`` -- patterns -> files -> a diff against the last look (pure).
* ``vassal`` -- one vassal: its ``VassalState`` and back-off (no processes).
* ``spawn`` -- starting one vassal's master (command line, config check, owner).
* ``loop`` -- the Emperor itself: processes, inotify, signals, stats, systemd.

Must not know: protocols, WSGI, workers (a vassal is just ``procmaster --ini``).
"""

from __future__ import annotations

__all__ = ["run"]


def run(cfg) -> int:
    """Run the Emperor for ``cfg`` (its ``emperor`` patterns) until it stops."""
    # lazy: ``procmaster --check`` and the cli import this package; the loop (its
    # supervision, subprocess) loads only when an emperor really runs
    from .loop import run as run_loop

    return run_loop(cfg)
