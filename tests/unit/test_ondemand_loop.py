"""On-demand vassals: the socket name uWSGI 2.0 derives (directory, extension,
exec), and the loop binding the socket, starting the vassal on its first
connection with that socket, and watching it again when the vassal exits (with a
launcher that starts no process). Real processes: tests/e2e/test_emperor_ondemand.py (same subject)."""

from __future__ import annotations

import os
import socket
import time

import pytest
from test_emperor_loop import FakeLauncher

from procmaster.emperor.loop import Emperor
from procmaster.emperor.ondemand import OnDemand, socket_name
from procmaster.emperor.vassal import VassalState


def test_directory_names_the_socket_after_the_file_up_to_its_last_dot(tmp_path):
    how = OnDemand(str(tmp_path), None, None)
    assert socket_name("/etc/vassals/app.ini", how) == f"{tmp_path}/app.socket"
    assert socket_name("/etc/vassals/my.app.ini", how) == f"{tmp_path}/my.app.socket"
    assert socket_name("/etc/vassals/noext", how) is None


def test_extension_reads_the_first_line_of_the_side_file(tmp_path):
    vassal = tmp_path / "app.ini"
    how = OnDemand(None, ".socket-name", None)
    assert socket_name(str(vassal), how) is None  # no side file: not on demand
    (tmp_path / "app.ini.socket-name").write_text("/run/app.sock\nignored\n")
    assert socket_name(str(vassal), how) == "/run/app.sock"
    (tmp_path / "app.ini.socket-name").write_text("\n")
    assert socket_name(str(vassal), how) is None


def test_exec_takes_the_commands_first_line(tmp_path):
    how = OnDemand(None, None, 'f() { echo /run/x/$(basename "$1" .ini).sock; echo more; }; f')
    assert socket_name(str(tmp_path / "app.ini"), how) == "/run/x/app.sock"


class RecordingLauncher(FakeLauncher):
    def __init__(self) -> None:
        super().__init__()
        self.stdin: list[int | None] = []

    def launch(self, vassal, stdin=None):
        self.stdin.append(stdin)
        return super().launch(vassal, stdin)


@pytest.fixture
def emperor(config, tmp_path):
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    emp = Emperor(config("--emperor", vassals, "--emperor-on-demand-directory", str(sockets)))
    emp.launcher = RecordingLauncher()  # type: ignore[assignment]
    yield emp
    emp.launcher.close()  # type: ignore[attr-defined]
    for vassal in emp.vassals.values():
        vassal.close_link()
        emp.disarm(vassal)


def _wake(emp: Emperor) -> None:
    for key, _ in emp.sel.select(5):
        key.data()


def test_vassal_starts_on_first_connection_and_waits_again_after_exit(emperor, tmp_path):
    path = tmp_path / "vassals" / "app.ini"
    path.write_text("[uwsgi]\n")
    emperor.scan()
    vassal = emperor.vassals[str(path)]
    sock_path = str(tmp_path / "sockets" / "app.socket")
    assert vassal.state is VassalState.ON_DEMAND and vassal.pid is None
    assert os.path.exists(sock_path) and emperor.launcher.stdin == []
    assert not vassal.holds_up_ready
    client = socket.socket(socket.AF_UNIX)
    client.connect(sock_path)
    _wake(emperor)
    assert vassal.state is VassalState.STARTING and vassal.pid is not None
    assert emperor.launcher.stdin == [vassal.on_demand.fileno()]
    # it exits (e.g. idle): the socket is watched again, nothing started
    emperor.launcher.theirs[vassal.pid].send(b"ready\n")
    emperor.handle_link(vassal)
    assert vassal.state is VassalState.READY
    vassal.started_at -= 3600  # a healthy run: no back-off
    emperor.died(vassal, 0)
    emperor.restart_due(time.monotonic())
    assert vassal.state is VassalState.ON_DEMAND and len(emperor.launcher.stdin) == 1
    client.close()
    client = socket.socket(socket.AF_UNIX)
    client.connect(sock_path)
    _wake(emperor)
    assert len(emperor.launcher.stdin) == 2 and vassal.state is VassalState.STARTING
    client.close()
    # the file goes: the socket is closed and removed
    emperor.died(vassal, 0)
    path.unlink()
    emperor.scan()
    assert not os.path.exists(sock_path) and vassal.on_demand is None
