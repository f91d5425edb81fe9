"""The Emperor end to end: real INI files in real directories, real vassal
processes, real HTTP requests. The ``emperor`` fixture kills every process it
started (and every descendant seen), by PID."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from support import APPS, ROOT, Load, free_port, http_get, kill_tree, wait_for


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def serves(port: int) -> bool:
    try:
        return http_get(port, "/", timeout=2)[0] == 200
    except OSError:
        return False


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def vassal_ini(path: Path, port: int, processes: int = 1, extra: str = "") -> Path:
    path.write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesses = {processes}\n"
        f"worker-reload-mercy = 5\n{extra}"
    )
    return path


class EmperorProc:
    """A running ``procmaster --emperor``, its log, and the processes it had."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: dict,
        log_path: Path,
        pass_fds: tuple = (),
        python: str = sys.executable,
    ) -> None:
        self.log_path = log_path
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [python, "-m", "procmaster", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )
        self.pid = self.proc.pid
        self.seen: set[int] = {self.pid}

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, count: int = 1, timeout: float = 10.0) -> str:
        wait_for(
            lambda: self.log.count(text) >= count,
            timeout,
            what=f"{text!r} x{count} in the log:\n{self.log[-4000:]}",
        )
        self.descendants()
        return self.log

    def descendants(self) -> list[int]:
        try:
            pids = [p.pid for p in psutil.Process(self.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        self.seen.update(pids)
        return pids

    def master_pid(self, name: str) -> int:
        """The pid of the latest vassal started for ``name`` (from the log)."""
        found = re.findall(rf"vassal {re.escape(name)}: started \(pid (\d+)\)", self.log)
        assert found, self.log
        return int(found[-1])

    def workers(self, master: int) -> list[int]:
        try:
            kids = psutil.Process(master).children()
        except psutil.NoSuchProcess:
            return []
        pids = []
        for kid in kids:
            self.seen.add(kid.pid)
            try:
                if "PROCMASTER_PROBE" not in kid.environ():
                    pids.append(kid.pid)
            except psutil.Error:
                pass
        return sorted(pids)

    def stats(self, port: int) -> dict:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            return json.loads(s.makefile().read())

    def kill_all(self) -> None:
        self.descendants()
        kill_tree(self.proc, self.seen)
        self.log_file.close()


@pytest.fixture
def emperor(tmp_path):
    """``emperor(*args, env=...)`` starts ``python -m procmaster *args``; at the end
    every process it started or had as a descendant is killed by PID."""
    started: list[EmperorProc] = []

    def start(
        *args,
        env: dict | None = None,
        cwd: Path | None = None,
        pass_fds: tuple = (),
        python: str = sys.executable,
    ) -> EmperorProc:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(APPS), str(ROOT), full_env.get("PYTHONPATH", "")]
        )
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.update(env or {})
        log_path = tmp_path / f"emperor-{len(started)}.log"
        proc = EmperorProc(
            [str(a) for a in args], cwd or tmp_path, full_env, log_path, pass_fds, python
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill_all()


def test_vassal_side_of_the_pipe_ready_reload_and_eof(emperor, tmp_path):
    """A master started with PROCMASTER_EMPEROR_FD, the test playing the emperor."""
    port = free_port()
    ini = vassal_ini(tmp_path / "v.ini", port, processes=2)
    ours, theirs = socket.socketpair()
    vassal = emperor(
        "--ini",
        ini,
        env={"PROCMASTER_EMPEROR_FD": str(theirs.fileno())},
        pass_fds=(theirs.fileno(),),
    )
    theirs.close()
    ours.settimeout(15)
    try:
        assert ours.recv(100) == b"ready\n"
        assert serves(port)
        workers = vassal.workers(vassal.pid)
        ours.sendall(b"reload\n")
        assert ours.recv(100) == b"ready\n"  # the new image, once its workers are ready
        assert "reload requested (the emperor)" in vassal.log
        wait_for(lambda: not set(vassal.workers(vassal.pid)) & set(workers), 10)
        everything = vassal.descendants()
    finally:
        ours.close()  # EOF: the emperor is gone
    assert vassal.proc.wait(15) == 0
    assert "the emperor is gone: stopping" in vassal.log
    assert not [p for p in everything if alive(p)]


def test_vassals_start_add_reload_remove_and_sigterm(emperor, tmp_path):
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    ports = {name: free_port() for name in ("a", "b", "c", "d")}
    for name in "abc":
        vassal_ini(vassals / f"{name}.ini", ports[name], processes=2)
    (vassals / "notes.txt").write_text("not a vassal")
    emp = emperor("--emperor", vassals)
    for name in "abc":
        wait_for(lambda n=name: serves(ports[n]), 15, what=f"vassal {name}:\n{emp.log}")
    assert "notes" not in emp.log
    emp.wait_log("ready", count=3)

    # a fourth file: serves within 2 s of its creation
    t0 = time.monotonic()
    vassal_ini(vassals / "d.ini", ports["d"])
    wait_for(lambda: serves(ports["d"]), 2.0, interval=0.01, what=f"d.ini:\n{emp.log}")
    print(f"file creation -> first served request: {time.monotonic() - t0:.3f}s")

    # touching a.ini reloads a only, while the others serve under load
    masters = {n: emp.master_pid(f"{n}.ini") for n in "abcd"}
    before = {n: emp.workers(masters[n]) for n in "abcd"}
    with Load(ports["b"], threads=2) as load_b, Load(ports["c"], threads=2) as load_c:
        os.utime(vassals / "a.ini")
        emp.wait_log("vassal a.ini: reloaded")
        wait_for(lambda: not set(emp.workers(masters["a"])) & set(before["a"]), 10)
        load_b.more(50)
        load_c.more(50)
    assert load_b.failures == [] and load_c.failures == []
    assert emp.master_pid("a.ini") == masters["a"]  # same master, new workers
    assert len(emp.workers(masters["a"])) == 2
    for n in "bcd":
        assert emp.workers(masters[n]) == before[n], n
    assert emp.log.count("file changed: graceful reload") == 1

    # removing c.ini stops c and leaves no process of it
    c_pids = [masters["c"], *before["c"]]
    (vassals / "c.ini").unlink()
    wait_for(lambda: not any(alive(p) for p in c_pids), 10, what=f"c stopped:\n{emp.log}")
    assert refused(ports["c"])
    assert serves(ports["a"]) and serves(ports["b"]) and serves(ports["d"])

    # SIGTERM: every vassal stops gracefully, the emperor exits 0
    everything = emp.descendants()
    emp.proc.send_signal(signal.SIGTERM)
    assert emp.proc.wait(20) == 0
    assert not [p for p in everything if alive(p)]
    assert "emperor stopped" in emp.log


def test_kill9_of_a_healthy_vassal_starts_it_again_at_once(emperor, tmp_path):
    """A vassal that was ready for longer than ``emperor-throttle`` and dies is
    started again without a delay; the other vassal is left alone."""
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    port, other = free_port(), free_port()
    vassal_ini(vassals / "a.ini", port)
    vassal_ini(vassals / "b.ini", other)
    emp = emperor("--emperor", vassals, "--emperor-throttle", "300")
    emp.wait_log("ready", count=2, timeout=30)
    old = emp.master_pid("a.ini")
    b_master = emp.master_pid("b.ini")
    # healthy: it has run for well over the throttle (its age, seen by the kernel)
    wait_for(
        lambda: time.time() - psutil.Process(old).create_time() > 0.3 + 2.0, 30, what="a's age"
    )
    os.kill(old, signal.SIGKILL)
    emp.wait_log("vassal a.ini: started", count=2, timeout=30)
    assert re.search(
        r"vassal a\.ini \(pid \d+\) killed by signal 9 \(SIGKILL\); starting it again\n",
        emp.log,
    ), emp.log
    assert "(throttle)" not in emp.log
    wait_for(lambda: serves(port), 30, what=f"a back:\n{emp.log}")
    assert emp.master_pid("a.ini") != old
    assert emp.master_pid("b.ini") == b_master  # the other vassal was left alone


def test_kill9_of_a_young_vassal_waits_the_throttle(emperor, tmp_path):
    """A vassal that dies before it has been ready for ``emperor-throttle`` (4 s
    here: longer than its start-up took, checked) waits that long before it is
    started again."""
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    port = free_port()
    vassal_ini(vassals / "a.ini", port)
    emp = emperor("--emperor", vassals, "--emperor-throttle", "4000")
    emp.wait_log("ready", timeout=30)
    old = emp.master_pid("a.ini")
    age = time.time() - psutil.Process(old).create_time()
    assert age < 3.5, f"the vassal took {age:.1f}s to start: the test needs it younger than 4 s"
    os.kill(old, signal.SIGKILL)
    t0 = time.monotonic()
    emp.wait_log("vassal a.ini (pid", timeout=30)
    assert re.search(
        r"vassal a\.ini \(pid \d+\) killed by signal 9 \(SIGKILL\); "
        r"starting it again in 4\.0s \(throttle\)\n",
        emp.log,
    ), emp.log
    emp.wait_log("vassal a.ini: started", count=2, timeout=30)
    assert time.monotonic() - t0 >= 3.9  # not before the throttle
    wait_for(lambda: serves(port), 30, what=f"a back:\n{emp.log}")


def test_a_vassal_that_keeps_dying_young_backs_off_and_others_stay(emperor, tmp_path):
    """A vassal whose app does not load is throttled with a doubling delay, and
    the others are left alone."""
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    other = free_port()
    vassal_ini(vassals / "b.ini", other)
    emp = emperor("--emperor", vassals, "--emperor-throttle", "500")
    emp.wait_log("ready", timeout=30)
    b_master = emp.master_pid("b.ini")
    (vassals / "crash.ini").write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{free_port()}\nmodule = no_such_module_here\n"
    )
    emp.wait_log("vassal crash.ini: started", count=3, timeout=30)
    emp.wait_log("vassal crash.ini (pid", count=3, timeout=30)
    assert "starting it again in 0.5s (throttle)" in emp.log
    assert "starting it again in 1.0s (throttle)" in emp.log
    assert "starting it again in 2.0s (throttle)" in emp.log
    assert emp.master_pid("b.ini") == b_master
    assert serves(other)


def test_invalid_vassal_is_reported_once_and_starts_once_fixed(emperor, tmp_path):
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    port, good = free_port(), free_port()
    bad = vassals / "bad.ini"
    bad.write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesses = many\n")
    emp = emperor("--emperor", vassals)
    emp.wait_log("vassal bad.ini: config error")
    assert f"{bad}:4: option 'processes'" in emp.log  # file:line
    # later events (another vassal starting) do not report it again
    vassal_ini(vassals / "good.ini", good)
    wait_for(lambda: serves(good), 10, what=emp.log)
    assert emp.log.count("config error") == 1
    assert emp.log.count("vassal bad.ini: started") == 0
    # fixed: it starts
    vassal_ini(bad, port)
    wait_for(lambda: serves(port), 10, what=f"bad.ini fixed:\n{emp.log}")
    assert emp.log.count("config error") == 1
    # broken again while running: it keeps serving with the old config
    bad.write_text("[uwsgi]\nhttp-socket = nonsense:port\n")
    emp.wait_log("keeps running with its previous configuration")
    assert serves(port)
    assert emp.log.count("vassal bad.ini: started") == 1


def test_sigkill_of_the_emperor_leaves_no_vassal(emperor, tmp_path):
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    for name in "ab":
        vassal_ini(vassals / f"{name}.ini", free_port(), processes=2)
    emp = emperor("--emperor", vassals)
    emp.wait_log("ready", count=2)
    everything = emp.descendants()
    assert len(everything) >= 6  # two masters, four workers
    emp.proc.kill()
    t0 = time.monotonic()
    wait_for(lambda: not [p for p in everything if alive(p)], 2.0, what="no orphans")
    print(f"no vassal process left {time.monotonic() - t0:.3f}s after SIGKILL")


def test_symlinked_vassals_like_debian_apps_enabled(emperor, tmp_path):
    available = tmp_path / "apps-available"
    enabled = tmp_path / "apps-enabled"
    available.mkdir()
    enabled.mkdir()
    port = free_port()
    vassal_ini(available / "site.ini", port, extra="env = SITE_DIR=%d\nenv = SITE_NAME=%n\n")
    (enabled / "site.ini").symlink_to("../apps-available/site.ini")
    emp = emperor("--emperor", enabled)
    wait_for(lambda: serves(port), 15, what=emp.log)
    env = json.loads(http_get(port, "/osenv")[2])
    assert env["SITE_DIR"] == f"{available}/" and env["SITE_NAME"] == "site"
    assert "PROCMASTER_EMPEROR_FD" in env and "NOTIFY_SOCKET" not in env
    master = emp.master_pid("site.ini")
    workers = emp.workers(master)
    # touch --no-dereference on the link reloads
    subprocess.run(["touch", "--no-dereference", str(enabled / "site.ini")], check=True)
    emp.wait_log("vassal site.ini: reloaded", count=1)
    wait_for(lambda: emp.workers(master) and emp.workers(master) != workers, 10)
    workers = emp.workers(master)
    # editing the target (in apps-available) reloads too
    os.utime(available / "site.ini")
    emp.wait_log("vassal site.ini: reloaded", count=2)
    wait_for(lambda: emp.workers(master) and emp.workers(master) != workers, 10)
    assert emp.master_pid("site.ini") == master
    # removing the link stops it
    pids = [master, *emp.workers(master)]
    (enabled / "site.ini").unlink()
    wait_for(lambda: not any(alive(p) for p in pids), 10, what=emp.log)
    assert refused(port)
    assert (available / "site.ini").exists()


def test_rename_is_stop_then_start_on_the_same_ports(emperor, tmp_path):
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    port = free_port()
    vassal_ini(vassals / "old.ini", port)
    emp = emperor("--emperor", vassals)
    emp.wait_log("vassal old.ini: ready")
    old_master = emp.master_pid("old.ini")
    (vassals / "old.ini").rename(vassals / "new.ini")
    emp.wait_log("vassal new.ini: ready")
    assert not alive(old_master)
    assert serves(port)
    assert "vassal old.ini (pid" in emp.log and "stopped" in emp.log


def test_globs_ini_options_stats_pidfile_and_sighup(emperor, tmp_path):
    srv = tmp_path / "srv"
    ports = {"one": free_port(), "two": free_port(), "three": free_port()}
    for name in ("one", "two"):
        (srv / name / "deploy").mkdir(parents=True)
        vassal_ini(srv / name / "deploy" / "site.ini", ports[name], extra="env = WHO=%c\n")
    extra = tmp_path / "extra"
    extra.mkdir()
    stats_port = free_port()
    (tmp_path / "common.ini").write_text("[uwsgi]\nenv = FROM_INCLUDE=yes\n")
    (tmp_path / "base.ini").write_text("[uwsgi]\nenv = FROM_INHERIT=yes\nprocesses = 3\n")
    (tmp_path / "emperor.ini").write_text(
        "[uwsgi]\n"
        f"emperor = {srv}/*/deploy/site.ini\n"
        f"emperor = {extra}\n"
        "vassals-include = %d/common.ini\n"
        "vassals-inherit = %d/base.ini\n"
        "vassal-set = env=FROM_SET=1\n"
        f"emperor-stats = 127.0.0.1:{stats_port}\n"
        "emperor-pidfile = %d/emperor.pid\n"
    )
    emp = emperor("--ini", tmp_path / "emperor.ini")
    for name in ("one", "two"):
        wait_for(lambda n=name: serves(ports[n]), 15, what=emp.log)
    env = json.loads(http_get(ports["one"], "/osenv")[2])
    assert env["FROM_INCLUDE"] == "yes" and env["FROM_SET"] == "1"
    assert env["FROM_INHERIT"] == "yes" and env["WHO"] == "deploy"
    wait_for(lambda: (tmp_path / "emperor.pid").exists(), 5)
    assert (tmp_path / "emperor.pid").read_text().strip() == str(emp.pid)
    # a new directory matching the glob is picked up (no polling: inotify on the levels)
    (srv / "three" / "deploy").mkdir(parents=True)
    vassal_ini(srv / "three" / "deploy" / "site.ini", ports["three"])
    wait_for(lambda: serves(ports["three"]), 15, what=emp.log)
    # a worker may answer before its master's "ready" has reached the emperor
    wait_for(
        lambda: all(v["state"] == "ready" for v in emp.stats(stats_port)["vassals"]),
        10,
        what="every vassal ready in the stats",
    )
    stats = emp.stats(stats_port)
    assert stats["pid"] == emp.pid
    rows = {Path(v["ini"]).parent.parent.name: v for v in stats["vassals"]}
    assert set(rows) == {"one", "two", "three"}
    for row in rows.values():
        assert row["state"] == "ready" and row["restarts"] == 0
        assert alive(row["pid"]) and row["last_start"] <= time.time()
    assert len(emp.workers(rows["one"]["pid"])) == 1  # the vassal's processes beat the base's
    # SIGHUP re-scans; nothing changed, so nothing is disturbed
    masters = {n: r["pid"] for n, r in rows.items()}
    emp.proc.send_signal(signal.SIGHUP)
    emp.wait_log("SIGHUP: scanning")
    vassal_ini(extra / "four.ini", free_port())
    emp.wait_log("vassal four.ini: ready")
    rows = {Path(v["ini"]).parent.parent.name: v["pid"] for v in emp.stats(stats_port)["vassals"]}
    assert all(rows[n] == masters[n] for n in masters)
    emp.proc.send_signal(signal.SIGTERM)
    assert emp.proc.wait(20) == 0
    assert not (tmp_path / "emperor.pid").exists()


def test_systemd_ready_once_every_vassal_has_started(emperor, tmp_path):
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        vassal_ini(vassals / f"v{i}.ini", port)
    (vassals / "broken.ini").write_text("[uwsgi]\nprocesses = x\n")
    notify_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    sock.settimeout(15)
    try:
        emp = emperor("--emperor", vassals, env={"NOTIFY_SOCKET": notify_path})
        message = sock.recv(4096).decode()
        assert message.startswith("READY=1")
        # by then every vassal that can start is serving; the broken one is known
        assert all(serves(p) for p in ports)
        assert "2 of 3 vassal(s) ready" in emp.log
        emp.proc.send_signal(signal.SIGTERM)
        assert sock.recv(4096) == b"STOPPING=1"
        assert emp.proc.wait(20) == 0
    finally:
        sock.close()


def others_can_run(path: str) -> bool:
    """True if a user other than root can reach and execute ``path``."""
    path = os.path.realpath(path)
    parts = path.split("/")
    for i in range(2, len(parts)):
        if not os.stat("/".join(parts[:i])).st_mode & 0o001:
            return False
    return bool(os.stat(path).st_mode & 0o001)


SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's; .ci/run installs it


def python_for_everyone(base: Path) -> tuple[str, str]:
    """A Python that a vassal run as another user can execute, and a PYTHONPATH
    entry (in ``base``, readable by all) with procmaster's dependencies. The test
    Python when others can run it; else the system Python of the same version,
    given copies of the installed dependencies (same interpreter version, so the
    same compiled modules). Fails, never skips: CI must run the tyrant's tests."""
    import httptools
    import inotify_simple

    if others_can_run(sys.executable):
        return sys.executable, ""
    assert os.path.exists(SYSTEM_PYTHON), f"{SYSTEM_PYTHON} missing (.ci/run installs python3)"
    version = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == str(sys.version_info[:2]), (version, sys.version_info[:2])
    deps = base / "site"
    for module in (psutil, httptools, inotify_simple):
        source = Path(module.__file__)
        if source.name == "__init__.py":
            shutil.copytree(source.parent, deps / source.parent.name, dirs_exist_ok=True)
        else:
            deps.mkdir(exist_ok=True)
            shutil.copy2(source, deps / source.name)
    for path in [deps, *deps.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return SYSTEM_PYTHON, str(deps)


@pytest.mark.skipif(os.geteuid() != 0, reason="emperor-tyrant needs root")
def test_tyrant_refuses_root_owned_vassals_unless_allowed(emperor, tmp_path):
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    port = free_port()
    vassal_ini(vassals / "root.ini", port)
    emp = emperor("--emperor", vassals, "--emperor-tyrant")
    emp.wait_log("vassal root.ini: refused: the file is owned by root")
    assert refused(port)
    emp.proc.send_signal(signal.SIGTERM)
    assert emp.proc.wait(10) == 0
    emp = emperor("--emperor", vassals, "--emperor-tyrant", "--emperor-tyrant-allow-root")
    wait_for(lambda: serves(port), 15, what="the root-owned vassal, allowed")


@pytest.mark.skipif(os.geteuid() != 0, reason="emperor-tyrant needs root")
def test_tyrant_runs_each_vassal_as_its_file_owner(emperor, tmp_path):
    import pwd

    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="procmaster-tyrant-"))
    try:
        base.chmod(0o755)
        vassals = base / "vassals"
        vassals.mkdir()
        vassals.chmod(0o755)
        python, deps = python_for_everyone(base)
        port = free_port()
        mine = vassal_ini(vassals / "mine.ini", port)
        os.chown(mine, nobody.pw_uid, nobody.pw_gid)
        emp = emperor(
            "--emperor",
            vassals,
            "--emperor-tyrant",
            python=python,
            env={"PYTHONPATH": os.pathsep.join([str(APPS), str(ROOT), deps])},
        )
        wait_for(lambda: serves(port), 15, what="the vassal run as nobody")
        master = emp.master_pid("mine.ini")
        assert psutil.Process(master).uids().real == nobody.pw_uid
        worker_pid = int(http_get(port, "/pid")[2])
        assert psutil.Process(worker_pid).uids().effective == nobody.pw_uid
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_sigint_and_sigquit_stop_every_vassal_at_once(emperor, tmp_path, sig):
    """SIGINT/SIGQUIT: an immediate stop of every vassal (not the stop word and
    its grace), then the emperor exits; no process of any vassal is left."""
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    ports = [free_port(), free_port()]
    for name, port in zip("ab", ports, strict=True):
        vassal_ini(vassals / f"{name}.ini", port, processes=2)
    emp = emperor("--emperor", vassals)
    emp.wait_log("ready", count=2, timeout=30)
    everything = emp.descendants()
    assert len(everything) >= 6  # 2 masters, 4 workers
    emp.proc.send_signal(sig)
    assert emp.proc.wait(30) == 0
    assert f"{signal.Signals(sig).name}: immediate stop of every vassal" in emp.log
    assert not [p for p in everything if alive(p)]
    assert refused(ports[0]) and refused(ports[1])


def test_a_vassal_that_will_not_stop_is_killed_after_the_mercy(emperor, tmp_path):
    """A vassal told to stop that does not (here: its master is frozen with
    SIGSTOP) is SIGKILLed once reload-mercy + 5 s have passed, said in the log;
    the other vassal is left alone."""
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    port, other = free_port(), free_port()
    vassal_ini(vassals / "stuck.ini", port)
    vassal_ini(vassals / "fine.ini", other)
    emp = emperor("--emperor", vassals, "--reload-mercy", "1")
    emp.wait_log("ready", count=2, timeout=30)
    stuck = emp.master_pid("stuck.ini")
    fine = emp.master_pid("fine.ini")
    os.kill(stuck, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        (vassals / "stuck.ini").unlink()
        emp.wait_log(f"vassal stuck.ini (pid {stuck}) did not stop in time: SIGKILL", timeout=60)
        assert time.monotonic() - t0 >= 5.5  # not before reload-mercy (1 s) + 5 s
        wait_for(lambda: not alive(stuck), 30, what="the stuck vassal gone")
    finally:
        try:
            os.kill(stuck, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert alive(fine) and serves(other)


def test_inotify_queue_overflow_makes_a_full_rescan(emperor, tmp_path):
    """When the kernel's inotify queue overflows (IN_Q_OVERFLOW), the events in it
    are lost: the emperor re-reads the directory and finds a vassal whose own
    event was dropped. The queue is made small for the emperor's inotify instance
    (fs.inotify.max_queued_events is read when the instance is created, and
    restored at once), the emperor frozen while 64 other names change."""
    limit_file = Path("/proc/sys/fs/inotify/max_queued_events")
    if os.geteuid() != 0:
        pytest.skip("lowering fs.inotify.max_queued_events needs root")
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    port = free_port()
    saved = limit_file.read_text()
    try:
        limit_file.write_text("16")
        emp = emperor("--emperor", vassals)
        emp.wait_log("watching", timeout=30)
    finally:
        limit_file.write_text(saved)
    os.kill(emp.pid, signal.SIGSTOP)
    try:
        for i in range(64):  # fills the queue: 16 events kept, then one overflow
            (vassals / f"note-{i}.txt").write_text("x")
        vassal_ini(vassals / "late.ini", port)  # its event is lost
    finally:
        os.kill(emp.pid, signal.SIGCONT)
    emp.wait_log("vassal late.ini: started", timeout=30)
    wait_for(lambda: serves(port), 30, what=f"late.ini serving:\n{emp.log}")


def test_a_vassal_with_daemonize_stays_the_emperor_s_child_and_logs_to_the_file(emperor, tmp_path):
    """As uWSGI: under an emperor, daemonize only names the log (a detached vassal
    would leave its emperor, which would start it again and again)."""
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    port = free_port()
    log = tmp_path / "v.log"
    vassal_ini(vassals / "v.ini", port, extra=f"daemonize = {log}\n")
    emp = emperor("--emperor", vassals)
    wait_for(lambda: serves(port), 20, what=f"the vassal:\n{emp.log}")
    emp.wait_log("ready")
    kids = psutil.Process(emp.pid).children()
    assert len(kids) == 1 and any("v.ini" in part for part in kids[0].cmdline())
    wait_for(lambda: log.exists() and "procmaster master pid" in log.read_text(), 10)
    assert f"master pid {kids[0].pid}" in log.read_text()
