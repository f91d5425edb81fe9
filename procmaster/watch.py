"""Watching files with inotify (``inotify-simple``), in the master's event loop.

Owns: ``touch-reload``, ``touch-chain-reload``, ``touch-workers-reload``,
``touch-logrotate``/``touch-logreopen``, ``fs-reload`` and ``py-autoreload``'s
module files: which paths are watched and which events count.

Theory of operation
-------------------
A touched file is often replaced rather than written (``mv new old``, ``git
checkout``, an editor's save-by-rename) or does not exist yet, so the watch is on
the *directory* that holds each path, and an event counts when its name is the
watched file's: touched (``IN_ATTRIB``), written (``IN_CLOSE_WRITE``, ``IN_MODIFY``),
created, moved in, or deleted. A watched directory itself (``fs-reload`` on a
directory) counts for any event inside it. ``read()`` turns the pending events
into ``(kind, path)`` pairs; the master debounces them (several events in a short
window make one reload) and decides what a kind means.

Must not know: what a reload does.
"""

from __future__ import annotations

import os

from inotify_simple import INotify, flags

__all__ = ["Watcher"]

FILE_MASK = (
    flags.ATTRIB
    | flags.CLOSE_WRITE
    | flags.MODIFY
    | flags.CREATE
    | flags.MOVED_TO
    | flags.DELETE
    | flags.MOVED_FROM
)
DIR_MASK = FILE_MASK | flags.DELETE_SELF | flags.MOVE_SELF


class Watcher:
    def __init__(self) -> None:
        self.inotify = INotify(nonblocking=True)
        self.wd_dir: dict[int, str] = {}
        self.dir_wd: dict[str, int] = {}
        # directory -> {file name or "" (the directory itself): (kind, path)}
        self.targets: dict[str, dict[str, tuple[str, str]]] = {}

    def fileno(self) -> int:
        return self.inotify.fileno()

    def close(self) -> None:
        self.inotify.close()

    def __len__(self) -> int:
        return sum(len(t) for t in self.targets.values())

    def _watch_dir(self, directory: str) -> bool:
        if directory in self.dir_wd:
            return True
        try:
            wd = self.inotify.add_watch(directory, DIR_MASK)
        except OSError:
            return False
        self.wd_dir[wd] = directory
        self.dir_wd[directory] = wd
        return True

    def add(self, path: str, kind: str) -> str | None:
        """Watch ``path`` (a file, existing or not, or a directory) for ``kind``.
        Returns a problem to report (the directory is missing), else None."""
        path = os.path.abspath(path)
        if os.path.isdir(path) and not os.path.islink(path):
            directory, name = path, ""
        else:
            directory, name = os.path.split(path)
        if not self._watch_dir(directory):
            return (
                f"cannot watch {path!r}: directory {directory!r} does not exist or is not readable"
            )
        self.targets.setdefault(directory, {})[name] = (kind, path)
        return None

    def read(self) -> list[tuple[str, str]]:
        """The (kind, path) of every watched path that changed since the last call."""
        hits: dict[str, tuple[str, str]] = {}
        for event in self.inotify.read(timeout=0):
            directory = self.wd_dir.get(event.wd)
            if directory is None:
                continue
            targets = self.targets.get(directory, {})
            if event.mask & flags.IGNORED:
                # the directory went away: forget the watch (add() again to restore)
                self.wd_dir.pop(event.wd, None)
                self.dir_wd.pop(directory, None)
                continue
            hit = targets.get(event.name)
            if hit is not None:
                hits[hit[1]] = hit
            whole = targets.get("")
            if whole is not None:
                hits[whole[1]] = whole
        return list(hits.values())


def _library_dirs() -> tuple[str, ...]:
    import sys
    import sysconfig

    dirs = set()
    for scheme_path in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(scheme_path)
        if path:
            dirs.add(os.path.realpath(path))
    for prefix in {sys.base_prefix, sys.base_exec_prefix}:
        dirs.add(os.path.realpath(os.path.join(prefix, "lib")))
    for path in sys.path:
        if path.endswith(("site-packages", "dist-packages")):
            dirs.add(os.path.realpath(path))
    return tuple(d.rstrip("/") + "/" for d in dirs)


_LIBRARY_DIRS: tuple[str, ...] | None = None


def module_files(seen: set[str]) -> list[str]:
    """Source files of the imported modules not in ``seen`` (which is updated),
    leaving out the standard library and installed packages: what a developer
    edits is the app."""
    import sys

    global _LIBRARY_DIRS
    if _LIBRARY_DIRS is None:
        _LIBRARY_DIRS = _library_dirs()
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or path in seen:
            continue
        seen.add(path)
        if path.endswith((".pyc", ".pyo")):
            path = path[:-1]
        if not path.endswith(".py"):
            continue
        real = os.path.realpath(path)
        if real.startswith(_LIBRARY_DIRS):
            continue
        found.append(real)
    return found
