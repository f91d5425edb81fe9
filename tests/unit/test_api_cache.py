"""The shared cache's operations, as uWSGI 2.0.31 answers them (seen with its own
``uwsgi.cache_*`` on the same calls), and its hash table against a plain dict."""

from __future__ import annotations

import os
import random
import time

import pytest

from procmaster.api.cache import Cache
from procmaster.api.cache_spec import CacheSpec, parse_cache2


def make(items=10, blocksize=64, keysize=2048, **kw) -> Cache:
    return Cache(CacheSpec("t", items, blocksize=blocksize, keysize=keysize, **kw))


def test_set_does_not_overwrite_update_does():
    c = make()
    assert c.set("k", b"v1") is True
    assert c.set("k", b"v2") is False
    assert c.get("k") == b"v1"
    assert c.set("k", b"v3", update=True) is True
    assert c.get("k") == b"v3"
    assert c.get("nokey") is None


def test_str_keys_and_values_are_utf8_and_other_types_refused():
    c = make()
    assert c.set("s", "strvalue")
    assert c.get(b"s") == b"strvalue"
    with pytest.raises(TypeError, match="bytes-like"):
        c.set("iv", 5)


def test_delete_exists_keys_clear():
    c = make()
    c.set("a", b"1")
    c.set("b", b"2")
    assert c.exists("a") and not c.exists("zz")
    assert c.delete("a") is True and c.delete("a") is False
    assert c.keys() == [b"b"]
    c.clear()
    assert c.keys() == [] and c.get("b") is None


def test_numbers_behave_as_uwsgi_int64():
    c = make()
    assert c.math("n", "inc", 1) and c.math("n", "inc", 5)
    assert c.num("n") == 6 and c.get("n") == b"\x06" + b"\0" * 7
    c.math("n", "dec", 2)
    c.math("n", "mul", 3)
    c.math("n", "div", 2)
    assert c.num("n") == 6
    c.math("m", "mul", 2)
    c.math("d", "dec", 1)
    c.math("v", "div", 2)
    assert (c.num("m"), c.num("d"), c.num("v"), c.num("nope")) == (0, -1, 0, 0)
    c.set("s", b"ab", update=True)
    c.math("s", "inc", 1)
    assert c.get("s") == b"bb" + b"\0" * 6  # a short value reads zero-padded
    c.math("n", "div", 0)
    assert c.num("n") == 6  # division by zero leaves the number alone
    c.set("big", (2**63 - 1).to_bytes(8, "little"), update=True)
    c.math("big", "inc", 1)
    assert c.num("big") == -(2**63)  # wraps like int64_t
    c.set("neg", (-7).to_bytes(8, "little", signed=True), update=True)
    c.math("neg", "div", 2)
    assert c.num("neg") == -3  # C division truncates toward zero


def test_limits_refuse_rather_than_truncate():
    c = make(items=10, blocksize=64, keysize=16)
    assert c.set("big", b"x" * 65) is False
    assert c.set("k" * 17, b"x") is False
    assert c.set("", b"1") is False
    assert c.set("ev", b"") is False
    # items=N holds N-1 keys, as uWSGI's
    assert [c.set(f"f{i}", b"x") for i in range(10)] == [True] * 9 + [False]
    assert c.stats()["full"] == 1


def test_purge_lru_drops_the_least_recently_used():
    c = make(items=4, purge_lru=True)
    for k in ("a", "b", "c"):
        c.set(k, b"1")
    c.get("a")  # now b is the least recently used
    assert c.set("d", b"1")
    assert sorted(c.keys()) == [b"a", b"c", b"d"]


def test_expired_items_are_gone_and_make_room(monkeypatch):
    c = make(items=3)
    now = time.time()
    c.set("e", b"1", expires=1)
    c.set("f", b"1")
    monkeypatch.setattr(time, "time", lambda: now + 5)
    assert c.get("e") is None and c.keys() == [b"f"]
    c.set("e2", b"1", expires=1)
    monkeypatch.setattr(time, "time", lambda: now + 10)
    assert c.set("g", b"1")  # full, but a sweep finds the expired item
    assert c.sweep() == 0


def test_the_hash_table_agrees_with_a_dict_through_random_operations():
    # small table, many collisions and deletions: backward-shift deletion must
    # never lose a key that is still there
    rng = random.Random(7)
    c = make(items=64, blocksize=16, keysize=8)
    model: dict[bytes, bytes] = {}
    keys = [f"k{i}".encode() for i in range(90)]
    for _ in range(20000):
        k = rng.choice(keys)
        op = rng.random()
        if op < 0.45:
            v = str(rng.randrange(10**6)).encode()
            ok = c.set(k, v, update=True)
            if k in model or len(model) < 63:
                assert ok
                model[k] = v
            else:
                assert not ok
        elif op < 0.75:
            assert c.delete(k) == (model.pop(k, None) is not None)
        else:
            assert c.get(k) == model.get(k)
    assert sorted(c.keys()) == sorted(model)
    assert c.stats()["items"] == len(model)


def test_a_store_keeps_the_items_and_a_new_geometry_starts_afresh(tmp_path):
    path = str(tmp_path / "cache.store")
    c = Cache(CacheSpec("s", 8, blocksize=32, store=path))
    c.set("k", b"kept")
    c.sync()
    again = Cache(CacheSpec("s", 8, blocksize=32, store=path))
    assert again.get("k") == b"kept"
    other = Cache(CacheSpec("s", 16, blocksize=32, store=path))
    assert other.get("k") is None and other.set("n", b"1")
    assert c.get("k") == b"kept"  # the old mapping (a draining worker's) is untouched


def test_a_store_that_is_a_symlink_or_not_ours_is_refused(tmp_path):
    target = tmp_path / "victim"
    target.write_bytes(b"precious")
    link = tmp_path / "cache.store"
    link.symlink_to(target)
    with pytest.raises(OSError):
        Cache(CacheSpec("s", 8, blocksize=32, store=str(link)))
    assert target.read_bytes() == b"precious"
    theirs = tmp_path / "theirs.store"
    theirs.write_bytes(b"")
    os.chown(theirs, 65534, 65534)
    with pytest.raises(OSError, match="owned by this user"):
        Cache(CacheSpec("s", 8, blocksize=32, store=str(theirs)))


def test_memory_handed_to_a_new_image_is_adopted_only_when_it_fits():
    c = make(items=10, blocksize=64)
    c.set("k", b"v")
    same = CacheSpec("t", 10, blocksize=64)
    assert Cache.fits(same, c.fd)
    adopted = Cache(same, fd=os.dup(c.fd))
    assert adopted.get("k") == b"v"
    assert not Cache.fits(CacheSpec("t", 20, blocksize=64), c.fd)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("items=10", "needs a name"),
        ("name=a", "needs items=N"),
        ("name=a,items=ten", "expected a whole number"),
        ("name=a,items=1", "at least 2"),
        ("name=a,items=10,colour=blue", "unknown cache2 key 'colour'"),
        ("name=a,items", "expected key=value"),
    ],
)
def test_bad_cache2_lines_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_cache2(text)


def test_cache2_spellings():
    spec = parse_cache2("name=mycache,items=100,blocksize=1024,keysize=64,purge_lru=1,store=/x")
    assert (spec.name, spec.items, spec.keysize, spec.purge_lru, spec.store) == (
        "mycache",
        100,
        64,
        True,
        "/x",
    )
