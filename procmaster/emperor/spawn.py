"""Starting a vassal: its command line, its config read first, its owner under
``emperor-tyrant``, and the process with its end of the pipe.

Theory of operation
-------------------
A vassal is ``python -m procmaster`` with ``--inherit`` (``vassals-inherit``),
``--ini`` the file's real path, ``--include`` (``vassals-include``) and ``--set``
(``vassal-set``), run in the file's directory. Its config is read here first
(``procmaster.config.load`` starts nothing): a broken file marks the vassal
``INVALID`` and is logged with file:line, instead of a crash loop. The child
gets the emperor's environment minus ``PRIVATE_ENV``, plus its end of a
socketpair in ``EMPEROR_FD_ENV``, and asks the kernel to die with the emperor
between fork and exec. Under ``emperor-tyrant`` (as root) it runs as its file's
owner, a root-owned file refused unless ``emperor-tyrant-allow-root``.

Must not know: what happens to a vassal once started (the loop's), protocols,
workers.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
from dataclasses import dataclass, field

from ..config import ConfigError, load
from ..ipc import EMPEROR_FD_ENV, PRIVATE_ENV
from ..logs import log
from ..process import die_with_parent, procmaster_command
from .vassal import Vassal

__all__ = ["Launcher"]


@dataclass
class Launcher:
    """How this emperor starts its vassals."""

    emperor_pid: int
    inherit: list[str] = field(default_factory=list)  # absolute paths
    include: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    tyrant: bool = False  # and running as root
    allow_root: bool = False

    def argv(self, vassal: Vassal) -> list[str]:
        """The arguments after ``python -m procmaster``."""
        args: list[str] = []
        for path in self.inherit:
            args += ["--inherit", path]
        args += ["--ini", vassal.real]
        for path in self.include:
            args += ["--include", path]
        for item in self.sets:
            args += ["--set", item]
        return args

    def check(self, vassal: Vassal) -> bool:
        """Read the vassal's config here: a broken INI is logged (once per change)."""
        try:
            load(self.argv(vassal))
        except ConfigError as exc:
            vassal.invalid(str(exc))
            log(
                f"vassal {vassal.name}: config error: {exc}\n"
                f"vassal {vassal.name}: not started; it is tried again when the file changes"
            )
            return False
        except Exception as exc:  # an unexpected reader failure must not stop the emperor
            vassal.invalid(repr(exc))
            log(f"vassal {vassal.name}: cannot read its config: {exc!r}")
            return False
        vassal.error = None
        return True

    def owner(self, vassal: Vassal) -> tuple[int, int, list[int]] | None:
        """emperor-tyrant: the uid, gid and groups of the INI file's owner."""
        try:
            st = os.stat(vassal.real)
        except OSError as exc:
            log(f"vassal {vassal.name}: cannot stat: {exc.strerror}")
            return None
        if st.st_uid == 0 and not self.allow_root:
            vassal.invalid("owned by root (emperor-tyrant)")
            log(
                f"vassal {vassal.name}: refused: the file is owned by root and emperor-tyrant "
                "runs each vassal as its file's owner (emperor-tyrant-allow-root allows it)"
            )
            return None
        groups: list[int] = []
        try:
            name = pwd.getpwuid(st.st_uid).pw_name
            groups = os.getgrouplist(name, st.st_gid)
        except KeyError:
            pass
        return st.st_uid, st.st_gid, groups

    def launch(
        self, vassal: Vassal, stdin: int | None = None
    ) -> tuple[subprocess.Popen, socket.socket] | None:
        """Start the vassal's master: it and the emperor's end of its pipe
        (non-blocking), or None when emperor-tyrant refuses it (logged). Raises
        ``OSError`` or ``subprocess.SubprocessError`` when it cannot start.
        ``stdin``: an on-demand socket the vassal gets as its fd 0."""
        extra: dict = {}
        if self.tyrant:
            owner = self.owner(vassal)
            if owner is None:
                return None
            uid, gid, groups = owner
            extra = {"user": uid, "group": gid, "extra_groups": groups}
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
        env[EMPEROR_FD_ENV] = str(child.fileno())
        emperor_pid = self.emperor_pid

        def in_child() -> None:  # between fork and exec: no emperor-less vassal
            die_with_parent(emperor_pid)

        sys.stdout.flush()
        sys.stderr.flush()
        try:
            proc = subprocess.Popen(
                procmaster_command(self.argv(vassal)),
                cwd=os.path.dirname(vassal.real),
                env=env,
                stdin=subprocess.DEVNULL if stdin is None else stdin,
                pass_fds=(child.fileno(),),
                preexec_fn=in_child,
                **extra,
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        parent.setblocking(False)
        return proc, parent
