"""Side-by-side runs: the same app and options under procmaster and under uWSGI 2.0.

Theory of operation: a test of the ``uwsgi`` API starts one master of either kind
(``Side("procmaster" | "uwsgi", ...)``) serving a module from tests/apps over
``http-socket`` on a free 127.0.0.1 port, with the records file whose path the app
reads from one environment variable (the app appends one JSON object per line).
The instance is up once ``/`` answers 200. ``stop()`` kills it and every
descendant by PID. The ``sides`` helper makes the pytest fixture every such file
uses, so each test says only what differs: the app, its variable and its options.

Must not know: what any particular app does or records.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from support import APPS, ROOT, free_port, http_get, kill_tree, remember_descendants, wait_for

UWSGI = shutil.which("uwsgi")
KINDS = [
    "procmaster",
    pytest.param(
        "uwsgi",
        marks=pytest.mark.skipif(
            UWSGI is None, reason="uWSGI is not installed (.ci/run installs it)"
        ),
    ),
]
needs_uwsgi = pytest.mark.skipif(
    UWSGI is None, reason="uWSGI is not installed (.ci/run installs it)"
)


class Side:
    """One master (procmaster or uWSGI) running ``module`` with ``options``."""

    def __init__(
        self,
        kind: str,
        tmp: Path,
        module: str,
        *options: str,
        processes: int = 2,
        records_env: str | None = None,
        records: Path | None = None,
    ) -> None:
        self.kind = kind
        self.port = free_port()
        self.records_path = records or tmp / f"records-{kind}-{self.port}.jsonl"
        self.log_path = tmp / f"{kind}-{self.port}.log"
        env = dict(os.environ)
        if records_env:
            env[records_env] = str(self.records_path)
        env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
        env.pop("NOTIFY_SOCKET", None)
        common = [
            "--master",
            "--processes",
            str(processes),
            "--module",
            module,
            "--http-socket",
            f"127.0.0.1:{self.port}",
            *options,
        ]
        if kind == "uwsgi":
            assert UWSGI, "uWSGI is not installed"
            argv = [UWSGI, "--pythonpath", str(APPS), "--die-on-term", *common]
        else:
            argv = [sys.executable, "-m", "procmaster", *common]
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv,
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        self.known = {self.proc.pid}
        try:
            wait_for(self.answers, 30, what=f"{kind} to answer:\n{self.log()}")
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.kind} exited:\n{self.log()}")
        try:
            return http_get(self.port, "/", timeout=2)[0] == 200
        except OSError:
            return False

    def get(self, path: str) -> bytes:
        """The body of a 200 answer to GET ``path`` (anything else fails the test)."""
        status, _, body = http_get(self.port, path, timeout=60)
        assert status == 200, body
        return body

    def text(self, path: str) -> str:
        return self.get(path).decode()

    def json(self, path: str):
        return json.loads(self.get(path))

    def records(self, kind: str | None = None) -> list[dict]:
        """What the app recorded so far, optionally only the records of one ``kind``."""
        try:
            lines = self.records_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = [json.loads(line) for line in lines if line.strip()]
        return [r for r in out if kind is None or r["kind"] == kind]

    def children_named(self, word: str) -> list[int]:
        """Live children of the master whose process name holds ``word``."""
        out = []
        for child in psutil.Process(self.proc.pid).children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE and word in child.name():
                    out.append(child.pid)
            except psutil.Error:
                pass
        return out

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the master once it has a handler for it. uWSGI's master
        sets its handlers when its main loop starts, after it forked the workers:
        a signal sent as soon as the workers are up can arrive before that, and is
        lost (seen once in about twenty loaded runs of the suite)."""
        wait_for(
            lambda: catches(self.proc.pid, sig),
            20,
            what=f"{self.kind}'s master to catch signal {sig}:\n{self.log()}",
        )
        self.proc.send_signal(sig)

    def stop(self) -> None:
        remember_descendants(self.proc.pid, self.known)
        kill_tree(self.proc, self.known)
        self.log_file.close()


def catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``sig`` (``SigCgt`` in
    its ``/proc/PID/status``)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


def sides(
    tmp: Path, module: str, records_env: str | None = None, *defaults: str, **fixed
) -> Iterator[Callable[..., Side]]:
    """The body of a fixture: yields ``start(kind, *options, **kw)``, which starts a
    ``Side`` of ``module`` with ``defaults`` then ``options``; stops them all after."""
    started: list[Side] = []

    def start(kind: str, *options: str, **kw) -> Side:
        inst = Side(kind, tmp, module, *defaults, *options, records_env=records_env, **fixed, **kw)
        started.append(inst)
        return inst

    yield start
    for inst in started:
        inst.stop()
