"""Forwarded headers believed only from trusted proxies (``forwarded-allow-ips``,
gunicorn's semantics): ``X-Forwarded-For``, ``X-Forwarded-Proto``,
``X-Forwarded-Host`` and RFC 7239 ``Forwarded``.

Theory of operation
-------------------
``apply(environ, trusted)`` is called once per request, after the environ is
complete, only where the option is set. When the request's ``REMOTE_ADDR``
(the socket's peer, or the PROXY header's client) is not in ``trusted``,
nothing changes: the headers stay plain ``HTTP_*`` variables the app may read
but nothing believes. From a trusted peer:

* the client is the first hop from the right that is not itself trusted
  (each proxy appends the address it received from); hops are read right to
  left and the walk stops at the first untrusted one, at a hop that is not an
  address (what is left of it is whatever the client wrote) or after
  ``MAX_HOPS``, so a list of 1,000 hops costs one split and a bounded walk;
* the scheme is the rightmost value of the proto (``http`` or ``https``;
  anything else is ignored), with ``HTTPS=on`` for ``https``;
* the host is the rightmost value of the host, when it is a plausible host.

``Forwarded`` (RFC 7239), when present, is read instead of the ``X-`` family:
its elements' ``for=`` (quoted, bracketed IPv6, with or without a port; an
obfuscated or ``unknown`` node ends the walk), ``proto=`` and ``host=``.
The header names with underscores never arrive here (``protocols.http``
drops them), so they cannot spoof these.

Must not know: sockets, options, where ``trusted`` came from.
"""

from __future__ import annotations

import ipaddress
import re

from .networks import Networks

__all__ = ["MAX_HOPS", "apply"]

MAX_HOPS = 32
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


def apply(environ: dict, trusted: Networks) -> None:
    """Believe the forwarded headers of a trusted peer; see the module."""
    peer = environ.get("REMOTE_ADDR", "")
    if not trusted.contains(peer):
        return
    forwarded = environ.get("HTTP_FORWARDED")
    if forwarded is not None:
        hops, protos, hosts = _rfc7239(forwarded)
    else:
        xff = environ.get("HTTP_X_FORWARDED_FOR")
        hops = xff.rsplit(",", MAX_HOPS)[-MAX_HOPS:] if xff else []
        proto = environ.get("HTTP_X_FORWARDED_PROTO")
        protos = [proto.rpartition(",")[2]] if proto else []
        host = environ.get("HTTP_X_FORWARDED_HOST")
        hosts = [host.rpartition(",")[2]] if host else []
    client = _client(hops, trusted)
    if client is not None:
        environ["REMOTE_ADDR"], port = client
        if port is not None:
            environ["REMOTE_PORT"] = port
    if protos:
        scheme = protos[-1].strip().lower()
        if scheme in ("http", "https"):
            environ["wsgi.url_scheme"] = scheme
            if scheme == "https":
                environ["HTTPS"] = "on"
            else:
                environ.pop("HTTPS", None)
    if hosts:
        host = hosts[-1].strip()
        if _HOST.fullmatch(host):
            environ["HTTP_HOST"] = host


def _client(hops: list[str], trusted: Networks) -> tuple[str, str | None] | None:
    """The first untrusted hop from the right (or the leftmost when all are
    trusted), as (address, port or None); None when no hop is an address."""
    found = None
    for raw in reversed(hops[-MAX_HOPS:]):
        hop = _address(raw.strip())
        if hop is None:
            break
        found = hop
        if not trusted.contains(hop[0]):
            break
    return found


def _address(text: str) -> tuple[str, str | None] | None:
    """``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80`` -> (address, port)."""
    port = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit() and len(rest) <= 6:
            port = rest[1:]
        elif rest:
            return None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not (port.isdigit() and len(port) <= 5):
            return None
    else:
        host = text
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(ip), port


def _rfc7239(value: str) -> tuple[list[str], list[str], list[str]]:
    """The ``for``, ``proto`` and ``host`` parameters of the last ``MAX_HOPS``
    elements of a ``Forwarded`` header, quotes removed."""
    hops: list[str] = []
    protos: list[str] = []
    hosts: list[str] = []
    for element in value.rsplit(",", MAX_HOPS)[-MAX_HOPS:]:
        for pair in element.split(";"):
            name, eq, val = pair.partition("=")
            if not eq:
                continue
            name = name.strip().lower()
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] == '"':
                val = val[1:-1]
            if name == "for":
                hops.append(val)
            elif name == "proto":
                protos.append(val)
            elif name == "host":
                hosts.append(val)
    return hops, protos, hosts
