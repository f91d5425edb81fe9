"""A forked child's stop pipe wakes on the master's inherited handlers too (the
SIGCHLD of a process its app started): only the stop signals end it."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import os, select, signal, subprocess
from procmaster.ipc import STOP_SIGNALS
from procmaster.process import signal_pipe, signalled
signal.signal(signal.SIGCHLD, lambda *a: None)  # as a handler inherited from the master
fd = signal_pipe(STOP_SIGNALS)
subprocess.run(["true"], check=True)  # its SIGCHLD writes to the pipe
assert select.select([fd], [], [], 5)[0], "no wake-up for SIGCHLD"
print("chld", signalled(fd, STOP_SIGNALS))
os.kill(os.getpid(), signal.SIGTERM)
assert select.select([fd], [], [], 5)[0], "no wake-up for SIGTERM"
print("term", signalled(fd, STOP_SIGNALS))
"""


def test_only_a_stop_signal_counts():
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert out.split("\n")[:2] == ["chld False", "term True"], out
