"""uWSGI's shared areas (``sharedarea``) through ``uwsgi.sharedarea_*``, shared by every
worker; the same app runs under uWSGI 2.0 where it is installed: its answers are the
reference."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest
from support import wait_for
from support.side import needs_uwsgi, sides

AREAS = ("--sharedarea", "1", "--sharedarea", "size=100")


@pytest.fixture
def instance(tmp_path):
    yield from sides(tmp_path, "uwsgi_sharedarea_app", None, *AREAS)


@needs_uwsgi
def test_every_sharedarea_call_answers_as_uwsgi_does(instance):
    ours = instance("procmaster").json("/sequence")
    theirs = instance("uwsgi").json("/sequence")
    assert len(ours) == len(theirs) > 40
    for mine, reference in zip(ours, theirs, strict=True):
        if reference[0] in ("sharedarea_read64", "sharedarea_inc64") and mine[1] == "ValueError":
            continue  # uWSGI bounds 64-bit reads and incs by 4 bytes, past the area's end
        assert mine == reference


def test_workers_share_the_area_and_a_reload_keeps_it(instance):
    inst = instance("procmaster", processes=3)
    errors: list[BaseException] = []

    def client() -> None:
        try:
            for _ in range(5):
                inst.json("/inc?n=200")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert inst.json("/count") == 4 * 5 * 200
    before = {inst.json("/pid") for _ in range(6)}
    inst.signal(signal.SIGHUP)
    wait_for(
        lambda: not ({inst.json("/pid") for _ in range(6)} & before),
        60,
        what=f"new workers:\n{inst.log()}",
    )
    assert inst.json("/count") == 4000


def test_a_bad_sharedarea_line_is_refused_with_its_origin(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[uwsgi]\nhttp-socket = 127.0.0.1:0\nsharedarea = file=/etc/passwd\n")
    out = subprocess.run(
        [sys.executable, "-m", "procmaster", "--ini", str(ini)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "bad.ini:3" in out.stderr + out.stdout and "file" in out.stderr + out.stdout
