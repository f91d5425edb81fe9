"""Pidfiles are written whole, and never through a planted file or symlink."""

from __future__ import annotations

import os
import stat

import pytest

from procmaster import pidfile
from procmaster.pidfile import remove_pidfile, write_atomically, write_pidfile


def _predictable_names(path) -> list:
    """Every temporary name a naive writer would use (the pid, a fixed suffix)."""
    base = path.name
    pid = os.getpid()
    return [
        path.parent / f"{base}.tmp{pid}",
        path.parent / f"{base}.tmp",
        path.parent / f".{base}.tmp",
        path.parent / f"{base}.new",
        path.parent / f"{base}~",
        path.parent / f".{base}.{pid}.tmp",
    ]


def test_planted_symlinks_are_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = tmp_path / "app.pid"
    planted = _predictable_names(path)
    for name in planted:
        name.symlink_to(victim)
    path.symlink_to(victim)  # the pidfile itself: replaced, not followed
    write_pidfile(str(path), 4242)
    assert victim.read_text() == "precious\n"
    assert not path.is_symlink() and path.read_text() == "4242\n"
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o644
    assert all(name.is_symlink() for name in planted)  # left as they were
    leftovers = set(os.listdir(tmp_path)) - {p.name for p in planted} - {"victim", "app.pid"}
    assert not leftovers


def test_a_collision_with_a_planted_temporary_is_skipped(tmp_path, monkeypatch):
    """Even if an attacker guessed the random name, O_EXCL|O_NOFOLLOW refuses it
    and another name is drawn."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    tokens = iter(["guessed", "guessed", "fresh"])
    monkeypatch.setattr(pidfile, "_token", lambda: next(tokens))
    path = tmp_path / "app.pid"
    (tmp_path / ".app.pid.guessed.tmp").symlink_to(victim)
    write_atomically(str(path), b"123\n")
    assert victim.read_text() == "precious\n"
    assert path.read_text() == "123\n"
    assert (tmp_path / ".app.pid.guessed.tmp").is_symlink()
    assert not (tmp_path / ".app.pid.fresh.tmp").exists()  # renamed over the target


def test_failed_write_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "app.pid"
    with pytest.raises(OSError):
        write_pidfile(str(path))  # no such directory

    def boom(src, dst):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(pidfile.os, "replace", boom)
    with pytest.raises(OSError):
        write_pidfile(str(tmp_path / "app.pid"))
    assert os.listdir(tmp_path) == []


def test_remove_only_our_own(tmp_path):
    path = tmp_path / "app.pid"
    write_pidfile(str(path), 77)
    assert not remove_pidfile(str(path), 78) and path.exists()
    assert remove_pidfile(str(path), 77) and not path.exists()
    victim = tmp_path / "victim"
    victim.write_text("77\n")
    path.symlink_to(victim)
    assert remove_pidfile(str(path), 77)  # the link goes, never its target
    assert victim.exists() and not path.is_symlink()
