"""Dropping root: ``uid`` / ``gid`` (names or numbers), after the sockets are bound.

The master calls ``drop_privileges`` once the listening sockets are bound (and
``chmod-socket`` / ``chown-socket`` applied, which ``sockets`` does while
binding) and before it loads the app or forks: the app, the workers and any
later reload all run as the unprivileged user. The order is uWSGI's: groups
(``gid``, then the user's supplementary groups) first, the user last, because
after ``setuid`` nothing can be changed back.

Running as root without ``uid`` is allowed (as uWSGI) with a warning.

After the drop the interpreter's own files may not be readable by the new user
(a Python installed under a private home), so the modules workers import on
demand (``PRELOAD``) are imported before it.

Must not know: sockets, workers, the app.
"""

from __future__ import annotations

import grp
import importlib
import os
import pwd

__all__ = ["PrivilegeError", "drop_privileges"]


PRELOAD = (
    "procmaster.protocols.http",
    "procmaster.protocols.uwsgi",
    "procmaster.protocols.fastcgi",
    "psutil",
)


class PrivilegeError(Exception):
    pass


def _uid(value: str) -> tuple[int, str | None, int | None]:
    """(uid, user name, primary gid) of a user name or number."""
    try:
        entry = pwd.getpwuid(int(value)) if value.isdigit() else pwd.getpwnam(value)
    except KeyError:
        if value.isdigit():
            return int(value), None, None
        raise PrivilegeError(f"uid: no such user {value!r}") from None
    return entry.pw_uid, entry.pw_name, entry.pw_gid


def _gid(value: str) -> int:
    if value.isdigit():
        return int(value)
    try:
        return grp.getgrnam(value).gr_gid
    except KeyError:
        raise PrivilegeError(f"gid: no such group {value!r}") from None


def drop_privileges(cfg) -> list[str]:
    """Switch to ``gid`` and ``uid`` if given; the lines to log. Raises
    ``PrivilegeError`` when asked to and it cannot."""
    uid_opt = cfg.uid or ""
    gid_opt = cfg.gid or ""
    lines: list[str] = []
    if not uid_opt and not gid_opt:
        if os.geteuid() == 0:
            lines.append("warning: running as root (set uid and gid to drop privileges)")
        return lines
    uid, name, user_gid = _uid(uid_opt) if uid_opt else (None, None, None)
    gid = _gid(gid_opt) if gid_opt else user_gid
    if os.geteuid() != 0:
        # not root (e.g. after a reload re-executed an already unprivileged master)
        if (uid is None or uid == os.geteuid()) and (gid is None or gid == os.getegid()):
            return lines
        raise PrivilegeError(
            f"cannot switch to uid {uid_opt or '-'} gid {gid_opt or '-'}: not running as root"
        )
    for module in PRELOAD:
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    try:
        if gid is not None:
            os.setgid(gid)
            if name is not None:
                os.initgroups(name, gid)
            else:
                os.setgroups([gid])
        if uid is not None:
            os.setuid(uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot drop privileges: {exc.strerror}") from None
    lines.append(f"privileges dropped: uid {os.getuid()} gid {os.getgid()}")
    return lines
