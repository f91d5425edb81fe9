"""The cache benchmark's app: GET /?op=set|get|mixed&n=N&keys=K runs N cache operations
in this worker (uwsgi.cache_update / cache_get on the cache named "bench") and answers
{"n", "seconds", "errors"} as JSON. The same file runs under uWSGI and procmaster."""

import json
import time
from urllib.parse import parse_qs

import uwsgi

VALUE = b"v" * 64
CACHE = "bench"


def run(op, n, keys):
    names = [f"key{i}" for i in range(keys)]
    errors = 0
    update, get = uwsgi.cache_update, uwsgi.cache_get
    start = time.perf_counter()
    if op == "set":
        for i in range(n):
            if not update(names[i % keys], VALUE, 0, CACHE):
                errors += 1
    elif op == "get":
        for i in range(n):
            if get(names[i % keys], CACHE) != VALUE:
                errors += 1
    else:  # mixed: nine gets, one set
        for i in range(n):
            if i % 10 == 0:
                if not update(names[i % keys], VALUE, 0, CACHE):
                    errors += 1
            elif get(names[i % keys], CACHE) != VALUE:
                errors += 1
    return time.perf_counter() - start, errors


def application(env, start_response):
    qs = parse_qs(env.get("QUERY_STRING", ""))
    if "op" not in qs:
        body = b"ready"
    else:
        n, keys = int(qs["n"][0]), int(qs.get("keys", ["1000"])[0])
        seconds, errors = run(qs["op"][0], n, keys)
        body = json.dumps({"n": n, "seconds": seconds, "errors": errors}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
