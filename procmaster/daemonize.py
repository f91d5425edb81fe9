"""``daemonize = LOGFILE``: detach the command from its terminal and session.

Owns: the double fork. The command that ran ``procmaster`` returns (exit 0) once
the detached process exists; that process becomes the master, so ``pidfile``
holds the master's pid. Logging to the file is ``procmaster.logs``' business
(``daemonize`` names the log when ``logto`` does not).

Must not know: what the master does after.
"""

from __future__ import annotations

import os

__all__ = ["detach"]


def detach() -> None:
    """Return in the detached grandchild; the original process and the
    intermediate child exit here."""
    pid = os.fork()
    if pid > 0:
        os.waitpid(pid, 0)  # the intermediate child exits at once
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    # stderr too: the log file replaces it once the log is configured, and nothing
    # may keep the launching command's pipes open (its caller waits for their EOF)
    os.dup2(devnull, 2)
    if devnull > 2:
        os.close(devnull)
