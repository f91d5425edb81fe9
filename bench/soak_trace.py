"""Read what ``bench/apps/soak_flask.py`` wrote under ``SOAK_TRACE=DIR``: per
worker, how RSS, USS, fds, gc objects, Python heap blocks and traced bytes moved
between the first and the last sample, the object types whose count grew, and
(with ``SOAK_TRACE_MALLOC=1``) the tracemalloc lines that grew most.

Usage::

    python bench/soak_trace.py DIR [--top 15]

Must not know: procmaster (it reads files the bench app wrote).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import tracemalloc

MIB = 2**20


def _n(path: str) -> int:
    return int(path.rsplit("-", 1)[1].split(".")[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for stats in sorted(glob.glob(os.path.join(args.dir, "*.stats"))):
        pid = os.path.basename(stats).split(".")[0]
        with open(stats) as f:
            rows = [list(map(int, line.split())) for line in f if line.strip()]
        if len(rows) < 2:
            continue
        a, b = rows[1 if len(rows) > 2 else 0], rows[-1]  # the first sample is the warm-up mark
        print(
            f"worker {pid}: requests {a[0]:,} -> {b[0]:,}; RSS {a[1] / MIB:.1f} -> "
            f"{b[1] / MIB:.1f} MiB; USS {a[2] / MIB:.1f} -> {b[2] / MIB:.1f} MiB; fds "
            f"{a[3]} -> {b[3]}; gc objects {a[4]:,} -> {b[4]:,}; heap blocks "
            f"{a[5]:,} -> {b[5]:,}; traced {a[6] / 1024:.0f} -> {b[6] / 1024:.0f} KiB"
        )
        types = sorted(glob.glob(os.path.join(args.dir, f"{pid}-*.types")), key=_n)
        if len(types) >= 2:
            with open(types[1 if len(types) > 2 else 0]) as f:
                first = json.load(f)
            with open(types[-1]) as f:
                last = json.load(f)
            grew = sorted(((last[k] - first.get(k, 0), k) for k in last), reverse=True)
            shown = [f"{k} {d:+d}" for d, k in grew[: args.top] if d > 0]
            print("  object types that grew: " + (", ".join(shown) or "none"))
        snaps = sorted(glob.glob(os.path.join(args.dir, f"{pid}-*.snap")), key=_n)
        if len(snaps) < 2:
            continue
        old = tracemalloc.Snapshot.load(snaps[1 if len(snaps) > 2 else 0])
        new = tracemalloc.Snapshot.load(snaps[-1])
        flt = [tracemalloc.Filter(False, tracemalloc.__file__)]
        diff = new.filter_traces(flt).compare_to(old.filter_traces(flt), "traceback")
        for stat in diff[: args.top]:
            if stat.size_diff <= 0:
                break
            frames = [f for f in stat.traceback if "importlib" not in f.filename][-4:]
            where = " <- ".join(
                f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in reversed(frames)
            )
            print(f"  {stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+6d} blocks  {where}")


if __name__ == "__main__":
    main()
