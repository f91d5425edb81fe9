"""The option table: every procmaster option, declared once, as data.

Theory of operation
-------------------
An option's meaning lives here and nowhere else. The config reader
(``procmaster.config``), ``--help`` and ``docs/options.md`` (``procmaster.helpdoc``),
``--check``, the sockets (``socket_options()``: which options declare sockets and
the protocol each speaks) and the master's watches (``watch_options()``: which
options name watched paths and what a change asks for) are all driven from it,
and ``Config`` hands out each value already converted to its type, with the
table's default when it was not given.

Parts:

``model``        the ``Option`` record and the statuses (full, partial, accepted,
                 unsupported).
``types``        one converter per value type (``TYPES``, ``convert``) and the one
                 address parser (``parse_address`` -> ``Address``).
``table``        the rows (``OPTIONS``) and their groups (``GROUPS``).
``lookup``       indexes and look-ups (``BY_NAME``, ``lookup``, ``suggest``,
                 ``socket_options``, ``watch_options``, ``is_uwsgi_option``).
``uwsgi_names``  the option names uWSGI 2.0 has, as data.

Everything is importable from ``procmaster.options`` itself.

Must not know: files, sockets or processes: this package is pure data and pure
functions on strings.
"""

from __future__ import annotations

from .lookup import (
    BY_NAME,
    BY_SHORT,
    UWSGI_SHORTS,
    all_names,
    did_you_mean,
    is_uwsgi_option,
    lookup,
    lookup_short,
    socket_options,
    suggest,
    watch_options,
)
from .model import (
    ACCEPTED,
    FULL,
    NOT_YET,
    PARTIAL,
    STATUSES,
    UNSUPPORTED,
    Option,
)
from .table import GROUPS, OPTIONS
from .types import (
    BOOL_WORDS,
    NUMERIC_TYPES,
    TYPE_DOCS,
    TYPES,
    UNIX_PATH_MAX,
    Address,
    convert,
    parse_address,
    parse_bool,
)

__all__ = [
    "ACCEPTED",
    "BOOL_WORDS",
    "NUMERIC_TYPES",
    "BY_NAME",
    "BY_SHORT",
    "FULL",
    "GROUPS",
    "NOT_YET",
    "OPTIONS",
    "PARTIAL",
    "STATUSES",
    "TYPES",
    "TYPE_DOCS",
    "UNIX_PATH_MAX",
    "UNSUPPORTED",
    "UWSGI_SHORTS",
    "Address",
    "Option",
    "all_names",
    "convert",
    "did_you_mean",
    "is_uwsgi_option",
    "lookup",
    "lookup_short",
    "parse_address",
    "parse_bool",
    "socket_options",
    "suggest",
    "watch_options",
]
