"""Which certificate answers the host name a TLS client asks for (SNI), from
uWSGI's three sources: ``sni`` (exact names), ``sni-regexp`` (patterns) and
``sni-dir`` (a directory of ``<name>.crt``/``<name>.key``, optional ``<name>.ca``).

Theory of operation
-------------------
``SniTable.parse(exact, regexps, directory, dir_ciphers)`` reads the option
values and raises ``TlsError`` for one that cannot work (a pattern that does
not compile, a directory that is not one); building the contexts of ``sni`` and
``sni-regexp`` is the caller's (``contexts(make)``), so the start-up check and
each worker do it the same way. ``choose(name)`` (called by OpenSSL's server
name callback, with the lower-case name) answers, as uWSGI's callback does:
the exact name first, then each pattern in the order given (searched, not
anchored, as uWSGI's PCRE match: write ``^...$`` to anchor), then the
directory, else ``None`` (the socket's own certificate).

The directory is read at the first handshake naming a host, and what it gave
is kept until the worker is replaced (a reload), as uWSGI keeps it. A name is
looked up there only if it is a host name (letters, digits, ``-``, ``_``,
dot-separated labels, at most 253 characters): ``..``, ``/``, a NUL or an empty
label never make a path, so nothing outside the directory is read. Files that
exist but cannot make a context are reported once through ``report`` (a
callable given by the worker) and the name falls back to the default; a lookup
never raises (an exception in OpenSSL's callback would fail the handshake).

Must not know: sockets, the worker, logging, options.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable

from .tls import TlsError, TlsFiles, entry_fields, sni_entry

__all__ = ["SniTable", "host_name"]

_HOST = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*\Z")
DIR_CACHE = 4096  # names the directory answered, kept per worker


def host_name(name: str) -> bool:
    """Whether ``name`` (lower case) is a host name that may name files."""
    return len(name) <= 253 and _HOST.match(name) is not None


class SniTable:
    """The SNI sources of a config (see the module)."""

    def __init__(
        self,
        exact: list[tuple[str, TlsFiles]],
        regexps: list[tuple[re.Pattern, TlsFiles]],
        directory: str,
        dir_ciphers: str,
    ) -> None:
        self.exact = exact
        self.regexps = regexps
        self.directory = directory
        self.dir_ciphers = dir_ciphers
        self.named: dict[str, ssl.SSLContext] = {}
        self.patterns: list[tuple[re.Pattern, ssl.SSLContext]] = []
        self.from_dir: dict[str, ssl.SSLContext | None] = {}
        self.make: Callable[[TlsFiles], ssl.SSLContext] | None = None
        self.report: Callable[[str], None] = lambda _line: None

    @classmethod
    def parse(
        cls, exact: list[str], regexps: list[str], directory: str | None, dir_ciphers: str | None
    ) -> SniTable:
        """The option values; ``TlsError`` (with the value's index as ``.index``
        and its option as ``.option``) for one that cannot work."""
        names = []
        for i, value in enumerate(exact):
            names.append(_at(lambda v=value: sni_entry(v), "sni", i))
        patterns = []
        for i, value in enumerate(regexps):
            pattern, files = _at(lambda v=value: entry_fields(v, "REGEXP"), "sni-regexp", i)
            try:
                compiled = re.compile(pattern, re.IGNORECASE)
            except (re.error, RecursionError) as exc:
                err = TlsError(f"{pattern!r} is not a regular expression: {exc}")
                err.option, err.index = "sni-regexp", i
                raise err from None
            patterns.append((compiled, files))
        if directory and not os.path.isdir(directory):
            err = TlsError(f"{directory!r} is not a directory")
            err.option, err.index = "sni-dir", 0
            raise err
        return cls(names, patterns, directory or "", dir_ciphers or "")

    def __bool__(self) -> bool:
        return bool(self.exact or self.regexps or self.directory)

    def contexts(self, make: Callable[[TlsFiles], ssl.SSLContext]) -> None:
        """Build the contexts of ``sni`` and ``sni-regexp`` with ``make`` (which
        raises ``TlsError``); ``make`` also builds the directory's, later."""
        self.make = make
        self.named = {name: make(files) for name, files in self.exact}
        self.patterns = [(pattern, make(files)) for pattern, files in self.regexps]

    def choose(self, name: str) -> ssl.SSLContext | None:
        """The context for the lower-case host ``name`` (None: the default)."""
        chosen = self.named.get(name)
        if chosen is not None:
            return chosen
        for pattern, ctx in self.patterns:
            if pattern.search(name):
                return ctx
        if self.directory:
            return self._from_dir(name)
        return None

    def _from_dir(self, name: str) -> ssl.SSLContext | None:
        if name in self.from_dir:
            return self.from_dir[name]
        if not host_name(name):
            return None
        base = os.path.join(self.directory, name)
        cert, key, ca = base + ".crt", base + ".key", base + ".ca"
        if not (os.path.isfile(cert) and os.path.isfile(key)):
            return None  # not remembered: the files may come (an unknown name costs 2 stats)
        files = TlsFiles(cert, key, self.dir_ciphers, ca if os.path.isfile(ca) else "")
        try:
            ctx = self.make(files) if self.make is not None else None
        except TlsError as exc:
            self.report(f"sni-dir: {name}: {exc} (the default certificate answers)")
            ctx = None
        except Exception as exc:  # noqa: BLE001 -- never raise into OpenSSL's callback
            self.report(f"sni-dir: {name}: {exc!r} (the default certificate answers)")
            ctx = None
        if len(self.from_dir) < DIR_CACHE:
            self.from_dir[name] = ctx
        return ctx


def _at(parse, option: str, index: int):
    try:
        return parse()
    except TlsError as exc:
        exc.option, exc.index = option, index
        raise
