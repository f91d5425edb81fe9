"""The modules a plain site (an HTTP socket, a WSGI app, a master, nothing else)
must not load, each with the options that do load it (tests/unit/test_lazy_imports.py,
tests/e2e/test_worker_lazy_imports.py)."""

# module -> the options that load it
LAZY = {
    "ssl": "https-socket, sni",
    "procmaster.transports.tls": "https-socket, sni",
    "procmaster.worker.transport": "https-socket, enable-proxy-protocol, forwarded-allow-ips",
    "procmaster.stats": "stats, stats-push, carbon",
    "procmaster.stats.push": "stats-push, carbon",
    "procmaster.watch": "touch-*, py-autoreload",
    "inotify_simple": "touch-*, py-autoreload",
    "email": "static files (dates)",
    "mimetypes": "static files",
    "subprocess": "attach-daemon, cron, exec-* hooks, a full reload's probe",
    "gzip": "log-encoder gzip",
    "secrets": "(nothing: os.urandom names temporaries)",
    "hmac": "basicauth routes",
    "http": "route lines with a bare status code",
    "dataclasses": "(nothing: plain classes)",
    "inspect": "asgi",
    "procmaster.check": "--check",
    "procmaster.emperor": "emperor",
    "procmaster.routing.auth": "basicauth routes",
    "procmaster.worker.asgi": "asgi",
    "procmaster.protocols.websocket": "a WebSocket upgrade",
    "wsproto": "a WebSocket upgrade",
    "asyncio": "asgi",
    "psutil": "evil-reload-on-rss/-as",
    "procmaster.api.spooler": "spooler",
}
