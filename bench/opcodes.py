"""Python opcodes per request of one worker's whole path, by function.

    cd bench && python opcodes.py uwsgi 1000 [--logged]   # or asgi-uwsgi, asgi-http, ...
    cd bench && python opcodes.py uvicorn-keepalive 1000  # the peer, counted the same way

Runs ``callgrind_path.py``'s case (a worker's loop on a real socket, a client in
another process; one connection per request, or all on one kept-alive
connection for the ``*-keepalive`` cases) with ``sys.settrace`` counting the
opcodes each function executes once the app has been called for the first time
(what start-up runs is not counted, nor is half of the first request); prints
the total per request and the 30 largest (``TOP=N`` in the environment: N).
The ``uvicorn-*`` cases count uvicorn (httptools, uvloop) serving the same app
in the same way. Slow (every opcode is traced); the counts do not depend on the
machine's load.
"""

from __future__ import annotations

import collections
import os
import sys

import callgrind_path

from procmaster.worker import asgi, loop

counts: collections.Counter = collections.Counter()
APPS = {callgrind_path.hello.__code__}  # the WSGI app; the ASGI one is added in main
started = [False]


def tracer(frame, event, arg):
    frame.f_trace_opcodes = True
    if event == "opcode":
        code = frame.f_code
        counts[(os.path.basename(code.co_filename), code.co_firstlineno, code.co_name)] += 1
    elif event == "call" and not started[0] and frame.f_code in APPS:
        started[0] = True  # the first request reached the app: count from here
        counts.clear()
    return tracer


def main() -> None:
    case, n = sys.argv[1], int(sys.argv[2])
    logged = sys.argv[3:] == ["--logged"]  # uWSGI's default request line each request
    from apps.hello_asgi import app

    APPS.add(app.__code__)

    def report(code: int = 0) -> None:  # a worker exits with os._exit (SIGINT)
        sys.settrace(None)
        print(f"{case}: {sum(counts.values()) / (n - 1):,.0f} opcodes per request")
        for (path, line, name), count in counts.most_common(int(os.environ.get("TOP", "30"))):
            print(f"{count / (n - 1):8.1f}  {path}:{line} {name}")
        real_exit(0)

    real_exit = os._exit  # loop.os is this os module: the patch below replaces it for all
    if case.startswith("uvicorn"):
        import uvicorn

        run = uvicorn.Server.run

        def traced_run(self, sockets=None) -> None:
            sys.settrace(tracer)
            run(self, sockets=sockets)

        uvicorn.Server.run = traced_run
        callgrind_path.serve(case, n, logged)
        report()
        return
    worker = asgi.AsgiWorker if case.startswith("asgi") else loop.Worker
    run_forever = worker.run_forever

    def traced(self) -> None:
        sys.settrace(tracer)
        run_forever(self)

    worker.run_forever = traced
    loop.os._exit = report
    callgrind_path.serve(case, n, logged)


if __name__ == "__main__":
    main()
