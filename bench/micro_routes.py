"""What internal routing and add-header cost per request: bench/micro.py's HTTP
loop (the worker's real code over a socketpair) with no route, five rules that
do not match, and one add-header.

    python bench/micro_routes.py                  # each case, best of 5, req/s
    python bench/micro_routes.py CASE N [TREE]    # one case, N requests, once (for
                                                  # callgrind; TREE: another checkout)

Instructions per request, as RESULTS.md measures them (the difference between two
request counts cancels the start-up):

    valgrind --tool=callgrind --callgrind-out-file=cg.2000 \\
        python bench/micro_routes.py none 2000
    valgrind --tool=callgrind --callgrind-out-file=cg.6000 \\
        python bench/micro_routes.py none 6000
    # (summary of cg.6000 - summary of cg.2000) / 4000

(Run valgrind on the interpreter itself, not on a pyenv shim, and not while
the sources change: a rewritten .pyc is counted too.)
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TREE = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TREE, "bench"))
sys.path.insert(0, TREE)

import micro  # noqa: E402

from procmaster.config import load  # noqa: E402

CASES = {
    "none": [],
    "rules5": [
        "--route", "^/static/ donotlog:",
        "--route", "^/old/(.*) redirect:/new/$1",
        "--route-host", "^www\\. return:403",
        "--route-if", "equal:${REQUEST_METHOD};DELETE return:405",
        "--route-user-agent", "BadBot break:403",
    ],
    "addheader": ["--add-header", "X-Frame-Options: DENY"],
}  # fmt: skip


def use(case: str) -> None:
    micro.make_cfg = lambda: load(["--processes", "1", "--disable-logging", *CASES[case]])


def main() -> None:
    if len(sys.argv) > 2:
        use(sys.argv[1])
        micro.run_protocol("http", micro.REQUESTS["http"], int(sys.argv[2]))
        return
    for case in CASES:
        use(case)
        best = max(micro.run_protocol("http", micro.REQUESTS["http"], 30_000) for _ in range(5))
        print(f"{case:10s} {best:10,.0f} req/s")


if __name__ == "__main__":
    main()
