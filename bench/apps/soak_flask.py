"""The soak's Flask app (``bench/faults.py soak``): small pages, JSON, a
streamed response, multipart uploads (large ones are spooled to disk).

Debug switch (bench only, never in the product): with ``SOAK_TRACE=DIR`` in the
environment each worker, from its ``SOAK_TRACE_WARM``-th request (default 2000)
and then every ``SOAK_TRACE_EVERY`` requests (default 20000), appends one line
to ``DIR/<pid>.stats``: requests, RSS, USS, open fds, gc-tracked objects,
Python heap blocks in use (``sys.getallocatedblocks``), bytes traced; and the
count of objects per type to ``DIR/<pid>-<n>.types`` (with
``SOAK_TRACE_COLLECT=1`` after a full ``gc.collect()``: only what is alive). With
``SOAK_TRACE_MALLOC=1`` it also starts ``tracemalloc`` at the first sample and
dumps a snapshot each time to ``DIR/<pid>-<n>.snap`` (slow: a worker stalls for
seconds while it dumps, so a traced run's timeouts say nothing about the
server). ``bench/soak_trace.py DIR`` reads them.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
import tracemalloc
from collections import Counter

from flask import Flask, Response, jsonify, request

app = Flask(__name__)
application = app


@app.get("/")
def index():
    return "Hello, World!"


@app.get("/json")
def as_json():
    return jsonify(items=list(range(50)), path=request.path, args=dict(request.args))


@app.get("/stream")
def stream():
    def chunks():
        for i in range(64):
            yield b"%04d" % i + b"." * 1020

    return Response(chunks(), mimetype="application/octet-stream")


@app.post("/upload")
def upload():
    f = request.files["file"]
    digest = hashlib.sha256()
    size = 0
    while chunk := f.stream.read(65536):
        digest.update(chunk)
        size += len(chunk)
    return jsonify(size=size, sha256=digest.hexdigest(), name=f.filename)


TRACE = os.environ.get("SOAK_TRACE")
if TRACE:
    WARM = int(os.environ.get("SOAK_TRACE_WARM", "2000"))
    EVERY = int(os.environ.get("SOAK_TRACE_EVERY", "20000"))
    MALLOC = os.environ.get("SOAK_TRACE_MALLOC") == "1"
    COLLECT = os.environ.get("SOAK_TRACE_COLLECT") == "1"
    count = {"pid": 0, "n": 0}

    def memory() -> tuple[int, int]:
        """RSS and USS (private clean + dirty) of this process, bytes, from smaps_rollup."""
        fields = {}
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "kB":
                    fields[parts[0].rstrip(":")] = int(parts[1]) * 1024
        return fields["Rss"], fields["Private_Clean"] + fields["Private_Dirty"]

    @app.after_request
    def trace(response):
        pid = os.getpid()
        if count["pid"] != pid:  # a fresh worker (the app may be imported before fork)
            count.update(pid=pid, n=0)
        count["n"] += 1
        n = count["n"]
        if n == WARM and MALLOC:
            tracemalloc.start(12)
        if n >= WARM and (n - WARM) % EVERY == 0:
            if MALLOC:
                tracemalloc.take_snapshot().dump(os.path.join(TRACE, f"{pid}-{n}.snap"))
            if COLLECT:  # count what is alive, not cyclic garbage a full collection frees
                gc.collect()
            objects = gc.get_objects()
            types = Counter(type(o).__qualname__ for o in objects)
            with open(os.path.join(TRACE, f"{pid}-{n}.types"), "w") as f:
                json.dump(types, f)
            del objects
            rss, uss = memory()
            fds = len(os.listdir("/proc/self/fd"))
            traced = tracemalloc.get_traced_memory()[0]
            with open(os.path.join(TRACE, f"{pid}.stats"), "a") as f:
                f.write(
                    f"{n} {rss} {uss} {fds} {sum(types.values())} "
                    f"{sys.getallocatedblocks()} {traced}\n"
                )
        return response
