"""procmaster.watch on a temporary directory: paths watched for any hashable tag,
names of interest in directories, and which events count. inotify queues its
events as the file operations return, so no test waits."""

from __future__ import annotations

import os

import pytest

from procmaster.watch import DIR_MASK, NAMES_MASK, Watcher, module_files, name_matches


@pytest.fixture
def watcher():
    w = Watcher()
    yield w
    w.close()


def test_a_path_for_any_hashable_tag(watcher, tmp_path):
    touch = tmp_path / "reload.touch"
    assert watcher.add(str(touch), "reload:touch-reload") is None  # need not exist yet
    assert watcher.add(str(tmp_path / "chain"), ("chain", "touch-chain-reload")) is None
    assert len(watcher) == 2
    assert watcher.read() == []
    (tmp_path / "other").write_text("x")
    assert watcher.read() == []  # not a watched name
    touch.write_text("x")
    assert watcher.read() == [("reload:touch-reload", str(touch))]  # once for the burst
    (tmp_path / "chain").write_text("x")
    os.utime(tmp_path / "chain")
    assert watcher.read() == [(("chain", "touch-chain-reload"), str(tmp_path / "chain"))]


def test_a_watched_directory_counts_for_anything_in_it(watcher, tmp_path):
    assert watcher.add(str(tmp_path), "reload:fs-reload") is None
    (tmp_path / "anything").write_text("x")
    assert watcher.read() == [("reload:fs-reload", str(tmp_path))]


def test_a_missing_directory_is_a_problem_to_report(watcher, tmp_path):
    problem = watcher.add(str(tmp_path / "no" / "file"), "x")
    assert problem and "does not exist" in problem
    assert len(watcher) == 0


def test_names_in_directories(watcher, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    watcher.watch_names("vassals", {str(one): {"*.ini"}, str(two): {"deploy"}})
    assert len(watcher) == 0  # names are not paths
    assert watcher.dir_mask[str(one)] == NAMES_MASK  # no IN_MODIFY where only names matter
    (one / "notes.txt").write_text("x")
    (one / ".hidden.ini").write_text("x")
    assert watcher.read() == []
    with open(one / "a.ini", "w") as fh:
        fh.write("[uwsgi]\n")
        fh.flush()
        assert watcher.read() == [("vassals", str(one))]  # created
        fh.write("more\n")
        fh.flush()
        assert watcher.read() == []  # written: nothing until closed
    assert watcher.read() == [("vassals", str(one))]  # closed after writing
    (two / "deploy").mkdir()
    assert watcher.read() == [("vassals", str(two))]


def test_names_replaced_and_dropped(watcher, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    watcher.watch_names("vassals", {str(one): {"*.ini"}, str(two): {"*.ini"}})
    watcher.watch_names("vassals", {str(two): {"site.ini"}})
    assert str(one) not in watcher.dir_wd
    (one / "a.ini").write_text("x")
    (two / "a.ini").write_text("x")
    assert watcher.read() == []
    (two / "site.ini").write_text("x")
    assert watcher.read() == [("vassals", str(two))]


def test_names_and_a_path_share_one_directory(watcher, tmp_path):
    watcher.watch_names("vassals", {str(tmp_path): {"*.ini"}})
    assert watcher.add(str(tmp_path / "touch"), "reload") is None
    assert watcher.dir_mask[str(tmp_path)] == DIR_MASK  # the path wants IN_MODIFY
    (tmp_path / "a.ini").write_text("x")
    (tmp_path / "touch").write_text("x")
    assert sorted(map(str, watcher.read())) == sorted(
        map(str, [("reload", str(tmp_path / "touch")), ("vassals", str(tmp_path))])
    )
    watcher.watch_names("vassals", {})  # the path keeps the directory watched
    (tmp_path / "touch").write_text("y")
    assert watcher.read() == [("reload", str(tmp_path / "touch"))]


def test_a_watched_directory_that_goes_away_counts_for_names(watcher, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    watcher.watch_names("vassals", {str(gone): {"*.ini"}})
    gone.rmdir()
    assert watcher.read() == [("vassals", str(gone))]
    assert str(gone) not in watcher.dir_wd
    gone.mkdir()  # watched again by the next call
    watcher.watch_names("vassals", {str(gone): {"*.ini"}})
    (gone / "a.ini").write_text("x")
    assert watcher.read() == [("vassals", str(gone))]


def test_name_matches_like_the_shell():
    assert name_matches("a.ini", "*.ini")
    assert not name_matches(".a.ini", "*.ini")
    assert name_matches(".a.ini", ".*.ini")
    assert name_matches("deploy", "deploy") and not name_matches("Deploy", "deploy")
    assert name_matches("site[1].ini", "site[[]1].ini")


def test_module_files_leave_out_the_standard_library(tmp_path):
    seen: set[str] = set()
    found = module_files(seen)
    assert __file__ in found or os.path.realpath(__file__) in found
    assert not [p for p in found if p.endswith("/os.py")]
    assert module_files(seen) == []  # each file once
