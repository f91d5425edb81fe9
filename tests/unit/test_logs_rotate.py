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


def test_a_worker_starting_during_a_rotation_writes_to_the_new_file(tmp_path):
    """``reopen_if_moved`` (a worker's loop starting): the file it holds stays while
    the path names it; once renamed away, the path is opened anew."""
    path = str(tmp_path / "site.log")
    log = _log(path)
    log.stderr_taken = True  # never touch this process's fd 2
    log.reopen()
    try:
        held = os.fstat(log.fd).st_ino
        log.reopen_if_moved()
        assert os.fstat(log.fd).st_ino == held
        os.write(log.fd, b"one\n")
        os.rename(path, str(tmp_path / "moved.log"))
        log.reopen_if_moved()
        os.write(log.fd, b"two\n")
        assert open(path).read() == "two\n"
        assert (tmp_path / "moved.log").read_text() == "one\n"
    finally:
        os.close(log.fd)
        if log.notice_fd != 2:
            os.close(log.notice_fd)
