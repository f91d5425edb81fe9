"""A rotation asked for (touch-logrotate, FIFO ``L``) never replaces an earlier backup."""

from __future__ import annotations

import os

from procmaster.logs import Log


def _log(path: str, backupname: str | None = None) -> Log:
    log = Log()
    log.path = path
    log.backupname = backupname
    return log


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def test_two_rotations_in_one_second_keep_both_backups(tmp_path):
    path = str(tmp_path / "site.log")
    log = _log(path)
    backups = []
    for text in ("first\n", "second\n", "third\n"):
        _write(path, text)
        backups.append(log.rotate())
    assert len(set(backups)) == 3, backups
    assert [open(b).read() for b in backups] == ["first\n", "second\n", "third\n"]
    assert not os.path.exists(path)


def test_a_fixed_backupname_is_replaced_as_uwsgi_does(tmp_path):
    path = str(tmp_path / "site.log")
    fixed = str(tmp_path / "site.old")
    log = _log(path, fixed)
    for text in ("first\n", "second\n"):
        _write(path, text)
        assert log.rotate() == fixed
    assert open(fixed).read() == "second\n"
