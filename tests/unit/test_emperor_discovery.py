"""Finding vassal files (procmaster.emperor.discovery) on a temporary directory:
patterns, the directories worth watching, signatures and the diff between two
looks. No processes, no inotify."""

from __future__ import annotations

import os
from pathlib import Path

from procmaster.emperor.discovery import diff, discover, expand, signature, split_pattern


def ini(path: Path, text: str = "[uwsgi]\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def bump_mtime(path: Path, follow: bool = True) -> None:
    """Like ``touch`` (``touch --no-dereference`` with follow=False), a second later."""
    st = os.stat(path, follow_symlinks=follow)
    ns = st.st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(ns, ns), follow_symlinks=follow)


def test_a_directory_means_its_ini_files(tmp_path):
    assert split_pattern(str(tmp_path)) == [*str(tmp_path).strip("/").split("/"), "*.ini"]
    assert split_pattern(str(tmp_path / "one.ini"))[-1] == "one.ini"
    assert split_pattern(str(tmp_path / "*.conf"))[-1] == "*.conf"


def test_patterns_match_ini_files_only_readable_and_not_hidden(tmp_path):
    a = ini(tmp_path / "a.ini")
    b = ini(tmp_path / "b.ini")
    ini(tmp_path / "notes.txt")
    ini(tmp_path / ".hidden.ini")
    (tmp_path / "dir.ini").mkdir()  # a directory is not a vassal
    found = discover([str(tmp_path)])
    assert list(found.files) == [str(a), str(b)]
    assert found.files[str(a)].real == str(a)
    # the directory is watched for the names of interest only
    assert found.watch[str(tmp_path)] == {"*.ini"}


def test_globs_across_directories_and_their_watches(tmp_path):
    one = ini(tmp_path / "srv" / "one" / "deploy" / "site.ini")
    two = ini(tmp_path / "srv" / "two" / "deploy" / "site.ini")
    (tmp_path / "srv" / "three").mkdir()  # no deploy/ yet
    interest: dict[str, set[str]] = {}
    found = expand(str(tmp_path / "srv" / "*" / "deploy" / "site.ini"), interest)
    assert found == [str(one), str(two)]
    srv = tmp_path / "srv"
    # srv is watched for new directories; each of them for deploy/ to appear
    assert interest[str(srv)] == {"*"}
    assert interest[str(srv / "three")] == {"deploy"}
    assert interest[str(srv / "one" / "deploy")] == {"site.ini"}
    # nothing above the first glob's directory: its existing ancestors stay put
    assert set(interest) == {
        str(srv),
        *(str(srv / d) for d in ("one", "two", "three")),
        *(str(srv / d / "deploy") for d in ("one", "two")),
    }


def test_a_missing_directory_is_watched_from_its_nearest_ancestor(tmp_path):
    interest: dict[str, set[str]] = {}
    assert expand(str(tmp_path / "later" / "vassals"), interest) == []
    assert interest == {str(tmp_path): {"later"}}
    ini(tmp_path / "later" / "vassals" / "a.ini")
    interest = {}
    assert expand(str(tmp_path / "later" / "vassals"), interest) == [
        str(tmp_path / "later" / "vassals" / "a.ini")
    ]
    assert interest == {str(tmp_path / "later" / "vassals"): {"*.ini"}}


def test_the_first_pattern_to_find_a_path_wins(tmp_path):
    a = ini(tmp_path / "a.ini")
    found = discover([str(tmp_path), str(a)])
    assert list(found.files) == [str(a)]


def test_symlinks_to_another_directory_like_debian_apps_enabled(tmp_path):
    available, enabled = tmp_path / "apps-available", tmp_path / "apps-enabled"
    target = ini(available / "site[1].ini")
    ini(available / "other.ini")  # not enabled
    enabled.mkdir()
    (enabled / "site.ini").symlink_to("../apps-available/site[1].ini")
    found = discover([str(enabled)])
    link = str(enabled / "site.ini")
    assert list(found.files) == [link]  # the path as found
    assert found.files[link].real == str(target)  # the vassal runs the real file
    # the target's directory is watched for the target's name (glob-escaped)
    assert found.watch[str(available)] == {"site[[]1].ini"}
    assert found.watch[str(enabled)] == {"*.ini"}
    # a dangling link is no vassal
    (enabled / "gone.ini").symlink_to("../apps-available/nothing.ini")
    assert list(discover([str(enabled)]).files) == [link]


def test_touch_edit_and_touch_no_dereference_are_changes(tmp_path):
    a = ini(tmp_path / "a.ini")
    real = ini(tmp_path / "real" / "b.ini")
    (tmp_path / "b.ini").symlink_to(real)
    first = discover([str(tmp_path)]).files
    assert not diff(first, discover([str(tmp_path)]).files)  # nothing changed
    bump_mtime(a)
    second = discover([str(tmp_path)]).files
    change = diff(first, second)
    assert change.changed == [str(a)]
    assert change.added == change.removed == change.retargeted == []
    bump_mtime(tmp_path / "b.ini", follow=False)  # the link itself
    third = discover([str(tmp_path)]).files
    assert diff(second, third).changed == [str(tmp_path / "b.ini")]
    bump_mtime(real)  # the link's target
    assert diff(third, discover([str(tmp_path)]).files).changed == [str(tmp_path / "b.ini")]


def test_new_and_vanished_files(tmp_path):
    a = ini(tmp_path / "a.ini")
    first = discover([str(tmp_path)]).files
    b = ini(tmp_path / "b.ini")
    second = discover([str(tmp_path)]).files
    assert diff(first, second).added == [str(b)]
    a.unlink()
    change = diff(second, discover([str(tmp_path)]).files)
    assert change.removed == [str(a)]
    assert change.added == change.changed == []


def test_a_rename_is_a_removal_and_an_addition_of_the_same_file(tmp_path):
    old = ini(tmp_path / "old.ini")
    first = discover([str(tmp_path)]).files
    new = tmp_path / "new.ini"
    old.rename(new)
    second = discover([str(tmp_path)]).files
    change = diff(first, second)
    assert change.removed == [str(old)] and change.added == [str(new)]
    assert first[str(old)].file_id == second[str(new)].file_id  # the same file


def test_a_link_pointed_elsewhere_is_retargeted(tmp_path):
    one = ini(tmp_path / "available" / "one.ini")
    two = ini(tmp_path / "available" / "two.ini")
    link = tmp_path / "enabled" / "site.ini"
    link.parent.mkdir()
    link.symlink_to(one)
    first = discover([str(link.parent)]).files
    link.unlink()
    link.symlink_to(two)
    second = discover([str(link.parent)]).files
    change = diff(first, second)
    assert change.retargeted == [str(link)]
    assert change.changed == change.added == change.removed == []
    assert second[str(link)].real == str(two)


def test_signature_of_a_missing_file_is_none(tmp_path):
    assert signature(str(tmp_path / "nothing.ini")) is None
    a = ini(tmp_path / "a.ini")
    sig = signature(str(a))
    st = os.stat(a)
    assert sig is not None and sig.real == str(a)
    assert sig.file_id == (st.st_dev, st.st_ino)
