"""Listening sockets: what the config asks for, bound or inherited.

Owns: turning socket options (``http-socket``, ``socket``/``uwsgi-socket``,
``fastcgi-socket``, ``scgi-socket``, ``http``) into ``Listener`` objects, binding
TCP (``host:port``, ``:port``, ``[::1]:port``) and unix sockets (paths and
``@abstract`` names), ``listen`` backlog, ``chmod-socket``/``chown-socket``,
``vacuum``, and inheriting sockets: from systemd (``LISTEN_FDS``/``LISTEN_PID``)
and from a master that re-executed itself for a reload (``PROCMASTER_FDS``).

Must not know: protocols or WSGI (a listener carries its protocol's *name*).
"""

from __future__ import annotations

import errno
import os
import socket
import stat

from .ipc import FDS_ENV
from .options import parse_address, socket_options
from .transports.networks import Networks

__all__ = [
    "Listener",
    "SocketError",
    "bind_all",
    "bind_stream",
    "check_transports",
    "sockaddr",
    "socket_specs",
]

SD_LISTEN_FDS_START = 3


class SocketError(Exception):
    """A socket could not be set up; the message names the config line."""


class Listener:
    """A socket the config declares (or one handed over), bound or not yet.
    (A plain class: ``dataclasses`` would cost every start its imports.)"""

    __slots__ = ("option", "address", "proto", "origin", "sock", "family", "inherited")
    __slots__ += ("unix_path", "extra")

    def __init__(
        self,
        option: str,
        address: str,
        proto: str,
        origin: str,
        sock: socket.socket | None = None,
        family: int = socket.AF_INET,
        inherited: bool = False,  # handed over by systemd: never unlinked by us
        unix_path: str | None = None,
        extra: dict | None = None,
    ) -> None:
        self.option, self.address, self.proto, self.origin = option, address, proto, origin
        self.sock, self.family, self.inherited = sock, family, inherited
        self.unix_path = unix_path
        self.extra = {} if extra is None else extra

    def __repr__(self) -> str:
        return f"Listener({self.option} {self.address} {self.proto} at {self.origin})"

    @property
    def name(self) -> str:
        return self.address

    def fileno(self) -> int:
        assert self.sock is not None
        return self.sock.fileno()


# socket options whose value is ADDR,CERT,KEY[,CIPHERS[,CA]] (uWSGI's https-socket)
TLS_OPTIONS = frozenset({"https", "https-socket", "ssl-socket"})
# socket options of uWSGI's HTTP router (http-enable-proxy-protocol applies to them)
ROUTER_OPTIONS = frozenset({"http", "https"})


def _tls():
    """``transports.tls``, imported only when a TLS socket or ``sni`` is configured:
    it loads ``ssl`` (milliseconds at start and memory in every process), which a
    site without TLS never uses."""
    from .transports import tls

    return tls


def _sni():
    """``transports.sni``, imported only when ``sni``/``sni-regexp``/``sni-dir`` is
    set (as ``_tls``: it loads ``ssl``)."""
    from .transports import sni

    return sni


def socket_specs(cfg) -> list[Listener]:
    """Every socket the config declares, in declaration order across options (the
    table says which options declare sockets and the protocol each one speaks).
    A TLS socket's certificate fields go to ``extra["tls"]`` (``TlsFiles``);
    ``extra["proxy"]`` is true where a PROXY protocol header comes first.
    Raises ``SocketError`` for fields that cannot be right."""
    protocols = socket_options()
    forced = default_protocol(cfg, set(protocols.values()))
    specs = []
    for e in cfg.entries:
        if e.key not in protocols:
            continue
        proto = forced if e.key == "socket" else protocols[e.key]
        spec = Listener(e.key, e.value.strip(), proto, e.origin)
        if e.key in TLS_OPTIONS:
            address, *fields = spec.address.split(",")
            spec.address = address.strip()
            tls = _tls()
            try:
                spec.extra["tls"] = tls.TlsFiles.parse(fields)
            except tls.TlsError as exc:
                raise SocketError(f"{e.origin}: option '{e.key}': {exc}") from None
        if cfg.enable_proxy_protocol or (
            cfg.http_enable_proxy_protocol and e.key in ROUTER_OPTIONS
        ):
            spec.extra["proxy"] = True
        specs.append(spec)
    return specs


def check_transports(cfg, specs: list[Listener]) -> None:
    """What the transport layers need, checked before anything is bound: a
    PROXY protocol socket needs the networks it trusts; a TLS socket's
    certificate and key load and match, and each ``sni``/``sni-regexp``
    context's; ``sni-dir`` is a directory. Raises ``SocketError`` (file:line)."""
    for name in ("proxy-allow-ips", "forwarded-allow-ips"):
        values = cfg.get(name)
        if values:
            try:
                Networks.parse(values)
            except ValueError as exc:
                raise SocketError(f"{cfg.origin(name)}: option '{name}': {exc}") from None
    for spec in specs:
        if spec.extra.get("proxy") and not cfg.proxy_allow_ips:
            flag = (
                "enable-proxy-protocol"
                if cfg.enable_proxy_protocol
                else ("http-enable-proxy-protocol")
            )
            raise SocketError(
                f"{cfg.origin(flag)}: option '{flag}': set proxy-allow-ips to the load "
                "balancers' addresses or networks (e.g. 10.0.0.0/8): anyone able to reach "
                "the socket could otherwise claim any client address"
            )
        files = spec.extra.get("tls")
        if files is not None:
            tls = _tls()
            try:
                tls.context(files)
            except tls.TlsError as exc:
                raise SocketError(f"{spec.origin}: option '{spec.option}': {exc}") from None
    if not (cfg.sni or cfg.sni_regexp or cfg.sni_dir):
        return
    tls, sni = _tls(), _sni()
    try:  # sni, sni-regexp, sni-dir: each value parses, each context loads
        table = sni.SniTable.parse(cfg.sni or [], cfg.sni_regexp or [], cfg.sni_dir,
                                   cfg.sni_dir_ciphers)  # fmt: skip
        for option, entries in (("sni", table.exact), ("sni-regexp", table.regexps)):
            for i, (_name, files) in enumerate(entries):
                try:
                    tls.context(files)
                except tls.TlsError as exc:
                    exc.option, exc.index = option, i
                    raise
    except tls.TlsError as exc:
        option, i = getattr(exc, "option", "sni"), getattr(exc, "index", 0)
        raise SocketError(f"{cfg.origin(option, i)}: option '{option}': {exc}") from None


def default_protocol(cfg, known: set[str]) -> str:
    """What sockets declared with ``socket`` speak: uwsgi, or the ``protocol``
    option's (``http11`` is ``http``). Raises ``SocketError`` for one we lack."""
    name = cfg.protocol or "uwsgi"
    name = "http" if name == "http11" else name
    if name not in known:
        raise SocketError(
            f"{cfg.origin('protocol')}: option 'protocol': {name!r} is not a protocol "
            f"procmaster speaks ({', '.join(sorted(known))})"
        )
    return name


def _sockname_key(sock: socket.socket) -> tuple:
    name = sock.getsockname()
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    if isinstance(name, tuple):
        name = name[:2]
    return (sock.family, name)


def _addr_key(family: int, addr) -> tuple:
    if family == socket.AF_UNIX:
        path = addr if addr.startswith("\0") else os.path.abspath(addr)
        return (family, path)
    host, port = addr
    if family == socket.AF_INET:
        try:  # an address already (no resolver call, no idna codec loaded)
            socket.inet_pton(socket.AF_INET, host)
        except OSError:
            try:
                host = socket.gethostbyname(host)
            except OSError:
                pass
    return (family, (host, port))


def _inherited_sockets(environ) -> list[tuple[socket.socket, bool]]:
    """Sockets handed to us, each with whether systemd owns it. Our own previous
    image (after a reload) hands over ``fd`` or ``fd:systemd`` (a socket systemd
    gave it: still systemd's). systemd's own are taken only when LISTEN_PID is
    our pid, as sd_listen_fds(3) does: without it fds 3.. are not for us."""
    socks = []
    mine = environ.pop(FDS_ENV, None)
    if not mine:
        zero = _stdin_listener()
        if zero is not None:  # an emperor's on-demand socket (uWSGI hands it as fd 0)
            socks.append((zero, True))
    if mine:
        for entry in mine.split(","):
            fd, _, owner = entry.strip().partition(":")
            if fd.isdigit():
                socks.append((socket.socket(fileno=int(fd)), owner == "systemd"))
    pid = environ.get("LISTEN_PID")
    count = environ.get("LISTEN_FDS")
    if count and count.isdigit() and pid == str(os.getpid()):
        for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)):
            try:
                socks.append((socket.socket(fileno=fd), True))
            except OSError:
                continue
        for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            environ.pop(key, None)
    return socks


def _stdin_listener() -> socket.socket | None:
    """fd 0 when it is a listening stream socket, else None (fd 0 untouched)."""
    try:
        if not stat.S_ISSOCK(os.fstat(0).st_mode):
            return None
        sock = socket.socket(fileno=0)
    except OSError:
        return None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError:
        listening = 0
    if not listening or sock.type != socket.SOCK_STREAM:
        sock.detach()
        return None
    return sock


def bind_all(cfg, environ=os.environ) -> list[Listener]:
    """Bind (or take over) every configured socket. Raises ``SocketError``.

    With inherited sockets and no socket in the config, the inherited ones are
    served with the uwsgi protocol (what nginx in front of a socket-activated
    unit speaks), or HTTP when ``http-socket`` is set without an address."""
    specs = socket_specs(cfg)
    check_transports(cfg, specs)
    inherited = {_sockname_key(s): (s, sd) for s, sd in _inherited_sockets(environ)}
    listeners: list[Listener] = []
    created: list[str] = []  # unix socket files bound here: removed if start-up fails
    try:
        for spec in specs:
            try:
                family, addr = sockaddr(spec.address)
            except ValueError as exc:
                raise SocketError(f"{spec.origin}: option '{spec.option}': {exc}") from None
            spec.family = family
            key = _addr_key(family, addr)
            sock, from_systemd = inherited.pop(key, (None, False))
            if sock is not None:
                spec.sock = sock
                spec.inherited = from_systemd
            else:
                spec.sock = _bind(spec, family, addr, cfg)
                if family == socket.AF_UNIX and not addr.startswith("\0"):
                    created.append(addr)
            if family == socket.AF_UNIX and not addr.startswith("\0"):
                spec.unix_path = os.path.abspath(addr)
            spec.sock.setblocking(False)
            listeners.append(spec)
        if not specs and inherited:
            # socket activation with a config that names no socket: serve what we got
            default = (
                "http"
                if cfg.get("http-socket")
                else default_protocol(cfg, set(socket_options().values()))
            )
            for sock, from_systemd in inherited.values():
                sock.setblocking(False)
                listeners.append(
                    Listener(
                        "socket",
                        _describe(sock),
                        default,
                        "LISTEN_FDS",
                        sock,
                        sock.family,
                        from_systemd,
                    )
                )
            inherited.clear()
        for key, (sock, owned) in list(inherited.items()):
            if sock.fileno() == 0:  # fd 0 named by no socket option: served as uWSGI does
                del inherited[key]
                sock.setblocking(False)
                listeners.append(
                    Listener("socket", _describe(sock), "uwsgi", "fd 0", sock, sock.family, owned)
                )
    except BaseException:
        for listener in listeners:
            if listener.sock is not None and not listener.inherited:
                listener.sock.close()
        for path in created:
            _unlink(path)
        raise
    for sock, _ in inherited.values():
        sock.close()
    if not listeners:
        raise SocketError(
            "no socket configured: set 'http-socket' (e.g. :8000), 'socket' (uwsgi protocol for nginx) or 'fastcgi-socket'"
        )
    return listeners


def _describe(sock: socket.socket) -> str:
    """A bound socket's address as a config would write it."""
    name = sock.getsockname()
    if isinstance(name, bytes):  # Linux gives abstract names as bytes
        name = name.decode("latin-1")
    if isinstance(name, str):
        return "@" + name[1:] if name.startswith("\0") else name
    if sock.family == socket.AF_INET6:
        return f"[{name[0]}]:{name[1]}"
    return f"{name[0]}:{name[1]}"


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _bind(spec: Listener, family: int, addr, cfg) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    bound = False
    try:
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if cfg.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        elif not addr.startswith("\0"):
            _clear_stale(addr, probe=True)
        sock.bind(addr)
        bound = True
        if family == socket.AF_UNIX and not addr.startswith("\0"):
            _apply_socket_perms(spec, addr, cfg)
        sock.listen(cfg.listen)
    except OSError as exc:
        sock.close()
        if bound and family == socket.AF_UNIX and not addr.startswith("\0"):
            _unlink(addr)  # bound, then chmod or listen failed: leave no file behind
        why = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            why = "address already in use (another server is listening there)"
        elif exc.errno == errno.ENOENT and family == socket.AF_UNIX:
            why = f"directory {os.path.dirname(os.path.abspath(addr))!r} does not exist"
        elif exc.errno == errno.EACCES:
            why = "permission denied"
        raise SocketError(
            f"{spec.origin}: option '{spec.option}': cannot bind {spec.address}: {why}"
        ) from None
    return sock


def _clear_stale(path: str, probe: bool) -> None:
    """Remove a leftover unix socket file, never another kind of file. With
    ``probe``, only when nobody listens on it (as uWSGI does on bind): a live one is
    ``EADDRINUSE``. Without, unconditionally (a service socket of our own)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, f"{path!r} exists and is not a socket")
    if probe:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            client.connect(path)
        except OSError:
            pass
        else:
            raise OSError(errno.EADDRINUSE, "in use")
        finally:
            client.close()
    os.unlink(path)


def _apply_socket_perms(spec: Listener, path: str, cfg) -> None:
    mode = cfg.get("chmod-socket")
    if mode is not None:
        os.chmod(path, mode)
    owner = cfg.get("chown-socket")
    if owner:
        import grp
        import pwd

        user, _, group = owner.partition(":")
        uid = int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
        gid = -1
        if group:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        os.chown(path, uid, gid)


def export_fds(listeners: list[Listener], environ) -> None:
    """Make the sockets survive ``exec`` of a reloading master."""
    fds = []
    for listener in listeners:
        fd = listener.fileno()
        os.set_inheritable(fd, True)
        # systemd's sockets stay systemd's in the next image (vacuum spares them)
        fds.append(f"{fd}:systemd" if listener.inherited else str(fd))
    environ[FDS_ENV] = ",".join(fds)


def vacuum(listeners: list[Listener]) -> None:
    """Remove the unix socket files we created."""
    for listener in listeners:
        if listener.unix_path and not listener.inherited:
            try:
                os.unlink(listener.unix_path)
            except OSError:
                pass


def sockaddr(text: str) -> tuple[int, object]:
    """``(family, sockaddr)`` for an address as options write it, ready for
    ``socket.bind``: ``''`` as host (``:port``) is every interface. Built on the one
    parser, ``procmaster.options.parse_address`` (uWSGI 2.0's rules). Raises
    ``ValueError``."""
    addr = parse_address(text)
    if addr.kind == "abstract":
        return socket.AF_UNIX, "\0" + addr.path
    if addr.kind == "unix":
        return socket.AF_UNIX, addr.path
    if addr.ipv6:
        return socket.AF_INET6, (addr.host or "::", addr.port)
    return socket.AF_INET, (addr.host or "0.0.0.0", addr.port)


def bind_stream(text: str, backlog: int = 64, mode: int | None = None) -> socket.socket:
    """A listening stream socket (close-on-exec, non-blocking) for a service of the
    master or the emperor (stats, emperor-stats): a stale unix socket file is
    replaced; a unix socket file gets ``mode`` (``chmod-socket``) before it listens.
    Raises ``ValueError`` (bad address) or ``OSError``."""
    family, addr = sockaddr(text)
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        if family == socket.AF_UNIX:
            if not addr.startswith("\0"):
                _clear_stale(addr, probe=False)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        if mode is not None and family == socket.AF_UNIX and not addr.startswith("\0"):
            os.chmod(addr, mode)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
