"""The master FIFO is created afresh, private, and never a planted one."""

from __future__ import annotations

import os
import stat

import pytest

from procmaster.control import open_fifo

NOBODY = 65534


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_created_private(tmp_path):
    path = str(tmp_path / "m.fifo")
    old = os.umask(0)
    try:
        fd = open_fifo(path)
    finally:
        os.umask(old)
    os.close(fd)
    st = os.lstat(path)
    assert stat.S_ISFIFO(st.st_mode) and _mode(path) == 0o600 and st.st_uid == os.geteuid()


def test_our_own_private_fifo_is_made_afresh(tmp_path):
    path = str(tmp_path / "m.fifo")
    os.mkfifo(path, 0o600)
    os.close(open_fifo(path))
    assert stat.S_ISFIFO(os.lstat(path).st_mode) and _mode(path) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_fifo_of_another_user_is_refused(tmp_path):
    path = str(tmp_path / "x.fifo")
    os.mkfifo(path)
    os.chmod(path, 0o666)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(OSError, match=f"owned by uid {NOBODY}, not by us"):
        open_fifo(path)
    assert os.lstat(path).st_uid == NOBODY  # left alone


def test_fifo_others_may_write_is_refused(tmp_path):
    path = str(tmp_path / "x.fifo")
    os.mkfifo(path)
    os.chmod(path, 0o666)
    with pytest.raises(OSError, match="others may write to"):
        open_fifo(path)


def test_symlink_is_refused_and_not_followed(tmp_path):
    target = tmp_path / "victim.fifo"
    os.mkfifo(target, 0o600)
    path = tmp_path / "m.fifo"
    path.symlink_to(target)
    with pytest.raises(OSError, match="symlink"):
        open_fifo(str(path))
    assert path.is_symlink() and stat.S_ISFIFO(os.lstat(target).st_mode)
    dangling = tmp_path / "d.fifo"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OSError, match="symlink"):
        open_fifo(str(dangling))
    assert not (tmp_path / "nowhere").exists()


def test_a_file_that_is_not_a_fifo_is_refused(tmp_path):
    path = tmp_path / "f"
    path.write_text("keep")
    with pytest.raises(OSError, match="not a FIFO"):
        open_fifo(str(path))
    assert path.read_text() == "keep"
