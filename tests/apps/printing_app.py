"""An app that writes to its own stdout/stderr the ways apps do (print, os.write
on fd 1/2 as a C extension would, a partial line, a flood), for log-master."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from urllib.parse import parse_qs

# at import (in the master, the app being preloaded): more than a pipe holds
print("imported-app", flush=True)
os.write(1, b"".join(b"import-many-%05d-%s\n" % (i, b"z" * 100) for i in range(3000)))


def application(environ, start_response):
    path = environ["PATH_INFO"]
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    tag = q.get("tag", "t")
    pid = os.getpid()
    if path == "/print":
        print(f"print-{tag}-{pid}", flush=True)
        print(f"stderr-{tag}-{pid}", file=sys.stderr, flush=True)
    elif path == "/bulk":
        # big single writes of many lines on fd 1 (a C extension's fwrite): with a
        # shared pipe, two workers doing this at once would cut each other's lines
        size, n = int(q.get("size", "300")), int(q.get("n", "200"))
        line = lambda i: f"bulk-{tag}-{pid}-{i:05d}-{'x' * size}-end\n".encode()  # noqa: E731
        for start in range(0, n, 50):
            os.write(1, b"".join(line(i) for i in range(start, min(start + 50, n))))
    elif path == "/late":
        print(f"late-before-{tag}-{pid}", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(q["flag"]) and time.monotonic() < deadline:
            time.sleep(0.05)  # the test creates the flag when it is time
        print(f"late-after-{tag}-{pid}", flush=True)
    elif path == "/crash":
        os.write(2, f"dying-words-{tag}-{pid}\npartial-tail-{tag}".encode())
        os.kill(pid, signal.SIGKILL)
    elif path == "/flood":
        # a thread that writes without end: the worker blocks in write(), the
        # master must neither block nor buffer it all
        chunk = (f"flood-{pid}-" + "y" * 200 + "\n").encode() * 64

        def flood():
            while True:
                os.write(1, chunk)

        threading.Thread(target=flood, daemon=True).start()
    body = f"{pid}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
