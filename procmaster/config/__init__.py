"""procmaster's configuration: uWSGI-style INI files and command-line flags.

``load(argv)`` reads the command line (and every INI file it names, with their
includes and placeholders) into a frozen ``Config``; it raises ``ConfigError``,
whose text is the whole message, location first (``site.ini:3: ...``); the
command prints it after ``procmaster: ``.

Parts: ``cli`` (argv → items), ``ini`` (one file's lines), ``logic`` (``if-*`` and
``for`` blocks), ``placeholders``
(``%d``, ``%(name)``, ``$(ENV)``, ``@(file)``), ``reader`` (ordered entries from
``UWSGI_*`` variables, flags and files, includes), ``build`` (entries → ``Config`` through ``procmaster.options``).

This package must not know how anything is served: it never opens sockets,
imports apps or starts processes. It is imported at every start, so it keeps its
imports light.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..ipc import REEXEC_ENV
from .build import Config, Entry
from .cli import parse_argv
from .errors import ConfigError
from .reader import Reader

__all__ = ["Config", "ConfigError", "Entry", "load"]


def load(argv: list[str], environ: Mapping[str, str] | None = None) -> Config:
    """Build the ``Config`` for ``argv`` (the arguments after the program name).

    ``environ`` is what ``$(NAME)``, ``if-env`` and the ``UWSGI_*`` options read
    (``os.environ`` by default). A re-executed master (its reload state in
    ``ipc.REEXEC_ENV``) reads ``if-reload`` blocks.
    """
    from .build import build

    env = os.environ if environ is None else environ
    reader = Reader(env, reloading=REEXEC_ENV in env)
    reader.add_environ()
    for item in parse_argv(argv):
        reader.add(item.flag, item.value, "command line", None, item.option)
    reader.finish()
    return build(reader, argv)
