"""Finding vassal files: the emperor's patterns -> the files they match now, the
directories worth watching, and what changed since the last look.

Theory of operation
-------------------
Each pattern (``DIR`` means ``DIR/*.ini``) is expanded one path component at a
time from ``/``, which also yields the directories worth watching and, in each,
the names that matter there (the next component's pattern): a new directory
matching ``/srv/*/deploy`` is noticed without polling. Of fixed components that
do not exist yet, only the deepest existing ancestor is watched, for the missing
one to appear.

Symlinks are followed (Debian's ``apps-enabled`` -> ``apps-available``): the
directory of a link's target is watched for the target's name too, so editing
the target counts. A file's ``Signature`` is what changes when it is edited,
touched, replaced, or re-pointed: inode and mtime of the link and of its target,
and the target's path.

``diff`` compares two looks: a new path is *added*, a vanished one *removed*, a
changed signature *changed* -- except a link now pointing to another file, which
is *retargeted* (another file is another vassal: stop one, start the other). A
rename is a removal and an addition; ``Signature.file_id`` lets the caller see it
is the same file.

Everything here is a function of the filesystem and its arguments: no processes,
no inotify, no clock.

Must not know: vassals, processes, inotify (``procmaster.watch`` watches what
``Discovery.watch`` names), config files' contents.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from ..watch import name_matches

__all__ = ["Diff", "Discovery", "Signature", "diff", "discover", "expand", "signature"]


class Signature(NamedTuple):
    """What changes when a vassal file (or the symlink to it) is edited, touched,
    replaced or re-pointed."""

    link_ino: int
    link_mtime_ns: int
    real: str  # the target's path (the file's own for a regular file)
    dev: int
    ino: int
    mtime_ns: int

    @property
    def file_id(self) -> tuple[int, int]:
        """The target file's identity, which a rename keeps."""
        return (self.dev, self.ino)


def signature(path: str) -> Signature | None:
    """The signature of ``path`` now, or None if it (or its target) is gone."""
    try:
        link = os.lstat(path)
        real = os.path.realpath(path)
        target = os.stat(real)
    except OSError:
        return None
    return Signature(
        link.st_ino, link.st_mtime_ns, real, target.st_dev, target.st_ino, target.st_mtime_ns
    )


def split_pattern(pattern: str) -> list[str]:
    """``DIR`` -> ``DIR/*.ini``; an absolute, normalised pattern split in components."""
    pattern = os.path.abspath(os.path.expanduser(pattern))
    if not glob.has_magic(pattern) and not pattern.endswith(".ini"):
        pattern = os.path.join(pattern, "*.ini")
    return [c for c in pattern.split("/") if c]


def expand(pattern: str, interest: dict[str, set[str]]) -> list[str]:
    """The readable files ``pattern`` matches now (absolute, sorted; a symlink is
    listed under its own path).

    Adds to ``interest`` every directory to watch -> the name patterns in it that
    matter (a missing fixed prefix: its nearest existing ancestor).
    """
    parts = split_pattern(pattern)
    level = ["/"]
    for i, component in enumerate(parts):
        last = i == len(parts) - 1
        magic = glob.has_magic(component)
        found = []
        for directory in level:
            interest.setdefault(directory, set()).add(component)
            if magic:
                try:
                    names = sorted(os.listdir(directory))
                except OSError:
                    continue
                candidates = [n for n in names if name_matches(n, component)]
            else:
                candidates = [component]
            for name in candidates:
                path = os.path.join(directory, name)
                if (os.path.isfile(path) if last else os.path.isdir(path)) and os.access(
                    path, os.R_OK
                ):
                    found.append(path)
        if last:
            return sorted(found)
        # fixed components above the first existing one: only the deepest existing
        # ancestor is watched (for the missing one to appear), not every ancestor
        if not magic and found and len(level) == 1:
            parent = level[0]
            if not any(glob.has_magic(c) for c in parts[:i]):
                interest[parent].discard(component)
                if not interest[parent]:
                    del interest[parent]
        level = found
        if not level:
            return []
    return []


@dataclass
class Discovery:
    """One look at the patterns: the files found, and what to watch for the next."""

    files: dict[str, Signature] = field(default_factory=dict)  # path as found -> signature
    watch: dict[str, set[str]] = field(default_factory=dict)  # directory -> name patterns


def discover(patterns: Iterable[str]) -> Discovery:
    """Every file the patterns match now (the first pattern to find a path wins),
    with its signature, and the directories and names worth watching."""
    result = Discovery()
    for pattern in patterns:
        for path in expand(pattern, result.watch):
            sig = signature(path)
            if sig is None or path in result.files:
                continue
            result.files[path] = sig
            if sig.real != path:  # a symlink: watch its target's name too
                target_dir, target_name = os.path.split(sig.real)
                result.watch.setdefault(target_dir, set()).add(glob.escape(target_name))
    return result


@dataclass
class Diff:
    """What changed between two looks, in the order to act on it."""

    removed: list[str] = field(default_factory=list)  # vanished paths (of the old look)
    retargeted: list[str] = field(default_factory=list)  # links now to another file
    added: list[str] = field(default_factory=list)  # new paths (of the new look)
    changed: list[str] = field(default_factory=list)  # same file, new signature

    def __bool__(self) -> bool:
        return bool(self.removed or self.retargeted or self.added or self.changed)


def diff(old: Mapping[str, Signature], new: Mapping[str, Signature]) -> Diff:
    """``old`` -> ``new`` (path -> signature each). A link re-pointed to another
    file is ``retargeted`` (stop the old vassal, start another); a rename is a
    removal and an addition."""
    result = Diff(removed=[path for path in old if path not in new])
    for path, sig in new.items():
        before = old.get(path)
        if before is None:
            result.added.append(path)
        elif sig != before:
            if sig.real != before.real:
                result.retargeted.append(path)
            else:
                result.changed.append(path)
    return result
