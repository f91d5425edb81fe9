"""The results as tables: plain text for the terminal, Markdown for bench/RESULTS.md.

Theory of operation
-------------------
``report(rows, args, markdown)`` lays out what ``runner.run`` measured: the
results table (median requests/s with lowest and highest, errors, new-connection
probes, lost processes, RSS), the ratios of procmaster's median to each other
family's in the same group and scenario (with ``--baseline-tree`` one of those
families is ``procmaster (baseline)``: the after/before ratio), the reload table,
the idle-connections table and the notes. The Markdown form starts with what
the figures depend on: machine, versions, the source trees and their commits,
the exact commands and nginx.conf.

Must not know
-------------
How servers are started, how wrk is run or parsed; it only reads ``Row``s.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys

from processes import ROOT, tree_revision
from runner import Row, scenario_argv
from scenarios import IDLE_CONNECTIONS, RELOAD_SAMPLE, RELOADS, Scenario, reload_spacing
from servers import APPS, BASELINE, NGINX_CONF, NGINX_PASS, Server, fill
from wrk import PROBE_INTERVAL, PROBE_TIMEOUT


def fmt_rps(x: float | None) -> str:
    """Requests/s with thousands separators, or a dash."""
    return "-" if x is None else f"{x:,.0f}"


def fmt_probes(probes: list[float | None]) -> str:
    """Median milliseconds of the answered probes, and how many were not answered."""
    answered = [p for p in probes if p is not None]
    lost = len(probes) - len(answered)
    if not probes:
        return "-"
    text = f"{statistics.median(answered) * 1000:.1f}" if answered else "none answered"
    return text + (f" ({lost}/{len(probes)} > {PROBE_TIMEOUT:g} s)" if lost and answered else "")


def fmt_rounds(rounds: list[int], total: int) -> str:
    """'every round' or 'round 1, 3'."""
    if sorted(set(rounds)) == list(range(1, total + 1)):
        return "every round"
    return "round " + ", ".join(map(str, sorted(set(rounds))))


def table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the results table."""
    header = [
        "scenario",
        "server",
        "req/s (median)",
        "min – max",
        "socket errors",
        "timeouts",
        "non-2xx",
        "new conn (ms)",
        "lost procs",
        "RSS MiB",
        "CPU µs/req",
    ]
    cells = []
    for row in rows:
        rps = row.rps()
        probes = [p for r in row.runs for p in r.probes]
        failed = sum(1 for r in row.runs if r.failed)
        cells.append(
            [
                row.scenario.name,
                row.server.name,
                ("void (errors)" if row.void() else fmt_rps(row.median()))
                + (f" ({failed} failed)" if failed else ""),
                f"{fmt_rps(min(rps))} – {fmt_rps(max(rps))}" if rps else "-",
                str(sum(r.socket_errors for r in row.runs)),
                str(sum(r.timeout for r in row.runs)),
                str(sum(r.non2xx for r in row.runs)),
                fmt_probes(probes),
                str(row.lost_workers),
                f"{statistics.median(row.rss) / 2**20:.1f}" if row.rss else "",
                f"{cpu:.1f}" if (cpu := row.cpu_per_request()) else "-",
            ]
        )
    return header, cells


def ratios(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """procmaster's median divided by each other family's, per group and scenario."""
    others = list(dict.fromkeys(r.server.family for r in rows if r.server.family != "procmaster"))
    header = ["scenario"] + [f"procmaster / {f}" for f in others]
    cells = []
    keys = []
    for r in rows:
        if (r.server.group, r.scenario.name) not in keys:
            keys.append((r.server.group, r.scenario.name))
    multi_group = len({g for g, _ in keys}) > 1
    for group, scen in keys:
        by_family = {
            r.server.family: r for r in rows if r.server.group == group and r.scenario.name == scen
        }
        ours = by_family.get("procmaster")
        line = [f"{group} {scen}" if multi_group else scen]
        for fam in others:
            theirs = by_family.get(fam)
            if (ours and ours.void()) or (theirs and theirs.void()):
                line.append("void (errors)")
                continue
            a = ours.median() if ours else None
            b = theirs.median() if theirs else None
            mark = " (see notes)" if (ours and ours.notes) or (theirs and theirs.notes) else ""
            line.append(f"{a / b:.2f}{mark}" if a and b else "-")
        cells.append(line)
    return header, cells


def threads_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Per scenario: each family's median with the most threads per worker divided by
    its median with one (groups ``threads-N``, see app_rows.py)."""
    counts = sorted(
        {int(r.server.group[8:]) for r in rows if r.server.group.startswith("threads-")}
    )
    if len(counts) < 2 or counts[0] != 1:
        return [], []
    most = counts[-1]
    families = list(dict.fromkeys(r.server.family for r in rows if r.server.suite == "threads"))
    header = ["scenario"] + [f"{f} threads={most} / threads=1" for f in families]
    cells = []
    for scen in dict.fromkeys(r.scenario.name for r in rows if r.server.suite == "threads"):
        line = [scen]
        for fam in families:
            pair = {
                r.server.group: r
                for r in rows
                if r.server.family == fam and r.scenario.name == scen
                and r.server.group in ("threads-1", f"threads-{most}")
            }  # fmt: skip
            one, many = pair.get("threads-1"), pair.get(f"threads-{most}")
            if not one or not many:
                line.append("-")
            elif one.void() or many.void():
                line.append("void (errors)")
            else:
                a, b = many.median(), one.median()
                line.append(f"{a / b:.2f}" if a and b else "-")
        cells.append(line)
    return header, cells


def idle_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Per server: req/s with the idle connections open / without, and their cost."""
    header = [
        "server",
        f"req/s with {IDLE_CONNECTIONS} idle / without",
        "CPU per request with idle / without",
        "idle connections answered",
        "RSS per idle connection",
    ]
    cells = []
    by = {(r.server.name, r.scenario.name): r for r in rows}
    for (name, _scen), row in by.items():
        if not row.idle:
            continue
        base = by.get((name, "keep-alive"))
        a = row.median()
        b = base.median() if base else None
        ca = row.cpu_per_request()
        cb = base.cpu_per_request() if base else None
        answered = statistics.median(s.answered for s in row.idle)
        per = [p for s in row.idle if (p := s.per_connection()) is not None]
        cells.append(
            [
                name,
                f"{a / b:.2f}" if a and b else "-",
                f"{ca:.0f} / {cb:.0f} µs" if ca and cb else "-",
                f"{answered:.0f} / {row.idle[0].opened}",
                f"{statistics.median(per) / 1024:.1f} KiB" if per else "-",
            ]
        )
    return header, cells


def reload_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the reload table: what the reloads cost the clients."""
    header = [
        "scenario",
        "server",
        "reloads",
        "procs started",
        "failed requests",
        "per round",
        "socket errors",
        "non-2xx",
        "timeouts",
        "max latency ms (median)",
        "max latency ms (worst)",
        "req/s (median)",
        "new conn (ms)",
    ]
    cells = []
    for row in rows:
        ok = [r for r in row.runs if not r.failed]
        per_round = [r.socket_errors + r.non2xx for r in ok]
        lat = [r.max_latency * 1000 for r in ok]
        failed = len(row.runs) - len(ok)
        cells.append(
            [
                row.scenario.name,
                row.server.name,
                str(sum(row.reloads)),
                str(row.started),
                str(sum(per_round)) + (f" ({failed} runs failed)" if failed else ""),
                " / ".join(map(str, per_round)) or "-",
                str(sum(r.socket_errors for r in ok)),
                str(sum(r.non2xx for r in ok)),
                str(sum(r.timeout for r in ok)),
                f"{statistics.median(lat):,.0f}" if lat else "-",
                f"{max(lat):,.0f}" if lat else "-",
                fmt_rps(row.median()),
                fmt_probes([p for r in row.runs for p in r.probes]),
            ]
        )
    return header, cells


def render_text(header: list[str], cells: list[list[str]]) -> str:
    """A plain aligned table."""
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        lines.append("  ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)))
    return "\n".join(lines)


def render_markdown(header: list[str], cells: list[list[str]], labels: int = 2) -> str:
    """A Markdown table, the first ``labels`` columns left-aligned, numbers right-aligned."""
    align = ["---" if i < labels else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    return "\n".join(lines)


def version_of(argv: list[str]) -> str:
    """First line a tool prints about its version, or 'missing'."""
    if not shutil.which(argv[0]):
        return "missing"
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    """What the figures depend on: CPUs, kernel, Python, server and wrk versions."""
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "uwsgi": version_of(["uwsgi", "--version"]),
        "gunicorn": re.sub(
            r"^gunicorn \(version (.*)\)$", r"\1", version_of(["gunicorn", "--version"])
        ),
        "wrk": re.sub(r"^wrk ", "", version_of(["wrk", "--version"]).split(" Copyright")[0]),
        "nginx": version_of(["nginx", "-v"]).replace("nginx version: ", ""),
    }


def command_line() -> str:
    """How this script was invoked, as a shell command."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]))
    return shlex.join(["python", script, *sys.argv[1:]])


def tree_label(server: Server) -> str:
    """The name a server's source tree goes by in the report: TREE or BASELINE."""
    return "BASELINE" if server.family == BASELINE else "TREE"


def shown(server: Server) -> str:
    """A server's commands as a shell line, with TMP, PORT, TREE and python."""
    prefix = f"PYTHONPATH={tree_label(server)} " if server.tree else ""
    return " && ".join(
        prefix * (i == 0) + shlex.join(a).replace(sys.executable, "python")
        for i, a in enumerate(server.argvs("PORT"))
    )


def trees_line(servers: list[Server]) -> str:
    """Where procmaster came from: each tree and its commit."""
    trees = {tree_label(s): s.tree for s in servers if s.tree}
    parts = []
    for label, tree in sorted(trees.items(), reverse=True):  # TREE before BASELINE
        path = os.path.relpath(tree) if tree == ROOT else tree
        parts.append(f"{label} = `{path}` ({tree_revision(tree)})")
    return "- procmaster source: " + "; ".join(parts) if parts else ""


def report(rows: list[Row], args: argparse.Namespace, markdown: bool) -> str:
    """The results tables, the ratios and the notes, as text or Markdown."""
    load_rows = [r for r in rows if r.server.suite != "reload"]
    reload_rows = [r for r in rows if r.server.suite == "reload"]
    tables: list[tuple[list[str], list[list[str]], int]] = []  # header, cells, label columns
    if load_rows:
        tables.append((*table(load_rows), 2))
        tables.append((*ratios(load_rows), 1))
        th, tc = threads_table(load_rows)
        if tc:
            tables.append((th, tc, 1))
    if reload_rows:
        tables.append((*reload_table(reload_rows), 2))
    ih, ic = idle_table(rows)
    notes = [
        f"{r.server.name} {r.scenario.name}: {msg} ({fmt_rounds(rounds, args.rounds)})"
        for r in rows
        for msg, rounds in r.notes.items()
    ]
    load = args.load_seen
    load_line = (
        f"load average (1 min) at each start: {min(load):.2f} – {max(load):.2f},"
        f" median {statistics.median(load):.2f}"
        if load
        else ""
    )
    servers = list({r.server.name: r.server for r in rows}.values())
    if not markdown:
        out = []
        for h, c, _ in tables:
            if len(h) > 1:
                out += [render_text(h, c), ""]
        out.append(load_line)
        if any(s.tree for s in servers):
            out.append(trees_line(servers)[2:])
        if ic:
            out += ["", render_text(ih, ic)]
        if notes:
            out += ["", "notes:", *("  " + n for n in notes)]
        return "\n".join(out)
    m = machine()
    scens = {r.scenario.name: r.scenario for r in rows}
    confs = {text for s in servers for name, text in s.files if name == "nginx.conf"}
    out = [
        f"## {datetime.date.today().isoformat()}",
        "",
        "```",
        command_line(),
        "```",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, Python {m['python']};"
        f" {load_line}",
        f"- uWSGI {m['uwsgi']}, gunicorn {m['gunicorn']}, wrk {m['wrk']}"
        + (f", {m['nginx']}" if confs else ""),
        *([trees_line(servers)] if any(s.tree for s in servers) else []),
        f"- {args.rounds} rounds, servers interleaved; each run"
        f" `{shlex.join(scenario_argv(args, args.duration, Scenario('x'), 'http://127.0.0.1:PORT'))}`"
        f" plus the scenario's arguments, after a {args.warmup:g} s warm-up per start",
        "- scenarios: "
        + "; ".join(
            f"{s.name}: {shlex.join(s.wrk_args) if s.wrk_args else 'no extra arguments'}"
            + (
                f" ({RELOADS} reloads {reload_spacing(args.duration):g} s apart)"
                if "reload" in s.suites
                else ""
            )
            for s in scens.values()
        ),
        "- servers (TMP: a directory made for each start):",
        *(
            f"  - {s.name}: `{shown(s)}`"
            + (
                f"; reload: `kill -{signal.Signals(s.reload_signal).name[3:]} MASTER`"
                if s.reload_signal
                else ""
            )
            + (f"; reload: `touch TMP/{s.reload_touch}`" if s.reload_touch else "")
            for s in servers
        ),
    ]
    if confs:
        conf = NGINX_CONF.replace("__PASS__", "            # PASS: per protocol, below")
        out += ["", "TMP/nginx.conf:", "", "```nginx", fill(conf, "PORT", "TMP").strip(), "```"]
        for protocol, lines in NGINX_PASS.items():
            out += ["", f"PASS for {protocol}:", "", "```nginx", fill(lines, "PORT", "TMP"), "```"]
    for h, c, labels in tables:
        if len(h) < 2:  # a ratios table without another family
            continue
        out += ["", render_markdown(h, c, labels=labels)]
        if c is tables[0][1] and load_rows:
            out += [
                "",
                "Errors are summed over the rounds (socket errors: connect + read + write)."
                " new conn: median time for one extra connection, opened every"
                f" {PROBE_INTERVAL:g} s during the run, to be answered"
                f" ({PROBE_TIMEOUT:g} s timeout). lost procs: server processes that"
                " disappeared during a run. RSS: master + workers after the keep-alive run"
                " (median of the rounds; shared pages counted in each process)."
                " CPU µs/req: user + system time of the server's processes (nginx's"
                " too, for a row behind nginx) during the run, per answered request"
                " (median of the rounds).",
            ]
    if reload_rows:
        out += [
            "",
            "reloads: reloads asked for, summed over the rounds. procs started: server"
            f" processes seen during the runs that were not there before (looked for every"
            f" {RELOAD_SAMPLE * 1000:g} ms; new workers, a master that re-executes keeps its"
            " pid), summed over the rounds. failed requests: wrk's socket errors (connect + read + write)"
            " + non-2xx answers, summed, then per round. max latency: wrk's longest"
            " answered request in a run (requests that timed out are not in it; see"
            " timeouts).",
        ]
    if ic:
        out += [
            "",
            f"keep-alive+idle: the keep-alive run while {IDLE_CONNECTIONS} other connections,"
            " each answered once before the run where the server did, stay open and silent."
            " CPU per request: the server's processes' user + system CPU time during the run"
            " divided by the requests wrk counted (median of the rounds), which other work"
            " on the machine moves far less than req/s."
            " RSS per idle connection: growth of master + workers while opening them,"
            " divided by the connections answered.",
            "",
            render_markdown(ih, ic, labels=1),
        ]
    if notes:
        out += ["", "Notes:", "", *(f"- {n}" for n in notes)]
    return "\n".join(out).replace(APPS, "bench/apps")
