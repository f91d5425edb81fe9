"""End-to-end benchmark: the same hello-world app on procmaster, uWSGI and gunicorn.

    python bench/bench.py                          # 10 s per run, 3 rounds
    python bench/bench.py --duration 8 --rounds 3 --markdown
    python bench/bench.py --only keep-alive        # rows tagged keep-alive
    python bench/bench.py --only nginx             # nginx -> procmaster / uWSGI (uwsgi, FastCGI)
    python bench/bench.py --only reload --duration 8   # failures and max latency during reloads
    python bench/bench.py --baseline-tree ../before    # + every procmaster row from an older tree

What it measures
----------------
Every server runs ``bench/apps/hello.py`` (``Hello, World!`` with a
``Content-Length``) with two worker processes on 127.0.0.1, and ``wrk -t2 -c64``
loads it, once with keep-alive and once with ``Connection: close``. The servers
are interleaved round by round (A B C A B C ...); the table gives, per server
and scenario, the median requests/s over the rounds (with the lowest and
highest), wrk's errors, how long one extra new connection waits for its answer,
lost processes and RSS; then the ratios procmaster/uWSGI and
procmaster/gunicorn. Suites: ``http`` (the servers speak HTTP to wrk), ``nginx``
(nginx in front of procmaster and uWSGI on a unix socket, uwsgi protocol and
FastCGI), ``reload`` (three reloads while wrk runs: failed requests, timeouts,
max latency). See bench/README.md for how to read every column.

procmaster is run from a source tree (``python -m procmaster`` with the tree on
``PYTHONPATH``): this checkout, or ``--tree DIR``. ``--baseline-tree DIR`` adds,
before each procmaster row, the same row run from DIR ("procmaster (baseline)"),
so an older commit and this one are measured in the same run, interleaved, next
to uWSGI; the ratios table then has a "procmaster / procmaster (baseline)" column.

How it is built
---------------
This file is the command line only. ``servers.py`` holds the servers (commands,
files such as nginx.conf, stop and reload signals), ``scenarios.py`` the wrk
scenarios and their hooks (idle connections, reloads), ``runner.py`` the rounds
(start, readiness, warm-up, runs, stop by PID), ``wrk.py`` driving and parsing
wrk, ``report.py`` the tables, ``processes.py`` ports, processes and memory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import sys

from app_rows import EVERY_SERVER
from processes import ROOT, progress, tree_revision, tree_source
from report import report
from runner import run
from scenarios import SCENARIOS, Scenario
from servers import APPS, INSTALL_HINTS, Server, with_baseline, with_tree


def select(
    only: list[str], servers: tuple[Server, ...], scenarios: tuple[Scenario, ...]
) -> tuple[list[Server], list[Scenario]]:
    """Keep the servers and scenarios that --only names (by name or group)."""
    if not only:
        return [s for s in servers if not s.optional], list(scenarios)
    server_tags = {t for s in servers for t in s.tags}
    scen_tags = {s.name for s in scenarios}
    unknown = [t for t in only if t not in server_tags | scen_tags]
    if unknown:
        known = ", ".join(sorted(server_tags | scen_tags))
        raise SystemExit(f"--only: unknown {', '.join(unknown)} (known: {known})")
    want_srv = [t for t in only if t in server_tags]
    want_scen = [t for t in only if t in scen_tags]
    srv = [s for s in servers if _named(s, want_srv) or not (want_srv or s.optional)]
    scn = [c for c in scenarios if not want_scen or c.name in want_scen]
    if not want_srv:  # scenarios alone: the servers they run against
        srv = [s for s in srv if any(s.serves(c) for c in scn)]
    if not want_scen:  # servers alone: the scenarios that run against them
        scn = [c for c in scn if any(s.serves(c) for s in srv)]
    return srv, scn


def _named(server: Server, wanted: list[str]) -> bool:
    """--only names this server (an optional one by its name or group, not its suite)."""
    tags = {server.name, server.group} if server.optional else server.tags
    return bool(tags & set(wanted))


def check_tools(servers: list[Server]) -> None:
    """Exit with how to install what is missing."""
    needed = ["wrk", *(t for s in servers for t in s.requires)]
    missing = [t for t in dict.fromkeys(needed) if not shutil.which(t)]
    if missing:
        raise SystemExit(
            "missing: "
            + ", ".join(missing)
            + "\n"
            + "\n".join(INSTALL_HINTS.get(t, f"install {t}") for t in missing)
        )


def check_trees(servers: list[Server]) -> None:
    """Exit unless every procmaster tree is what ``python -m procmaster`` imports there."""
    for tree in dict.fromkeys(s.tree for s in servers if s.tree):
        if not os.path.isfile(os.path.join(tree, "procmaster", "__main__.py")):
            raise SystemExit(f"{tree}: no procmaster/__main__.py (not a procmaster source tree)")
        found = tree_source(tree, cwd=APPS)
        want = os.path.realpath(os.path.join(tree, "procmaster"))
        if os.path.realpath(found) != want:
            raise SystemExit(f"{tree}: python -m procmaster imports {found}, not {want}")
        progress(f"procmaster from {tree} ({tree_revision(tree)})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    p.add_argument("--rounds", type=int, default=3, help="rounds over all servers (3)")
    p.add_argument("--warmup", type=float, default=1, help="seconds of wrk after each start (1)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME[,NAME]",
        help="only these servers (name, group or suite, e.g. procmaster, http, nginx,"
        " nginx-fastcgi, reload) and/or scenarios (keep-alive, close, reload keep-alive,"
        " reload close); repeatable",
    )
    p.add_argument("--markdown", action="store_true", help="print Markdown for bench/RESULTS.md")
    p.add_argument(
        "--tree",
        default=ROOT,
        metavar="DIR",
        help="procmaster source tree of the procmaster rows (default: this checkout)",
    )
    p.add_argument(
        "--baseline-tree",
        metavar="DIR",
        help="another procmaster source tree (e.g. an older commit made with git worktree"
        " add or git archive): each procmaster row also runs from it, as"
        " '<row> (baseline)', in the same rounds",
    )
    args = p.parse_args(argv)
    args.only = [t for item in args.only for t in item.split(",") if t]
    if args.rounds < 1 or args.duration <= 0:
        p.error("--rounds and --duration must be positive")
    args.tree = os.path.abspath(args.tree)
    if args.baseline_tree:
        args.baseline_tree = os.path.abspath(args.baseline_tree)
        if args.baseline_tree == args.tree:
            p.error("--baseline-tree is the same tree as --tree")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; 1 if any run failed."""
    args = parse_args(argv)
    servers, scenarios = select(args.only, EVERY_SERVER, SCENARIOS)
    servers = with_tree(servers, args.tree)
    if args.baseline_tree:
        servers = with_baseline(servers, args.baseline_tree)
    check_tools(servers)
    check_trees(servers)
    # SIGTERM unwinds like Ctrl-C, so the servers are stopped either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # the idle connections need descriptors here, and the servers inherit the limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    try:
        rows = run(args, servers, scenarios)
    except KeyboardInterrupt:
        progress("interrupted; servers stopped")
        return 130
    print(report(rows, args, args.markdown))
    return 1 if any(r.failed for row in rows for r in row.runs) else 0


if __name__ == "__main__":
    sys.exit(main())
