"""Watching files and directories with inotify (``inotify-simple``), in a
selector loop: the master's watched-file options and the emperor's vassal files.

Owns: which paths are watched, which events count, and the inotify watch
descriptors behind them. A master uses it for ``touch-reload``,
``touch-chain-reload``, ``touch-workers-reload``, ``touch-logrotate``/
``touch-logreopen``, ``fs-reload`` and ``py-autoreload``'s module files; the
emperor for the directories its patterns go through.

Theory of operation
-------------------
A touched file is often replaced rather than written (``mv new old``, ``git
checkout``, an editor's save-by-rename) or does not exist yet, so the watch is on
the *directory* that holds each path. There are two kinds of target, sharing one
watch per directory:

* **A path** (``add``): an event counts when its name is the watched file's:
  touched (``IN_ATTRIB``), written (``IN_CLOSE_WRITE``, ``IN_MODIFY``), created,
  moved in, or deleted. A watched directory itself (``fs-reload`` on a directory)
  counts for any event inside it.
* **Names in a directory** (``watch_names``): an event counts when its name
  matches one of the glob patterns of interest there (a leading dot only matched
  by a pattern that starts with one, as the shell does), and also when the
  directory itself is deleted or moved, or the kernel's queue overflowed: the
  consumer re-reads the directory, so a lost event must not go unnoticed.
  ``IN_MODIFY`` is not asked for where only names matter: a log file written
  next to the watched names must not wake anyone up.

``read()`` turns the pending events into ``(tag, path)`` pairs, one per target
that changed (for names, the path is the directory). The tag is whatever the
caller gave (any hashable); the caller debounces and decides what it means.

Must not know: what a change asks for (a reload, a re-scan), or who asked.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Hashable, Iterable, Mapping

from inotify_simple import INotify, flags

__all__ = ["Watcher", "module_files", "name_matches"]

# names in a directory: appear, disappear, are touched or rewritten
NAMES_MASK = (
    flags.ATTRIB
    | flags.CLOSE_WRITE
    | flags.CREATE
    | flags.MOVED_TO
    | flags.DELETE
    | flags.MOVED_FROM
    | flags.DELETE_SELF
    | flags.MOVE_SELF
)
# a path's content too
DIR_MASK = NAMES_MASK | flags.MODIFY
SELF_GONE = flags.DELETE_SELF | flags.MOVE_SELF


def name_matches(name: str, pattern: str) -> bool:
    """True if the file name ``name`` matches the glob ``pattern`` (a leading dot
    only by a pattern that starts with one, as ``glob`` and the shell do)."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


class Watcher:
    """One inotify instance and the targets watched through it."""

    def __init__(self) -> None:
        self.inotify = INotify(nonblocking=True)
        self.wd_dir: dict[int, str] = {}
        self.dir_wd: dict[str, int] = {}
        self.dir_mask: dict[str, int] = {}
        # directory -> {file name or "" (the directory itself): (tag, path)}
        self.targets: dict[str, dict[str, tuple[Hashable, str]]] = {}
        # directory -> {tag: glob patterns of the names that matter}
        self.names: dict[str, dict[Hashable, frozenset[str]]] = {}

    def fileno(self) -> int:
        return self.inotify.fileno()

    def close(self) -> None:
        self.inotify.close()

    def __len__(self) -> int:
        """How many paths ``add`` watches (names in directories aside)."""
        return sum(len(t) for t in self.targets.values())

    def _mask(self, directory: str) -> int:
        return DIR_MASK if directory in self.targets else NAMES_MASK

    def _watch_dir(self, directory: str, mask: int) -> bool:
        if self.dir_mask.get(directory) == mask:
            return True
        try:  # on a directory already watched, this replaces its mask
            wd = self.inotify.add_watch(directory, mask)
        except OSError:
            return False
        self.wd_dir[wd] = directory
        self.dir_wd[directory] = wd
        self.dir_mask[directory] = mask
        return True

    def _unwatch_dir(self, directory: str) -> None:
        wd = self.dir_wd.pop(directory, None)
        self.dir_mask.pop(directory, None)
        if wd is None:
            return
        self.wd_dir.pop(wd, None)
        try:
            self.inotify.rm_watch(wd)
        except OSError:
            pass

    def add(self, path: str, tag: Hashable) -> str | None:
        """Watch ``path`` (a file, existing or not, or a directory) for ``tag``.
        Returns a problem to report (the directory is missing), else None."""
        path = os.path.abspath(path)
        if os.path.isdir(path) and not os.path.islink(path):
            directory, name = path, ""
        else:
            directory, name = os.path.split(path)
        if not self._watch_dir(directory, DIR_MASK):
            return (
                f"cannot watch {path!r}: directory {directory!r} does not exist or is not readable"
            )
        self.targets.setdefault(directory, {})[name] = (tag, path)
        return None

    def watch_names(self, tag: Hashable, interest: Mapping[str, Iterable[str]]) -> None:
        """Watch, for ``tag``, each directory of ``interest`` for the names matching
        its glob patterns, and nothing more: what an earlier call watched for
        ``tag`` outside ``interest`` is dropped. A directory that cannot be
        watched (missing, unreadable) is skipped; call again once it may exist."""
        wanted = {os.path.abspath(d): frozenset(p) for d, p in interest.items()}
        for directory in list(self.names):
            if directory not in wanted:
                self._drop_names(directory, tag)
        for directory, patterns in wanted.items():
            self.names.setdefault(directory, {})[tag] = patterns
            self._watch_dir(directory, self._mask(directory))

    def _drop_names(self, directory: str, tag: Hashable) -> None:
        tags = self.names.get(directory)
        if not tags or tags.pop(tag, None) is None:
            return
        if not tags:
            del self.names[directory]
            if directory not in self.targets:
                self._unwatch_dir(directory)

    def read(self) -> list[tuple[Hashable, str]]:
        """The ``(tag, path)`` of every target that changed since the last call."""
        paths: dict[str, tuple[Hashable, str]] = {}  # path -> (tag, path)
        dirs: dict[tuple[Hashable, str], None] = {}  # (tag, directory), in order
        for event in self.inotify.read(timeout=0):
            if event.wd == -1 or event.mask & flags.Q_OVERFLOW:
                for directory, tags in self.names.items():  # events were lost
                    dirs.update(dict.fromkeys((tag, directory) for tag in tags))
                continue
            directory = self.wd_dir.get(event.wd)
            if directory is None:
                continue
            targets = self.targets.get(directory, {})
            names = self.names.get(directory, {})
            if event.mask & flags.IGNORED:
                # the directory went away: forget the watch (add() again to restore)
                self.wd_dir.pop(event.wd, None)
                self.dir_wd.pop(directory, None)
                self.dir_mask.pop(directory, None)
                dirs.update(dict.fromkeys((tag, directory) for tag in names))
                continue
            hit = targets.get(event.name)
            if hit is not None:
                paths[hit[1]] = hit
            whole = targets.get("")
            if whole is not None:
                paths[whole[1]] = whole
            for tag, patterns in names.items():
                if event.mask & SELF_GONE or any(name_matches(event.name, p) for p in patterns):
                    dirs[(tag, directory)] = None
        return [*paths.values(), *dirs]


def _library_dirs() -> tuple[str, ...]:
    # lazy: only py-autoreload asks where the installed libraries are
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
