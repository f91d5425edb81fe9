"""``--check``'s report of watched paths that can never fire: every watched option the
table declares is checked, in the order the config declares them."""

from __future__ import annotations

from procmaster.check import render_check
from procmaster.config import load


def test_every_watched_option_is_checked_in_declaration_order(tmp_path):
    ini = tmp_path / "site.ini"
    missing = tmp_path / "nowhere"
    ini.write_text(
        "[uwsgi]\nsocket = :3031\nmodule = app\n"
        f"touch-logreopen = {missing}/a\n"
        f"touch-reload = {missing}/b\n"
        f"touch-chain-reload = {tmp_path}/fine\n"
        f"fs-reload = {missing}/c\n"
        f"touch-workers-reload = {missing}/d\n"
        f"touch-logrotate = {missing}/e\n"
    )
    # (the app import is --check's end-to-end business: tests/e2e/test_newcomer.py)
    text, would_start = render_check(load(["--ini", str(ini), "--check-no-import"], environ={}))
    assert would_start
    lines = [line.strip() for line in text.splitlines() if "can never be watched" in line]
    assert [line.split(": option ")[0] for line in lines] == [f"{ini}:{n}" for n in (4, 5, 7, 8, 9)]
    assert [line.split("'")[1] for line in lines] == [
        "touch-logreopen",
        "touch-reload",
        "fs-reload",
        "touch-workers-reload",
        "touch-logrotate",
    ]
    assert f"directory '{missing}' does not exist" in lines[0]


def test_relative_watched_paths_are_relative_to_chdir(tmp_path):
    (tmp_path / "app").mkdir()
    ini = tmp_path / "site.ini"
    ini.write_text(
        f"[uwsgi]\nsocket = :3031\nmodule = app\nchdir = {tmp_path}/app\n"
        "touch-reload = reload.txt\ntouch-reload = missing/reload.txt\n"
    )
    text, _ = render_check(load(["--ini", str(ini), "--check-no-import"], environ={}))
    lines = [line.strip() for line in text.splitlines() if "can never be watched" in line]
    assert lines == [
        f"{ini}:6: option 'touch-reload': '{tmp_path}/app/missing/reload.txt' can never be "
        f"watched: directory '{tmp_path}/app/missing' does not exist"
    ]


def _report(text: str) -> dict[str, list[str]]:
    """The migration report's sections: heading -> its lines."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.split("migration report\n", 1)[1].splitlines():
        if line.startswith("  ") and current is not None:
            sections[current].append(line.strip())
        elif line.startswith(" "):
            current = line.strip().split(" (")[0]
            sections[current] = []
    return sections


def test_partial_rows_say_what_differs_for_each_use_at_its_line(tmp_path):
    ini = tmp_path / "site.ini"
    (tmp_path / "base.ini").write_text("[uwsgi]\nprocesses = 2\n")
    ini.write_text(
        "[uwsgi]\nsocket = :3031\nmodule = app\n"
        "include = base.ini\n"  # 4
        "cheaper-algo = spare\n"  # 5
        "cheaper-algo = busyness\n"  # 6
        f"logger = file:{tmp_path}/a.log\n"  # 7
        "logger = zeromq:tcp://127.0.0.1:9\n"  # 8
        "route = ^/old redirect-permanent:/new\n"  # 9
        "route-uri = ^/x break\n"  # 10
        "hook-as-user = exec:true\n"  # 11
        "hook-master-start = exec:true\n"  # 12
        "master-fifo = /tmp/one.fifo\nmaster-fifo = /tmp/two.fifo\n"  # 13, 14
        "cache2 = name=a,items=10,nodes=10.0.0.2:4000\n"  # 15
        "procname = web\n"  # 16: differs whatever the value
    )
    text, _ = render_check(load(["--ini", str(ini), "--check-no-import"], environ={}))
    report = _report(text)
    partly = "\n".join(report["partly supported"])
    supported = "\n".join(report["supported"])
    for line in (6, 8, 10, 11, 15, 16):
        assert f"({ini}:{line})" in partly, (line, partly)
    for line in (4, 5, 7, 9, 12):
        assert f"({ini}:{line}): as uWSGI with this value" in supported, (line, supported)
    assert f"cheaper-algo ({ini}:6): 'busyness': procmaster has only 'spare'" in partly
    assert f"logger ({ini}:8): the 'zeromq' logger does not exist in procmaster" in partly
    assert f"route-uri ({ini}:10): a bare 'break' answers 500" in partly
    # (master-fifo differs by letters only, whatever the value: said by its note)
    assert f"master-fifo ({ini}:13): as uWSGI, the first FIFO is active" in partly
    assert f"cache2 ({ini}:15): nodes: not in procmaster" in partly
    assert f"procname ({ini}:16): sets the kernel's process name" in partly


def test_the_report_lists_each_uwsgi_api_subsystem_and_what_the_config_sets(tmp_path):
    ini = tmp_path / "site.ini"
    ini.write_text("[uwsgi]\nsocket = :3031\nmodule = app\nsharedarea = 1\nmules = 1\n")
    text, would_start = render_check(load(["--ini", str(ini), "--check-no-import"], environ={}))
    assert would_start
    section = text.split("uWSGI API for apps, supported (")[1].split("\n procmaster")[0]
    names = [line.strip().split(" [")[0] for line in section.splitlines()[1:]]
    expected = ["uwsgi module", "uwsgidecorators", "cache", "spooler", "mules"]
    expected += ["signals/timers/cron", "locks", "sharedarea", "rpc", "log variables"]
    assert names[: len(expected)] == expected
    assert "sharedarea [configured here: sharedarea]" in section
    assert "[configured here: mules]" in section and "cache2" not in section
