"""log-master's reading of the children's pipes (procmaster.logs.capture), with real
pipes: whole lines only, per pipe; long lines cut at the bufsize; the last partial
line on EOF; bounded reads."""

from __future__ import annotations

import os
import selectors

from procmaster.logs.capture import CHUNK, Capture


def _capture(bufsize: int = 64):
    sel = selectors.DefaultSelector()
    lines: list[bytes] = []
    return Capture(sel, lines.append, bufsize), sel, lines


def _child_pipe(cap: Capture) -> int:
    """A pipe as a forked child's: the write end (the child's fd 1/2) is returned."""
    cap.before_fork()
    assert cap.pending is not None
    r, w = cap.pending
    w2 = os.dup(w)  # what the child would keep as fd 1 and 2
    cap.after_fork(True)
    return w2


def _pump(sel) -> None:
    for key, _ in sel.select(0):
        key.data()


def test_lines_from_two_children_stay_whole_whatever_the_write_boundaries():
    cap, sel, lines = _capture(bufsize=4096)
    a, b = _child_pipe(cap), _child_pipe(cap)
    os.write(a, b"a-one\na-tw")
    os.write(b, b"b-on")
    _pump(sel)
    os.write(b, b"e\nb-two\n")
    os.write(a, b"o\n")
    _pump(sel)
    _pump(sel)
    assert sorted(lines) == [b"a-one\n", b"a-two\n", b"b-one\n", b"b-two\n"]
    for fd in (a, b):
        os.close(fd)
    cap.close()


def test_a_long_line_is_cut_at_bufsize_and_eof_hands_on_the_partial_line():
    cap, sel, lines = _capture(bufsize=64)
    w = _child_pipe(cap)
    os.write(w, b"x" * 150 + b"\n" + b"tail without newline")
    os.close(w)  # the child is gone
    while cap.fds():
        _pump(sel)
    assert lines == [b"x" * 64 + b"\n", b"x" * 64 + b"\n", b"x" * 22 + b"\n",
                     b"tail without newline\n"]  # fmt: skip
    assert cap.fds() == []  # the pipe is closed after EOF


def test_one_read_per_wakeup_holds_at_most_a_chunk_and_a_partial_line():
    cap, sel, lines = _capture(bufsize=1024)
    w = _child_pipe(cap)
    os.set_blocking(w, False)
    written = 0
    try:
        while True:  # fill the pipe: the child would now wait in write()
            written += os.write(w, b"y" * 1000 + b"\n")
    except BlockingIOError:
        pass
    _pump(sel)
    got = sum(len(line) for line in lines)
    assert 0 < got <= CHUNK and len(cap.partial[cap.fds()[0]]) < 1024
    os.close(w)
    while cap.fds():
        _pump(sel)
    assert sum(len(line) for line in lines) == written


def test_export_makes_the_read_ends_survive_exec_and_adopt_reads_on():
    cap, sel, lines = _capture()
    w = _child_pipe(cap)
    os.write(w, b"before the exec, partial")
    fds = cap.export()
    assert lines == [b"before the exec, partial\n"]  # handed on before the exec
    assert all(os.get_inheritable(fd) for fd in fds)
    # the next image
    sel2 = selectors.DefaultSelector()
    got: list[bytes] = []
    nxt = Capture(sel2, got.append, 64)
    nxt.adopt(fds)
    os.write(w, b"after\n")
    os.close(w)
    while nxt.fds():
        for key, _ in sel2.select(1):
            key.data()
    assert got == [b"after\n"]
