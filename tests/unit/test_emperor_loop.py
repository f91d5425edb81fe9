"""The Emperor's reaction to what discovery finds (procmaster.emperor.loop), with
a launcher that starts no process: which vassal is started, reloaded, stopped or
made to wait, and what the pipe carries. Real processes: tests/e2e/test_emperor.py."""

from __future__ import annotations

import os
import socket

import pytest

from procmaster.emperor.loop import Emperor
from procmaster.emperor.vassal import Vassal, VassalState

EXIT_0 = 0  # a waitpid status: exited with code 0


class FakeProc:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode = None


class FakeLauncher:
    """Starts nothing: each launch hands a fake process and a real socketpair."""

    def __init__(self) -> None:
        self.pid = 1000
        self.theirs: dict[int, socket.socket] = {}  # pid -> the vassal's end
        self.valid = True

    def check(self, vassal: Vassal) -> bool:
        if not self.valid:
            vassal.invalid("broken")
        return self.valid

    def launch(self, vassal: Vassal, stdin: int | None = None):
        self.pid += 1
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        self.theirs[self.pid] = theirs
        return FakeProc(self.pid), ours

    def said(self, pid: int) -> bytes:
        try:
            return self.theirs[pid].recv(100)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        for sock in self.theirs.values():
            sock.close()


@pytest.fixture
def emperor(config, tmp_path):
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    emp = Emperor(config("--emperor", vassals, "--emperor-throttle", "500"))
    emp.launcher = FakeLauncher()  # type: ignore[assignment]
    yield emp
    emp.launcher.close()  # type: ignore[attr-defined]
    for vassal in [*emp.vassals.values(), *emp.leaving]:
        vassal.close_link()


def ini(emp: Emperor, name: str) -> str:
    path = os.path.join(emp.patterns[0], name)
    with open(path, "w") as fh:
        fh.write("[uwsgi]\n")
    return path


def bump(path: str) -> None:
    ns = os.stat(path).st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(ns, ns))


def test_found_files_start_changed_reload_removed_stop(emperor):
    a, b = ini(emperor, "a.ini"), ini(emperor, "b.ini")
    emperor.scan()
    assert set(emperor.vassals) == {a, b}
    va, vb = emperor.vassals[a], emperor.vassals[b]
    assert va.state is VassalState.STARTING and set(emperor.by_pid) == {va.pid, vb.pid}
    bump(a)
    emperor.scan()
    assert va.state is VassalState.RELOADING and emperor.launcher.said(va.pid) == b"reload\n"
    assert vb.state is VassalState.STARTING and emperor.launcher.said(vb.pid) == b""
    os.unlink(b)
    emperor.scan()
    assert list(emperor.vassals) == [a] and emperor.leaving == [vb]
    assert vb.state is VassalState.STOPPING and vb.kill_at
    assert emperor.launcher.said(vb.pid) == b"stop\n"
    emperor.died(vb, EXIT_0)
    assert emperor.leaving == [] and vb.proc is None


def test_a_rename_waits_for_the_old_vassal_to_go(emperor):
    old = ini(emperor, "old.ini")
    emperor.scan()
    vold = emperor.vassals[old]
    new = os.path.join(os.path.dirname(old), "new.ini")
    os.rename(old, new)
    emperor.scan()
    vnew = emperor.vassals[new]
    assert vnew.state is VassalState.WAITING and vnew.wait_for is vold and vnew.pid is None
    assert emperor.launcher.said(vold.pid) == b"stop\n"
    emperor.died(vold, EXIT_0)
    assert vnew.state is VassalState.STARTING and vnew.pid is not None


def test_ready_and_a_young_death_throttle(emperor):
    a = ini(emperor, "a.ini")
    emperor.scan()
    vassal = emperor.vassals[a]
    emperor.launcher.theirs[vassal.pid].send(b"ready\n")
    emperor.handle_link(vassal)
    assert vassal.state is VassalState.READY
    emperor.check_all_started()
    assert emperor.notified_ready
    pid = vassal.pid
    emperor.by_pid.pop(pid)
    emperor.died(vassal, EXIT_0)  # died at once: young
    assert vassal.state is VassalState.THROTTLED and vassal.failures == 1
    assert vassal.link is None and pid not in emperor.by_pid
    assert emperor.next_timeout() == pytest.approx(0.5, abs=0.1)
    emperor.restart_due(vassal.restart_at)
    assert vassal.state is VassalState.STARTING and vassal.restarts == 1


def test_an_invalid_file_waits_for_a_change(emperor):
    a = ini(emperor, "a.ini")
    emperor.launcher.valid = False
    emperor.scan()
    vassal = emperor.vassals[a]
    assert vassal.state is VassalState.INVALID and vassal.pid is None
    emperor.scan()  # nothing changed: not tried again
    assert vassal.state is VassalState.INVALID
    emperor.launcher.valid = True
    bump(a)
    emperor.scan()
    assert vassal.state is VassalState.STARTING


def test_stats_document(emperor):
    a = ini(emperor, "a.ini")
    emperor.scan()
    stats = emperor.stats()
    assert stats["throttle_ms"] == 500 and stats["emperor"] == emperor.patterns
    (row,) = stats["vassals"]
    assert row["ini"] == a and row["state"] == "starting" and row["restarts"] == 0
