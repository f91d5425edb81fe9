"""Spool files: uWSGI's packet format both ways, hostile files refused, atomic writes."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procmaster.api.spool_files import (
    PREFIX,
    SpoolError,
    claim,
    decode_task,
    encode_task,
    scan,
    write_task,
)

small = st.binary(min_size=1, max_size=40)


@given(
    st.dictionaries(small.filter(lambda k: k != b"body"), st.binary(max_size=60), max_size=8),
    st.binary(max_size=200),
)
def test_a_task_reads_back_as_written(task, body):
    data = encode_task({**task, b"body": body} if body else task)
    assert decode_task(data) == (task, body)


def test_the_bytes_are_uwsgis_packet():
    data = encode_task({b"a": b"1", b"body": b"xyz"})
    assert data == struct.pack("<BHB", 17, 6, 0) + b"\x01\x00a\x01\x001" + b"xyz"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x11\x00",
        b"\x00\x02\x00\x00ab",
        struct.pack("<BHB", 17, 50, 0) + b"short",
        struct.pack("<BHB", 17, 3, 0) + b"\x05\x00a",
        struct.pack("<BHB", 17, 5, 0) + b"\x01\x00a\x09\x00",
    ],
)
def test_hostile_or_truncated_files_are_refused_not_crashed_on(data):
    with pytest.raises(SpoolError):
        decode_task(data)


@given(st.binary(max_size=300))
def test_any_bytes_either_decode_or_are_refused(data):
    try:
        decode_task(data)
    except SpoolError:
        pass


def test_only_bytes_and_no_oversized_packets():
    with pytest.raises(SpoolError, match="only bytes"):
        encode_task({"a": b"1"})
    with pytest.raises(SpoolError, match="65535"):
        encode_task({b"k": b"x" * 70000})


def test_write_scan_claim(tmp_path):
    path = write_task(str(tmp_path), encode_task({b"n": b"1"}))
    assert os.path.basename(path).startswith(PREFIX)
    assert os.stat(path).st_mode & 0o777 == 0o600
    (tmp_path / "3").mkdir()
    low = write_task(str(tmp_path / "3"), encode_task({b"n": b"2"}))
    assert scan(str(tmp_path), ordered=True) == [low, path]  # priority subdirectories first
    first = claim(path)
    assert first is not None and decode_task(first[1])[0] == {b"n": b"1"}
    assert claim(path) is None  # held by the first claim (another spooler)
    os.close(first[0])
    again = claim(path)
    assert again is not None
    os.close(again[0])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []
