"""What HTTP request header fields become in CGI variables: a field name's
variable (``User-Agent`` -> ``HTTP_USER_AGENT``, none for a name with ``_``,
which would alias the ``-`` form) and, for a parser that keeps the fields too,
its lower-case name; and a Host field's SERVER_NAME and
SERVER_PORT. Both are cached (bounded): a site sees few distinct names and hosts;
a Host without a port of its own is never cached (its port is the socket's).

Must not know: llhttp, sockets, the sink.
"""

from __future__ import annotations

__all__ = ["CACHED_NAMES", "CGI_NAMES", "FIELDS", "cgi_name", "field", "server_of", "split_host"]

# how many distinct field names each cache keeps (a client can send any number;
# past the bound a name is worked out again each time)
CACHED_NAMES = 512

# request header name (bytes, as sent) -> CGI variable name; filled lazily
CGI_NAMES: dict[bytes, str | None] = {
    b"Content-Type": "CONTENT_TYPE",
    b"Content-Length": "CONTENT_LENGTH",
}

# Host header -> (SERVER_NAME, SERVER_PORT): a site sees few distinct hosts
HOSTS: dict[str, tuple[str, str]] = {}


# request header name (bytes, as sent) -> (CGI variable name, lower-case name), for
# a parser that also keeps the fields (an ASGI scope's headers); filled lazily
FIELDS: dict[bytes, tuple[str | None, bytes]] = {}


def field(name: bytes) -> tuple[str | None, bytes]:
    """``User-Agent`` -> (``HTTP_USER_AGENT``, ``user-agent``); the variable is None
    for names that must be dropped. For a name not in ``FIELDS`` (the caller looks
    there first)."""
    cgi = CGI_NAMES[name] if name in CGI_NAMES else cgi_name(name)
    found = (cgi, name.lower())
    if len(FIELDS) < CACHED_NAMES:
        FIELDS[name] = found
    return found


def cgi_name(name: bytes) -> str | None:
    """``User-Agent`` -> ``HTTP_USER_AGENT``; None for names that must be dropped.
    For a name not in ``CGI_NAMES`` (the caller looks there first)."""
    text = name.decode("latin-1")
    low = text.lower()
    if low == "content-type":
        cgi: str | None = "CONTENT_TYPE"
    elif low == "content-length":
        cgi = "CONTENT_LENGTH"
    elif "_" in text:
        # ``X_Forwarded_For`` and ``X-Forwarded-For`` would both become
        # HTTP_X_FORWARDED_FOR: drop the underscore form (as nginx and gunicorn do).
        cgi = None
    else:
        cgi = "HTTP_" + text.upper().replace("-", "_")
    if len(CGI_NAMES) < CACHED_NAMES:
        CGI_NAMES[name] = cgi
    return cgi


def split_host(host: str, default_port: str) -> tuple[str, str]:
    """``example.com:8080`` -> (name, port); ``[::1]:80`` keeps the brackets."""
    if ":" not in host:
        return host, default_port
    if host[0] == "[":
        end = host.find("]") + 1
        rest = host[end:]
        return host[:end], rest[1:] if rest[:1] == ":" and rest[1:] else default_port
    name, colon, port = host.partition(":")
    return name, port if colon and port else default_port


def server_of(host: str, socket_port: str) -> tuple[str, str]:
    """(SERVER_NAME, SERVER_PORT) of a Host field that came in on a socket of
    ``socket_port``; kept for the next request when the port is the host's own
    (``[::1]`` and ``name:`` take each socket's port)."""
    parts = HOSTS.get(host)
    if parts is None:
        parts = split_host(host, socket_port)
        if len(HOSTS) < 256 and f"{parts[0]}:{parts[1]}" == host:
            HOSTS[host] = parts
    return parts
