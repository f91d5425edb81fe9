"""What one option is: the ``Option`` record and the statuses it can have.

Theory of operation
-------------------
Each ``Option`` says what one uWSGI-style option is called (name, long aliases,
one-letter command-line short), what its value looks like (``type``, checked by
the converter of the same name in ``procmaster.options.types.TYPES``), what it is
when not given (``default``) or given without a value (``bare``), whether it
repeats (``multi``: values append to a list) and how much of uWSGI 2.0's meaning
procmaster gives it (``status``):

``full``         behaves as in uWSGI 2.0.
``partial``      works, with the difference said in ``note``.
``accepted``     read and validated, no effect; ``note`` says why nothing is lost.
``unsupported``  not honoured; ``note`` says what to do instead. Using it gives a
                 warning ("ignored"), or an error when ``blocking`` is true because
                 ignoring it would change what the deployment does (sockets,
                 privileges, daemonizing, config logic, APIs the app calls).

Two fields say what the rest of procmaster does with an option, so that no other
module keeps a second list: ``protocol`` (a socket option: the wire protocol its
sockets speak) and ``watch`` (a watched-path option: what a change asks for).

Must not know: the table's rows, value conversion, files, sockets or processes.
"""

from __future__ import annotations

FULL = "full"
PARTIAL = "partial"
ACCEPTED = "accepted"
UNSUPPORTED = "unsupported"
STATUSES = (FULL, PARTIAL, ACCEPTED, UNSUPPORTED)

NOT_YET = "not implemented yet"

_MISSING = object()


class Option:
    """One option. See the module docstring for what each field means."""

    __slots__ = (
        "name",
        "type",
        "default",
        "aliases",
        "short",
        "multi",
        "help",
        "status",
        "note",
        "group",
        "bare",
        "blocking",
        "prefixes",
        "store",
        "cli_only",
        "min",
        "request_vars",
        "protocol",
        "watch",
    )

    def __init__(
        self,
        name: str,
        type: str,
        help: str,
        *,
        default: object = None,
        aliases: tuple[str, ...] = (),
        short: str | None = None,
        multi: bool = False,
        status: str = FULL,
        note: str = "",
        group: str = "",
        bare: object = _MISSING,
        blocking: bool = False,
        prefixes: tuple[str, ...] = (),
        store: str | None = None,
        cli_only: bool = False,
        min: float | None = None,
        request_vars: bool = False,
        protocol: str | None = None,
        watch: str | None = None,
    ) -> None:
        self.name = name
        self.type = type
        self.help = help
        self.default = [] if multi else default
        self.aliases = aliases
        self.short = short
        self.multi = multi
        self.status = status
        self.note = note
        self.group = group
        self.bare = True if (bare is _MISSING and type == "bool") else bare
        self.blocking = blocking
        self.prefixes = prefixes
        # another option whose value this one sets (uWSGI: same variable)
        self.store = store
        self.cli_only = cli_only
        self.min = min
        # the value holds %(var) request-log variables: unresolved %(...) is expected
        self.request_vars = request_vars
        # a socket option: the wire protocol spoken on the sockets it declares
        self.protocol = protocol
        # a watched-path option: what a change of the path asks the master for
        # (a reload kind of procmaster.master.reload, or ``logrotate``/``logreopen``)
        self.watch = watch

    @property
    def takes_value(self) -> bool:
        """False for flags (bool): on the command line they take no separate value."""
        return self.type != "bool"

    @property
    def value_optional(self) -> bool:
        """True when the option may be given with no value at all."""
        return self.bare is not _MISSING

    @property
    def attr(self) -> str | None:
        """The ``Config`` attribute name, or None for option families (``hook-*``)."""
        if "*" in self.name:
            return None
        return self.name.replace("-", "_")

    def __repr__(self) -> str:
        return f"Option({self.name!r}, {self.type!r}, status={self.status!r})"
