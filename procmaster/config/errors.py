"""``ConfigError``: the one exception the config reader raises.

Its ``str()`` is the whole message a person needs, location first: ``site.ini:3: ...``
for something found in a file; no location for the command line (the option is
named as typed, ``'--processes'``) or a top-level file that cannot be read. The
command prints it after ``procmaster: ``; there is never a traceback to show.
Warnings (``Config.warnings``) follow the same rule. Must not know how anything is
served.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration that cannot be used. ``where`` is ``file:line``, ``command
    line`` or ``""``; ``option`` the option name as written, when there is one."""

    def __init__(self, message: str, where: str = "", option: str | None = None) -> None:
        super().__init__(prefix(where) + message)
        self.message = message
        self.where = where
        self.option = option

    def __str__(self) -> str:
        return str(self.args[0])


def prefix(where: str) -> str:
    """The start of a message about something at ``where`` (see ConfigError)."""
    if where and where != "command line":
        return f"{where}: "
    return ""
