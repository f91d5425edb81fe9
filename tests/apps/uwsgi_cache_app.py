"""An app on uWSGI's cache API: the same file runs under uWSGI and procmaster."""

import json
import os
import random
from urllib.parse import parse_qs

import uwsgi


def sequence():
    out = []

    def t(name, call):
        try:
            out.append([name, repr(call())])
        except Exception as exc:  # noqa: BLE001 - the exception is the answer
            out.append([name, f"{type(exc).__name__}: {exc}"])

    t("set1", lambda: uwsgi.cache_set("k", b"v1"))
    t("set2", lambda: uwsgi.cache_set("k", b"v2"))
    t("get", lambda: uwsgi.cache_get("k"))
    t("update", lambda: uwsgi.cache_update("k", b"v3"))
    t("get2", lambda: uwsgi.cache_get("k"))
    t("miss", lambda: uwsgi.cache_get("nokey"))
    t("setstr", lambda: uwsgi.cache_set("s", "strvalue"))
    t("getstr", lambda: uwsgi.cache_get("s"))
    t("exists", lambda: uwsgi.cache_exists("k"))
    t("existsno", lambda: uwsgi.cache_exists("zz"))
    t("del", lambda: uwsgi.cache_del("k"))
    t("delno", lambda: uwsgi.cache_del("k"))
    t("inc", lambda: uwsgi.cache_inc("n"))
    t("inc5", lambda: uwsgi.cache_inc("n", 5))
    t("num", lambda: uwsgi.cache_num("n"))
    t("raw", lambda: uwsgi.cache_get("n"))
    t("dec", lambda: uwsgi.cache_dec("n", 2))
    t("mul", lambda: uwsgi.cache_mul("n", 3))
    t("div", lambda: uwsgi.cache_div("n"))
    t("num2", lambda: uwsgi.cache_num("n"))
    t("mulmiss", lambda: uwsgi.cache_mul("m"))
    t("m", lambda: uwsgi.cache_num("m"))
    t("decmiss", lambda: uwsgi.cache_dec("d"))
    t("d", lambda: uwsgi.cache_num("d"))
    t("nummiss", lambda: uwsgi.cache_num("nope"))
    t("keys", lambda: sorted(uwsgi.cache_keys()))
    t("named", lambda: uwsgi.cache_set("a", b"1", 0, "other"))
    t("namedget", lambda: uwsgi.cache_get("a", "other"))
    t("firstget", lambda: uwsgi.cache_get("a"))
    t("nocache", lambda: uwsgi.cache_get("a", "nonexist"))
    t("big", lambda: uwsgi.cache_set("big", b"x" * 100000))
    t("longkey", lambda: uwsgi.cache_set("k" * 3000, b"x"))
    t("emptykey", lambda: uwsgi.cache_set("", b"1"))
    t("emptyval", lambda: uwsgi.cache_set("ev", b""))
    t("intval", lambda: uwsgi.cache_set("iv", 5))
    t("clear", lambda: uwsgi.cache_clear())
    t("keys2", lambda: uwsgi.cache_keys())
    t("fill", lambda: [uwsgi.cache_set(f"f{i}", b"x") for i in range(12)])
    t("clear2", lambda: uwsgi.cache_clear())
    return out


def mixed(wid, n, seed):
    """n operations: shared counters incremented, private keys set/read/deleted."""
    rng = random.Random(seed)
    mine = 0
    for i in range(n):
        r = rng.random()
        if r < 0.5:
            uwsgi.cache_inc("total")
            mine += 1
        elif r < 0.75:
            key = f"w{wid}-{seed}-{i % 7}"
            uwsgi.cache_update(key, str(i).encode())
            assert uwsgi.cache_get(key) == str(i).encode(), key
        else:
            uwsgi.cache_del(f"w{wid}-{seed}-{(i + 3) % 7}")
    return mine


def application(env, start_response):
    path = env["PATH_INFO"]
    qs = parse_qs(env.get("QUERY_STRING", ""))
    if path == "/sequence":
        body = json.dumps(sequence())
    elif path == "/mixed":
        body = json.dumps(mixed(uwsgi.worker_id(), int(qs["n"][0]), int(qs["seed"][0])))
    elif path == "/get":
        body = json.dumps(repr(uwsgi.cache_get(qs["key"][0])))
    elif path == "/set":
        body = json.dumps(uwsgi.cache_update(qs["key"][0], qs["value"][0].encode()))
    elif path == "/num":
        body = json.dumps(uwsgi.cache_num(qs["key"][0]))
    elif path == "/pid":
        body = json.dumps(os.getpid())
    else:
        body = "hello"
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode()]
