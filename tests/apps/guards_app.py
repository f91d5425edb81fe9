"""The app of the worker-guard tests (tests/test_e2e_guards.py).

Routes (PATH_INFO):
  /            "ok"
  /pid         the worker pid
  /sleep?s=N   sleeps N seconds in ``stuck_handler`` (harakiri-verbose logs that frame)
  /alloc?mb=N  keeps N MiB allocated for the life of the worker (a leak), then answers
               (after ``hold=S`` seconds more, when given: a request still busy)
  /threads     JSON: wsgi.multithread and the thread's name
"""

import json
import os
import threading
import time
from urllib.parse import parse_qs

LEAK = []


def _text(start_response, body, status="200 OK"):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def stuck_handler(seconds):
    time.sleep(seconds)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/pid":
        return _text(start_response, str(os.getpid()).encode())
    if path == "/sleep":
        stuck_handler(float(q.get("s", "1")))
        return _text(start_response, f"slept {os.getpid()}".encode())
    if path == "/alloc":
        block = bytearray(int(q.get("mb", "1")) * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # touch every page: resident
        LEAK.append(block)
        time.sleep(float(q.get("hold", "0")))
        return _text(start_response, str(os.getpid()).encode())
    if path == "/threads":
        info = {
            "multithread": environ["wsgi.multithread"],
            "thread": threading.current_thread().name,
        }
        return _text(start_response, json.dumps(info).encode())
    return _text(start_response, b"ok")
