"""The ASGI ``http`` scope of a request, from its CGI variables.

Theory of operation
-------------------
Every wire protocol (HTTP parsed here, or uwsgi, FastCGI, SCGI from a proxy)
gives a request as CGI variables (``protocols.base.Request.environ``);
``http_scope`` turns them into ASGI's scope: headers as HTTP's parser kept them
(``Request.headers``, asked for with ``keep_headers``: no round trip through the
variables, repeated fields apart), else back from the variables as lower-case
byte names (``HTTP_X_FOO`` -> ``x-foo``, plus content-type and content-length),
``path`` = ``root_path`` (``SCRIPT_NAME``) + ``PATH_INFO`` decoded as UTF-8
(ASGI's rule; Starlette strips ``root_path`` itself), ``raw_path`` from
``REQUEST_URI``, the scheme as a WSGI app would see it, ``client`` and
``server``, and a shallow copy of the lifespan ``state``.

Must not know: sockets, the loop, protocol names.
"""

from __future__ import annotations

from ..wsgi import url_scheme

__all__ = ["ASGI_VERSION", "http_scope"]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}


NAMES: dict[str, bytes] = {}  # HTTP_X_FOO -> b"x-foo", the names seen (bounded)
NAMES_MAX = 256


def http_scope(
    env: dict,
    state: dict,
    headers: list | None = None,
    client: tuple | None = None,
    scheme: str | None = None,
    target: tuple | None = None,
) -> dict:
    """The ``http`` scope of a request from its CGI variables (as the protocol
    parsed them, or as the proxy sent them). ``headers``: the fields as HTTP's
    parser kept them (``Request.headers``), else they are made from the ``HTTP_*``
    variables; ``client``: (address, port) when the socket's peer is the client,
    else it is read from ``REMOTE_ADDR`` and ``REMOTE_PORT``; ``scheme``: when
    the socket says it (plain HTTP: ``http``), else as a WSGI app would see it;
    ``target``: (raw path, query, HTTP version) as HTTP's parser read them
    (``Request.target``), else they come from the variables."""
    if headers is None:
        names = NAMES
        headers = [
            (names.get(key) or header_name(key), value.encode("latin-1"))
            for key, value in env.items()
            if key.startswith("HTTP_")
        ]
        ctype = env.get("CONTENT_TYPE")
        if ctype:
            headers.append((b"content-type", ctype.encode("latin-1")))
        clen = env.get("CONTENT_LENGTH")
        if clen:
            headers.append((b"content-length", clen.encode("latin-1")))
    root = env["SCRIPT_NAME"] if "SCRIPT_NAME" in env else ""
    path = env.get("PATH_INFO", "")
    if root:
        path = root + path
    if target is None:
        uri = env.get("REQUEST_URI")
        raw_path = uri.partition("?")[0].encode("latin-1") if uri else path.encode("latin-1")
        query = env.get("QUERY_STRING", "").encode("latin-1")
        version = env.get("SERVER_PROTOCOL", "HTTP/1.1")
        version = VERSIONS.get(version) or (version[5:] if version[:5] == "HTTP/" else "1.1")
    else:
        raw_path, query, version = target
    if scheme is None:
        scheme = url_scheme(env)
    if client is None:
        addr = env.get("REMOTE_ADDR")
        if addr:
            try:
                client = (addr, int(env.get("REMOTE_PORT") or 0))
            except ValueError:
                client = (addr, 0)
    server = _server(env.get("SERVER_NAME", ""), env.get("SERVER_PORT"))
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": version,
        "method": env.get("REQUEST_METHOD", "GET"),
        "scheme": scheme,
        "path": path if path.isascii() else path.encode("latin-1").decode("utf-8", "replace"),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root if root.isascii() else root.encode("latin-1").decode("utf-8", "replace"),
        "headers": headers,
        "client": client,
        "server": server,
        "state": dict(state) if state else {},
    }


VERSIONS = {"HTTP/1.1": "1.1", "HTTP/1.0": "1.0"}
SERVERS: dict[tuple[str, str | None], tuple[str, int] | None] = {}  # the ones seen (bounded)
SERVERS_MAX = 256


def _server(name: str, port: str | None) -> tuple[str, int] | None:
    """(SERVER_NAME, SERVER_PORT as an int); None for a port that is no number."""
    try:
        return SERVERS[name, port]
    except KeyError:
        pass
    try:
        found: tuple[str, int] | None = (name, int(port or 0))
    except ValueError:
        found = None
    if len(SERVERS) < SERVERS_MAX:
        SERVERS[name, port] = found
    return found


def header_name(key: str) -> bytes:
    """``HTTP_X_FOO`` -> ``b"x-foo"``, kept for the next request (up to ``NAMES_MAX``)."""
    name = key[5:].replace("_", "-").lower().encode("latin-1")
    if len(NAMES) < NAMES_MAX:
        NAMES[key] = name
    return name
