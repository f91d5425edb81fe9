"""WebSocket conformance: the Autobahn testsuite's server cases (``wstest
--mode fuzzingclient``, the cases the ``websockets`` and ``wsproto`` projects
run against their servers, ``compliance/``) against procmaster's ASGI worker,
and uvicorn as a reference, both serving the same echo app
(bench/apps/autobahn_asgi.py) on 127.0.0.1, one worker each; ``procmaster-nginx``
is procmaster behind nginx (``proxy_pass`` with the Upgrade headers).

    python bench/autobahn.py --wstest-lib /tmp/ab27/lib
    python bench/autobahn.py --wstest-lib /tmp/ab27/lib --servers procmaster,procmaster-nginx
    python bench/autobahn.py --wstest-lib /tmp/ab27/lib --cases '1.*,2.*,5.*' --servers procmaster

Theory of operation
-------------------
Both projects run wstest from the ``crossbario/autobahn-testsuite`` Docker
image; that image is autobahntestsuite 0.8.2 on Python 2.7. Without Docker the
same suite installs from PyPI into a Python 2.7 (it is Python 2 only):

    python2.7 -m pip install --target /tmp/ab27/lib autobahntestsuite==0.8.2

(``--python2`` names the interpreter: default ``python2.7`` on PATH, else
pyenv's 2.7). The script writes the fuzzingclient spec (every case unless
``--cases``/``--exclude``; ``failByDrop`` off, as wsproto's spec), starts each
server in turn, runs wstest against it, reads ``index.json`` of the report and
prints, per server, how many cases ended in each behavior (OK, NON-STRICT,
INFORMATIONAL, UNIMPLEMENTED, FAILED) and the close behavior, then every case
that is not OK or INFORMATIONAL. The servers allow 16 MiB messages (the 9.*
cases send that much). The HTML report stays in ``--outdir`` when given.

Must not know: how either server works inside.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from processes import (  # noqa: E402
    answers,
    free_port,
    procmaster_argv,
    progress,
    spawn,
    stop_tree,
    tree_env,
    tree_revision,
    wait_until,
)
from servers import NGINX, NGINX_CONF, fill  # noqa: E402

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
ROOT = HERE.parent
MAX_SIZE = 16 * 1024 * 1024
# wstest from a --target install: its zope namespace package needs the .pth files
WSTEST = (
    "import site, sys; site.addsitedir(sys.argv.pop(1)); "
    "from autobahntestsuite.wstest import run; sys.argv[0] = 'wstest'; run()"
)
PROXY_WS = """            proxy_pass http://127.0.0.1:BACKEND;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 300s;"""


def server_argv(kind: str, port: int) -> list[str]:
    if kind.startswith("procmaster"):
        return procmaster_argv(
            "--http-socket", f"127.0.0.1:{port}", "--pythonpath", str(APPS),
            "--master", "--processes", "1", "--asgi", "autobahn_asgi:app",
            "--websocket-max-size", str(MAX_SIZE // 1024), "--disable-logging",
        )  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools",
        "--ws-max-size", str(MAX_SIZE), "--no-access-log", "--log-level", "warning",
        "--app-dir", str(APPS), "--port", str(port), "autobahn_asgi:app",
    ]  # fmt: skip


def python2(given: str | None) -> str:
    if given:
        return given
    found = shutil.which("python2.7")
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/2.7*/bin/python2.7")))
    if found and os.path.realpath(found).find("shims") < 0:
        return found
    if pyenv:
        return pyenv[-1]
    raise SystemExit("no Python 2.7 found (the Autobahn testsuite needs one): give --python2")


def start_nginx(workdir: str, backend: int, log) -> tuple[int, object]:
    """nginx on a free port, proxying WebSockets to ``backend``; (port, process)."""
    front = free_port()
    tmp = os.path.join(workdir, "nginx")
    os.makedirs(tmp, exist_ok=True)
    conf = NGINX_CONF.replace("__PASS__", PROXY_WS.replace("BACKEND", str(backend)))
    with open(os.path.join(tmp, "nginx.conf"), "w") as fh:
        fh.write(fill(conf, front, tmp))
    proc = spawn([fill(a, front, tmp) for a in NGINX], log, workdir)
    wait_until(lambda: answers(front, "/", b"ok"), [proc], 30, "nginx")
    return front, proc


def run_server(kind: str, args, workdir: str, py2: str) -> dict:
    port = free_port()
    log_path = os.path.join(workdir, f"{kind}.log")
    front, nginx = port, None
    spec = {
        "options": {"failByDrop": False},
        "outdir": os.path.join(args.outdir or workdir, kind),
        "servers": [{"agent": kind, "url": "WSURL"}],
        "cases": args.cases.split(","),
        "exclude-cases": [c for c in args.exclude.split(",") if c],
        "exclude-agent-cases": {},
    }
    spec_path = os.path.join(workdir, f"{kind}.json")
    with open(log_path, "ab") as log:
        proc = spawn(server_argv(kind, port), log, workdir, tree_env(str(ROOT)))
        try:
            wait_until(lambda: answers(port, "/", b"ok"), [proc], 60, kind)
            if kind.endswith("-nginx"):
                front, nginx = start_nginx(workdir, port, log)
            spec["servers"][0]["url"] = f"ws://127.0.0.1:{front}"
            with open(spec_path, "w") as fh:
                json.dump(spec, fh)
            with open(os.path.join(workdir, f"{kind}-wstest.log"), "ab") as wlog:
                wstest = spawn(
                    [py2, "-c", WSTEST, args.wstest_lib, "--mode", "fuzzingclient", "--spec",
                     spec_path],
                    wlog, workdir,
                )  # fmt: skip
                try:
                    code = wstest.wait(args.timeout)
                except Exception:
                    stop_tree([wstest], 15)
                    raise
            if code != 0:
                raise RuntimeError(f"wstest exited with {code}: see {workdir}/{kind}-wstest.log")
        finally:
            if nginx is not None:
                stop_tree([nginx], 15)
            stop_tree([proc], 15)
    with open(os.path.join(spec["outdir"], "index.json")) as fh:
        return json.load(fh)[kind]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wstest-lib", required=True, help="where autobahntestsuite was installed")
    ap.add_argument("--python2", help="the Python 2.7 that runs wstest")
    ap.add_argument("--servers", default="procmaster,uvicorn")
    ap.add_argument("--cases", default="*", help="comma-separated case ids or globs")
    ap.add_argument("--exclude", default="", help="comma-separated case ids or globs")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds for one wstest run")
    ap.add_argument("--outdir", help="keep the HTML reports here")
    args = ap.parse_args()
    py2 = python2(args.python2)
    kinds = [k for k in args.servers.split(",") if k]
    results = {}
    source = tree_revision(str(ROOT))  # (before the runs: the tree may change meanwhile)
    with tempfile.TemporaryDirectory(prefix="autobahn-") as workdir:
        for kind in kinds:
            progress(f"{kind}: wstest fuzzingclient, cases {args.cases}")
            results[kind] = run_server(kind, args, workdir, py2)
    print(f"procmaster source: {source}")
    print(f"cases: {args.cases}; excluded: {args.exclude or 'none'}")
    print()
    names = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
    print(f"| server | cases | {' | '.join(names)} | close not OK |")
    print(f"|---|---:|{'---:|' * len(names)}---:|")
    for kind in kinds:
        cases = results[kind]
        counts = collections.Counter(c["behavior"] for c in cases.values())
        closes = sum(1 for c in cases.values() if c["behaviorClose"] not in ("OK", "INFORMATIONAL"))
        cells = " | ".join(str(counts.get(n, 0)) for n in names)
        print(f"| {kind} | {len(cases)} | {cells} | {closes} |")
    for kind in kinds:
        odd = [
            (case, c["behavior"], c["behaviorClose"])
            for case, c in results[kind].items()
            if c["behavior"] not in ("OK", "INFORMATIONAL", "UNIMPLEMENTED")
            or c["behaviorClose"] not in ("OK", "INFORMATIONAL")
        ]
        unimplemented = collections.Counter(
            case.split(".")[0] + ".*"
            for case, c in results[kind].items()
            if c["behavior"] == "UNIMPLEMENTED"
        )
        if unimplemented:
            sections = ", ".join(f"{s} ({n})" for s, n in sorted(unimplemented.items()))
            print(f"\n{kind}: UNIMPLEMENTED by section: {sections}")
        if odd:
            print(f"{kind}: cases not OK")
            for case, behavior, close in sorted(odd, key=lambda t: _case_key(t[0])):
                print(f"  {case}: {behavior} (close {close})")


def _case_key(case: str) -> tuple[int, ...]:
    return tuple(int(p) for p in case.split(".") if p.isdigit())


if __name__ == "__main__":
    main()
