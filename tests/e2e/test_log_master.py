"""log-master: the app's own stdout/stderr (print, fd 1/2 written as a C
extension does) read by the master and run through loggers, log-route and
log-encoder; whole lines, across a respawn, a crash, a reload's exec, and a
worker that prints without end."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time

import psutil
import pytest
from support import APPS, ROOT, Server, free_port, http_get, wait_for

ENC = "[enc] "


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("logmaster")
    port = free_port()
    applog = tmp / "app.log"
    ini = tmp / "site.ini"
    ini.write_text(
        "[uwsgi]\n"
        f"http-socket = 127.0.0.1:{port}\n"
        "module = printing_app\nmaster = true\nprocesses = 2\ndisable-logging = true\n"
        f"logto = {applog}\n"
        "log-master = true\n"
        "logger = drop file:/dev/null\n"
        "log-route = drop ^flood-\n"
        "log-encoder = format [enc] ${msgnl}\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("NOTIFY_SOCKET", None)
    srv = Server(["--ini", str(ini)], tmp, env, tmp / "console.log")
    srv.port = port
    srv.applog = applog
    srv.tmp = tmp
    try:
        wait_for(lambda: _answers(srv), 30, what=f"the server:\n{srv.log}")
        yield srv
    finally:
        srv.kill_all()


def _answers(srv) -> bool:
    if srv.proc.poll() is not None:
        raise AssertionError(f"procmaster exited:\n{srv.log}")
    try:
        return http_get(srv.port, "/", timeout=3)[0] == 200
    except OSError:
        return False


def _log(srv) -> str:
    return srv.applog.read_text(errors="replace") if srv.applog.exists() else ""


def _wait_line(srv, line: str, timeout: float = 20.0) -> str:
    return wait_for(
        lambda: (f"\n{line}\n" in "\n" + _log(srv)) and _log(srv),
        timeout,
        what=f"{line!r} in {srv.applog}:\n{_log(srv)[-2000:]}",
    )


def _pid_of(srv, path: str) -> int:
    status, _, body = http_get(srv.port, path, headers={"Connection": "close"}, timeout=20)
    assert status == 200
    return int(body)


def test_the_preloaded_app_s_import_prints_go_through_the_master_s_chain(server):
    _wait_line(server, f"{ENC}imported-app")
    pattern = re.compile(rf"^{re.escape(ENC)}import-many-\d{{5}}-z{{100}}$", re.M)
    # every line, whole (the last ones may still be on their way: wait for them)
    text = wait_for(
        lambda: len(pattern.findall(t := _log(server))) >= 3000 and t,
        30,
        what=f"3000 import lines in {server.applog}",
    )
    assert len(pattern.findall(text)) == 3000
    assert "\nimported-app\n" not in "\n" + text + server.log


def test_print_and_fd2_go_through_the_encoder_and_survive_a_respawn(server):
    pid = _pid_of(server, "/print?tag=a")
    _wait_line(server, f"{ENC}print-a-{pid}")
    _wait_line(server, f"{ENC}stderr-a-{pid}")
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: pid not in server.worker_pids() and len(server.worker_pids()) == 2,
        20,
        what="the respawn",
    )
    new = wait_for(lambda: (p := _pid_of(server, "/print?tag=b")) != pid and p, 20)
    _wait_line(server, f"{ENC}print-b-{new}")
    # the app's own lines were not written around the master's chain
    assert f"\nprint-a-{pid}\n" not in "\n" + _log(server)


def test_a_crashing_worker_s_last_lines_arrive_whole(server):
    with pytest.raises(OSError):
        http_get(server.port, "/crash?tag=c", headers={"Connection": "close"}, timeout=20)
    text = _wait_line(server, f"{ENC}partial-tail-c")
    assert re.search(rf"^{re.escape(ENC)}dying-words-c-\d+$", text, re.M), text[-2000:]


def test_big_writes_from_workers_at_once_never_interleave(server):
    n, size = 600, 300
    pids: list[int] = []

    def client(k: int) -> None:
        for j in range(3):
            pids.append(_pid_of(server, f"/bulk?tag=k{k}j{j}&n={n}&size={size}"))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(pids) == 12
    pattern = re.compile(rf"^{re.escape(ENC)}bulk-k\dj\d-\d+-\d{{5}}-x{{{size}}}-end$")

    def complete():
        lines = [ln for ln in _log(server).splitlines() if "bulk-" in ln]
        return len(lines) >= 12 * n and lines

    lines = wait_for(complete, 60, what="every bulk line")
    bad = [ln[:120] for ln in lines if not pattern.match(ln)]
    assert not bad, f"{len(bad)} cut or interleaved lines, e.g. {bad[:3]}"
    assert len(lines) == 12 * n


def test_old_workers_lines_arrive_across_a_reload_exec(server):
    flag = server.tmp / "go"
    box: dict = {}

    def late() -> None:
        box["pid"] = _pid_of(server, f"/late?tag=r&flag={flag}")

    t = threading.Thread(target=late)
    t.start()
    before = wait_for(lambda: re.search(r"^\[enc\] late-before-r-(\d+)$", _log(server), re.M), 20)
    old = int(before.group(1))
    images = server.log.count("procmaster master pid") + _log(server).count("procmaster master pid")
    server.signal(signal.SIGHUP)  # a full reload: the master re-executes itself
    wait_for(
        lambda: (
            server.log.count("procmaster master pid") + _log(server).count("procmaster master pid")
            > images
        ),
        60,
        what=f"the re-executed master:\n{_log(server)[-2000:]}",
    )
    assert old in [p.pid for p in psutil.Process(server.pid).children()]  # still draining
    flag.write_text("go")  # the old worker writes its last line now, after the exec
    t.join(60)
    assert box.get("pid") == old
    _wait_line(server, f"{ENC}late-after-r-{old}")
    new = wait_for(lambda: (p := _pid_of(server, "/print?tag=n")) != old and p, 30)
    _wait_line(server, f"{ENC}print-n-{new}")


def test_a_worker_printing_without_end_blocks_neither_master_nor_memory(server):
    master = psutil.Process(server.pid)
    rss0 = master.memory_info().rss
    flooder = _pid_of(server, "/flood")
    deadline = time.monotonic() + 4
    peak = rss0
    while time.monotonic() < deadline:  # the flood runs (routed to /dev/null)
        peak = max(peak, master.memory_info().rss)
        time.sleep(0.2)
    # the master still does its work: another worker killed is respawned
    other = next(p for p in server.worker_pids() if p != flooder)
    os.kill(other, signal.SIGKILL)
    wait_for(
        lambda: other not in server.worker_pids() and len(server.worker_pids()) == 2,
        20,
        what="the respawn during the flood",
    )
    assert peak - rss0 < 16 * 2**20, f"master RSS grew {(peak - rss0) / 2**20:.1f} MiB"
    os.kill(flooder, signal.SIGKILL)
    wait_for(
        lambda: flooder not in server.worker_pids() and len(server.worker_pids()) == 2,
        20,
        what="the flooder's respawn",
    )
    pid = _pid_of(server, "/print?tag=f")
    _wait_line(server, f"{ENC}print-f-{pid}")
    assert "flood-" not in _log(server)  # routed to the named logger


@pytest.mark.skipif(os.geteuid() != 0, reason="uid/gid drop needs root (run the tests as root)")
def test_logto2_is_opened_after_privileges_drop(procmaster):
    # a directory the dropped user can reach (pytest's tmp_path is root's alone)
    where = tempfile.mkdtemp(prefix="procmaster-logto2-")
    try:
        os.chmod(where, 0o777)
        path = os.path.join(where, "site.log")
        port = free_port()
        procmaster(
            "--http-socket", f"127.0.0.1:{port}", "--module", "guards_app:application", "--uid", "nobody",
            "--gid", "nogroup", "--logto2", path, wait_port=port,
        )  # fmt: skip
        wait_for(lambda: os.path.exists(path) and "procmaster master pid" in open(path).read(), 20)
        st = os.stat(path)
        # as uWSGI: created by the user the processes run as, not by root
        assert (st.st_uid, st.st_gid) == (65534, 65534)
    finally:
        shutil.rmtree(where, ignore_errors=True)
