"""The master's imports: nothing of the worker, protocols, WSGI or static files."""

from __future__ import annotations

import subprocess
import sys

from support import ROOT


def test_importing_the_master_loads_no_worker_side_module():
    code = (
        "import sys, procmaster.master\n"
        "print(' '.join(m for m in sys.modules if m.startswith('procmaster')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "procmaster.master" in out
    forbidden = (
        "procmaster.worker",
        "procmaster.protocols",
        "procmaster.wsgi",
        "procmaster.static",
    )
    assert [m for m in out if m.startswith(forbidden)] == []
    assert not [m for m in out if m.startswith("procmaster.emperor")]
