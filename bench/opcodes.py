"""Python opcodes per request of one worker's whole path, by function.

    cd bench && python opcodes.py uwsgi 1000 [--logged]   # or asgi-uwsgi, asgi-http, ...

Runs ``callgrind_path.py``'s case (a worker's loop on a real socket, a client in
another process, one connection per request) with ``sys.settrace`` counting the
opcodes each function executes from the loop's start; prints the total and the
30 largest per request. Slow (every opcode is traced); the counts do not depend
on the machine's load.
"""

from __future__ import annotations

import collections
import os
import sys

import callgrind_path

from procmaster.worker import asgi, loop

counts: collections.Counter = collections.Counter()


def tracer(frame, event, arg):
    frame.f_trace_opcodes = True
    if event == "opcode":
        code = frame.f_code
        counts[(os.path.basename(code.co_filename), code.co_firstlineno, code.co_name)] += 1
    return tracer


def main() -> None:
    case, n = sys.argv[1], int(sys.argv[2])
    logged = sys.argv[3:] == ["--logged"]  # uWSGI's default request line each request
    worker = asgi.AsgiWorker if case.startswith("asgi") else loop.Worker
    run_forever = worker.run_forever

    def traced(self) -> None:
        sys.settrace(tracer)
        run_forever(self)

    real_exit = os._exit  # loop.os is this os module: the patch below replaces it for all

    def report(code: int = 0) -> None:  # the worker exits with os._exit (SIGINT)
        sys.settrace(None)
        print(f"{case}: {sum(counts.values()) / n:,.0f} opcodes per request")
        for (path, line, name), count in counts.most_common(30):
            print(f"{count / n:8.1f}  {path}:{line} {name}")
        real_exit(0)

    worker.run_forever = traced
    loop.os._exit = report
    callgrind_path.serve(case, n, logged)


if __name__ == "__main__":
    main()
