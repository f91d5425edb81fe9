"""uWSGI's cache (``cache2``, ``cache``) through ``uwsgi.cache_*``, shared by every
worker. The same app runs under uWSGI 2.0 where it is installed: its answers
are the reference."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
from support import APPS, ROOT, free_port, http_get, wait_for
from support.side import needs_uwsgi, sides

CACHES = ["--cache2", "name=default,items=10,blocksize=64", "--cache2", "name=other,items=5"]


@pytest.fixture
def instance(tmp_path):
    yield from sides(tmp_path, "uwsgi_cache_app")


@needs_uwsgi
def test_every_cache_call_answers_as_uwsgi_does(instance):
    ours = instance("procmaster", *CACHES).json("/sequence")
    theirs = instance("uwsgi", *CACHES).json("/sequence")
    assert len(ours) == len(theirs) > 30
    for mine, reference in zip(ours, theirs, strict=True):
        if reference[0] == "intval":  # the same TypeError, worded for the argument
            assert mine[1].startswith("TypeError: a bytes-like object is required")
            continue
        assert mine == reference


def test_four_workers_share_one_cache_and_the_counters_add_up(instance):
    inst = instance("procmaster", "--cache2", "name=c,items=200,blocksize=64", processes=4)
    results: list[int] = []
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        try:
            for round_ in range(5):
                results.append(inst.json(f"/mixed?n=2000&seed={seed * 10 + round_}"))
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert len(results) == 20  # 4 clients x 5 requests x 2,000 operations = 40,000
    assert inst.json("/num?key=total") == sum(results)


def test_a_graceful_reload_keeps_the_items(instance):
    inst = instance("procmaster", "--cache2", "name=c,items=20,blocksize=64")
    assert inst.json("/set?key=kept&value=yes") is True
    before = {inst.json("/pid") for _ in range(4)}
    inst.signal(signal.SIGHUP)
    wait_for(
        lambda: not ({inst.json("/pid") for _ in range(4)} & before),
        30,
        what=f"only new workers answering:\n{inst.log()}",
    )
    assert inst.json("/get?key=kept") == repr(b"yes")


def test_a_worker_killed_while_using_the_cache_does_not_wedge_it(instance):
    inst = instance("procmaster", "--cache2", "name=c,items=200,blocksize=64")
    done = threading.Event()

    def hammer() -> None:
        while not done.is_set():
            try:
                inst.json("/mixed?n=500&seed=1")
            except (OSError, AssertionError):
                pass

    t = threading.Thread(target=hammer, daemon=True)
    t.start()
    try:
        for _ in range(3):
            victim = inst.json("/pid")
            os.kill(victim, signal.SIGKILL)
            wait_for(
                lambda v=victim: v not in {inst.json("/pid") for _ in range(4)},
                30,
                what="the killed worker replaced",
            )
    finally:
        done.set()
        t.join(60)
    assert inst.json("/set?key=after&value=1") is True
    assert inst.json("/get?key=after") == repr(b"1")


def test_a_bad_cache2_line_stops_the_start_with_its_place(tmp_path):
    ini = tmp_path / "site.ini"
    ini.write_text(
        "[uwsgi]\nhttp-socket = 127.0.0.1:0\nmodule = uwsgi_cache_app\ncache2 = name=c,items=ten\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-m", "procmaster", "--ini", str(ini)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode != 0
    assert f"{ini}:4: cache2 = name=c,items=ten: items='ten': expected a whole number" in (
        out.stdout + out.stderr
    )
    assert "Traceback" not in out.stdout + out.stderr


def test_without_a_cache_the_calls_answer_as_uwsgi_does(instance):
    inst = instance("procmaster")
    assert inst.json("/get?key=x") == "None"
    assert inst.json("/set?key=x&value=1") is None


def test_stats_show_each_cache(instance):
    stats_port = free_port()
    inst = instance(
        "procmaster",
        "--cache2",
        "name=c,items=20,blocksize=64",
        "--stats",
        f"127.0.0.1:{stats_port}",
        "--stats-http",
    )
    inst.json("/set?key=a&value=1")
    inst.json("/get?key=a")
    inst.json("/get?key=missing")

    def document() -> dict:
        status, _, body = http_get(stats_port, "/", timeout=10)
        return json.loads(body)

    caches = document()["caches"]
    assert [(c["name"], c["items"], c["max_items"], c["hits"], c["miss"]) for c in caches] == [
        ("c", 1, 19, 1, 1)
    ]
    status, _, metrics = http_get(stats_port, "/metrics", timeout=10)
    assert b'procmaster_cache_items{cache="c"} 1' in metrics
    assert b'procmaster_cache_hits_total{cache="c"} 1' in metrics
