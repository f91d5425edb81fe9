"""Shared areas: the sharedarea line, bounds, wrapping arithmetic, the lock's depth."""

from __future__ import annotations

import fcntl
import os

import pytest

from procmaster.api.sharedarea import PAGE, Area, SharedAreaError, area_pages, functions


@pytest.mark.parametrize(
    "text,pages",
    [
        ("1", 1),
        ("3", 3),
        ("pages=2", 2),
        ("size=100", 1),
        (f"size={PAGE + 1}", 2),
        ("size=0x10", 1),
    ],
)
def test_a_sharedarea_line_gives_its_pages(text, pages):
    assert area_pages(text) == pages


@pytest.mark.parametrize(
    "text,words",
    [
        ("0", "positive"),
        ("-1", "positive"),
        ("lots", "positive"),
        ("file=/etc/passwd", "file"),
        ("fd=3,size=10", "fd"),
        ("offset=4", "offset"),
        ("pages", "positive"),
        ("size=", "positive"),
    ],
)
def test_a_bad_sharedarea_line_says_what_is_wrong(text, words):
    with pytest.raises(SharedAreaError, match=words):
        area_pages(text)


def test_bounds_and_wrapping_arithmetic():
    uw = functions([Area(1)])
    uw["sharedarea_write64"](0, 0, 2**63 - 1)
    uw["sharedarea_inc64"](0, 0)
    assert uw["sharedarea_read64"](0, 0) == -(2**63)
    uw["sharedarea_dec32"](0, 8, 1)
    assert uw["sharedarea_read32"](0, 8) == -1
    for call, args in [
        ("sharedarea_read64", (0, PAGE - 7)),
        ("sharedarea_inc64", (0, PAGE - 4)),
        ("sharedarea_write", (0, PAGE - 1, b"ab")),
        ("sharedarea_read", (0, -1, 1)),
        ("sharedarea_read", (1, 0, 1)),
        ("sharedarea_read", (True, 0, 1)),
        ("sharedarea_unlock", (0,)),
    ]:
        with pytest.raises(ValueError):
            uw[call](*args)
    with pytest.raises(OverflowError):
        uw["sharedarea_writebyte"](0, 0, 256)
    with pytest.raises(OverflowError):
        uw["sharedarea_inc32"](0, 0, 2**31)


def test_an_operation_inside_the_apps_wlock_keeps_the_lock():
    area = Area(1)
    uw = functions([area])
    uw["sharedarea_wlock"](0)
    uw["sharedarea_write"](0, 0, b"x")  # in uWSGI this deadlocks; here the lock stays held
    assert area.depth == 1
    pid = os.fork()
    if pid == 0:  # another process cannot take it while we hold it
        try:
            fcntl.lockf(area.fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, area.size, os.SEEK_SET)
            os._exit(1)
        except OSError:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    uw["sharedarea_unlock"](0)
    assert area.depth == 0
