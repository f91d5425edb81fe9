"""The option table: every procmaster option, declared once, as data.

Theory of operation
-------------------
One ``Option`` row per option (see ``procmaster.options.model`` for the fields),
grouped as ``--help`` and docs/options.md show them (``GROUPS``, in order). A row
says everything about its option: type and default (so ``Config`` hands out typed
values and no caller re-coerces or re-defaults them), status and note, the
protocol of a socket option, the action of a watched-path option. Whoever
implements a feature flips its ``status`` in the same commit.

This file is data; it may be longer than the house's ~500 lines.

Must not know: how values are converted or looked up, files, sockets or processes.
"""

from __future__ import annotations

from .model import ACCEPTED, FULL, NOT_YET, PARTIAL, UNSUPPORTED, Option

GROUPS = (
    "Configuration",
    "Sockets",
    "Processes",
    "Application",
    "Requests",
    "Logging",
    "Process names",
    "Reloading and limits",
    "Static files",
    "Master, control and stats",
    "Daemons and background work",
    "Privileges and daemonizing",
    "Other uWSGI subsystems",
    "Command line",
)

_O = Option
# fmt: off
_CONF, _SOCK, _PROC, _APP, _REQ, _LOG, _NAME, _RELOAD, _STATIC, _MASTER, _BG, _PRIV, _OTHER, _CLI = GROUPS

_PROCNAME_NOTE = ("sets the kernel's process name (ps -o comm, top, pstree: 15 characters), "
                  "not the whole command line")
_CONVERT_TO_INI = "only INI configuration is read; convert this file to INI"

OPTIONS: tuple[Option, ...] = (
    # -- Configuration ---------------------------------------------------------
    _O("ini", "ini", "load config from an INI file: FILE[:section] ([uwsgi] by default; "
       "':section' alone reads another section of the same file). Inside an INI, relative "
       "to that file", multi=True, group=_CONF),
    _O("inherit", "ini", "read another INI file as a base for this one", multi=True,
       group=_CONF, status=PARTIAL,
       note="read at the line where it appears, like ini (uWSGI 2.0 applies it after the "
       "rest of the config); INI only"),
    _O("include", "ini", "include another config file at this point", multi=True, group=_CONF,
       status=PARTIAL, note="INI files only"),
    _O("set", "keyval", "set an option or a placeholder: set = NAME=VALUE", short="S",
       multi=True, group=_CONF),
    _O("set-placeholder", "keyval", "set a placeholder (a custom key for %(NAME)), also "
       "allowed in strict mode: set-placeholder = NAME=VALUE", aliases=("set-ph",),
       multi=True, group=_CONF),
    _O("strict", "bool", "make unknown and ignored options fatal (custom keys must be "
       "declared with set-placeholder)", default=False, group=_CONF),
    _O("xml", "ini", "load config from an XML file", aliases=("xmlconfig",), short="x",
       group=_CONF, status=UNSUPPORTED, blocking=True, note=_CONVERT_TO_INI),
    _O("yaml", "ini", "load config from a YAML file", aliases=("yml",), short="y",
       group=_CONF, status=UNSUPPORTED, blocking=True, note=_CONVERT_TO_INI),
    _O("json", "ini", "load config from a JSON file", aliases=("js",), short="j",
       group=_CONF, status=UNSUPPORTED, blocking=True, note=_CONVERT_TO_INI),
    _O("config", "ini", "load config using the pluggable system", group=_CONF,
       status=UNSUPPORTED, blocking=True, note=_CONVERT_TO_INI),
    _O("declare-option", "str", "declare a new custom option", aliases=("declare-option2",),
       group=_CONF, status=UNSUPPORTED, blocking=True,
       note="write the options it stands for; use placeholders for shared values"),
    # config logic (procmaster.config.logic): a block's test runs again at every line
    # inside it, as in uWSGI 2.0; blocks nest (a procmaster extension, with a warning)
    _O("if-env", "str", "read the lines up to endif if environment variable NAME is set "
       "(NAME=VALUE: set to VALUE); %(_) is its value", aliases=("ifenv",), group=_CONF),
    _O("if-not-env", "str", "read the lines up to endif if environment variable NAME is "
       "not set (NAME=VALUE: not set to VALUE)", group=_CONF),
    _O("if-opt", "str", "read the lines up to endif if option NAME was set above "
       "(NAME=VALUE: set to VALUE); %(_) is its value", group=_CONF, status=PARTIAL,
       note="aliases count (if-opt = processes sees workers) and the latest value is "
       "tested; uWSGI 2.0 matches the name as written and tests the first value"),
    _O("if-not-opt", "str", "read the lines up to endif if option NAME was not set above "
       "(NAME=VALUE: not set to VALUE)", group=_CONF, status=PARTIAL,
       note="as if-opt; the test runs again at every line, so a block that sets NAME "
       "skips its later lines (uWSGI's reading, said in a warning)"),
    _O("if-exists", "str", "read the lines up to endif if the path exists; %(_) is the "
       "path", aliases=("ifexists",), group=_CONF),
    _O("if-not-exists", "str", "read the lines up to endif if the path does not exist",
       group=_CONF),
    _O("if-file", "str", "read the lines up to endif if the path is a regular file",
       group=_CONF),
    _O("if-not-file", "str", "read the lines up to endif if the path is not a regular "
       "file", group=_CONF),
    _O("if-dir", "str", "read the lines up to endif if the path is a directory",
       aliases=("ifdir", "if-directory"), group=_CONF),
    _O("if-not-dir", "str", "read the lines up to endif if the path is not a directory",
       group=_CONF),
    _O("if-reload", "text", "read the lines up to endif only in a re-executed master "
       "(after a reload)", bare="", group=_CONF),
    _O("if-not-reload", "text", "read the lines up to endif only at the first start",
       bare="", group=_CONF),
    _O("if-hostname", "str", "read the lines up to endif if the host name is this",
       group=_CONF),
    _O("if-not-hostname", "str", "read the lines up to endif if the host name is not "
       "this", group=_CONF),
    _O("if-hostname-match", "str", "read the lines up to endif if the host name matches "
       "the regular expression", group=_CONF),
    _O("if-not-hostname-match", "str", "read the lines up to endif if the host name does "
       "not match the regular expression", group=_CONF),
    _O("if-plugin", "str", "read the lines up to endif if the plugin is loaded",
       aliases=("ifplugin",), group=_CONF, status=PARTIAL,
       note="true for the python plugins (python, python3, pypy ...), false for any other"),
    _O("if-not-plugin", "str", "read the lines up to endif if the plugin is not loaded",
       group=_CONF, status=PARTIAL, note="as if-plugin"),
    _O("for", "str", "repeat each line up to endfor once per space-separated word, with "
       "the word as %(_)", group=_CONF),
    _O("for-glob", "str", "repeat each line up to endfor once per path matching the "
       "pattern (%(_)); no match: the pattern itself, as uWSGI", group=_CONF),
    _O("for-times", "str", "repeat each line up to endfor N times, with 1..N as %(_)",
       group=_CONF),
    _O("for-readline", "str", "repeat each line up to endfor once per line of the file, "
       "with the line as %(_)", group=_CONF,
       note="a file that cannot be read is an error (uWSGI logs it and skips the block)"),
    _O("endif", "text", "end an if-* block", aliases=("end-if",), bare="", group=_CONF),
    _O("endfor", "text", "end a for block", aliases=("end-for",), bare="", group=_CONF),
    # -- Sockets ---------------------------------------------------------------
    _O("socket", "address", "bind to the specified UNIX/TCP socket using the default "
       "protocol (uwsgi)", short="s", multi=True, group=_SOCK, protocol="uwsgi"),
    _O("uwsgi-socket", "address", "bind to the specified UNIX/TCP socket using the uwsgi "
       "protocol", multi=True, group=_SOCK, protocol="uwsgi"),
    _O("http-socket", "address", "bind to the specified UNIX/TCP socket using HTTP "
       "(served by the workers directly)", multi=True, group=_SOCK, protocol="http"),
    _O("fastcgi-socket", "address", "bind to the specified UNIX/TCP socket using FastCGI",
       multi=True, group=_SOCK, protocol="fastcgi"),
    _O("scgi-socket", "address", "bind to the specified UNIX/TCP socket using SCGI",
       multi=True, group=_SOCK, protocol="scgi"),
    _O("http", "address", "add an HTTP router/server on the specified address", multi=True,
       group=_SOCK, status=PARTIAL,
       note="served by procmaster's workers directly, as http-socket (uWSGI starts a separate "
       "HTTP router process in front of the workers); said once at start-up", protocol="http"),
    _O("https", "str", "add an HTTPS router/server: ADDR,CERT,KEY[,CIPHERS[,CA]] (a CA makes "
       "clients present a certificate it verifies)", multi=True, group=_SOCK, status=PARTIAL,
       note="served by the workers directly (TLS in memory, in the event loop), as http = is; "
       "TLS 1.2+, ALPN http/1.1 (no HTTP/2: put a proxy that speaks it in front); CIPHERS "
       "empty keeps the defaults; certificate and key are read again on a graceful reload",
       protocol="http"),
    _O("https-socket", "str", "bind an HTTPS socket: ADDR,CERT,KEY[,CIPHERS[,CA]]", multi=True,
       group=_SOCK, status=PARTIAL, note="as https (the same settings)", protocol="http"),
    _O("ssl-socket", "str", "bind a uwsgi-protocol socket over TLS: "
       "ADDR,CERT,KEY[,CIPHERS[,CA]]", multi=True, aliases=("suwsgi-socket",), group=_SOCK,
       status=PARTIAL, note="as https, speaking the uwsgi protocol (nginx: uwsgi_pass with "
       "uwsgi_ssl on)", protocol="uwsgi"),
    _O("https2", "str", "add an HTTPS/SPDY router (key=value form)", multi=True, group=_SOCK,
       status=UNSUPPORTED, blocking=True,
       note="HTTP/2 is not served; use https = ADDR,CERT,KEY behind a proxy that speaks "
       "HTTP/2 (nginx, HAProxy, an ingress)"),
    _O("https-export-cert", "bool", "export the client certificate (PEM) as HTTPS_CC",
       default=False, group=_SOCK),
    _O("https-socket-modifier1", "int", "force the modifier1 of HTTPS requests", default=0,
       group=_SOCK, status=ACCEPTED, note="modifier1 picks a uWSGI plugin; procmaster serves "
       "Python alone"),
    _O("ssl-option", "int", "set a raw OpenSSL context option (SSL_OP_* number)", multi=True,
       group=_SOCK),
    _O("sni", "str", "add an SNI-governed TLS context: NAME,CERT,KEY[,CIPHERS[,CA]] (a "
       "client asking for NAME gets this certificate on every TLS socket)", multi=True,
       group=_SOCK),
    _O("sni-regexp", "str", "add an SNI-governed TLS context for the host names a regular "
       "expression matches: REGEXP CERT,KEY[,CIPHERS[,CA]] (or REGEXP,CERT,KEY...)", multi=True,
       group=_SOCK, note="Python's re, searched as uWSGI's PCRE (not anchored: write ^...$), "
       "case-insensitive, tried in order after the sni names; a pattern that does not compile "
       "stops the start"),
    _O("sni-dir", "path", "look for <name>.crt and <name>.key (and <name>.ca: clients must "
       "present a certificate it verifies) in this directory for a host name no sni or "
       "sni-regexp names", group=_SOCK,
       note="read at the first handshake naming a host, kept until the next reload; only a "
       "host name (letters, digits, - and _ in dot-separated labels) is looked up, so no "
       "name reads outside the directory; files that cannot be loaded are logged once and "
       "the default certificate answers; a .ca takes effect only on a socket with a CA of "
       "its own (Python's ssl cannot ask one connection for a certificate), else such a "
       "client is refused"),
    _O("sni-dir-ciphers", "str", "the ciphers of the contexts sni-dir makes (empty: the "
       "defaults)", group=_SOCK),
    _O("ssl-verify-depth", "int", "the most intermediate CAs a client certificate's chain may "
       "hold", default=1, group=_SOCK,
       note="uWSGI's default (1); checked on the verified chain once the handshake is done (a "
       "deeper chain is refused, logged with ssl-verbose)"),
    _O("ssl-tickets-rotate", "int", "renew the TLS session ticket keys every N seconds (0: "
       "never; they then live as long as the worker)", default=3600, group=_SOCK,
       note="a procmaster extension (uWSGI keeps one key per process): a fresh context with "
       "the same certificate, so a ticket resumes a session for at most N seconds; open "
       "connections keep their context; keys are also new at every reload and respawn. "
       "uWSGI's ssl-sessions-timeout sets a session cache's lifetime, which Python's ssl "
       "cannot set"),
    _O("ssl-verbose", "bool", "log every failed TLS handshake and TLS error", default=False,
       group=_SOCK),
    _O("ssl-enable-tlsv1", "bool", "allow TLS 1.0", default=False, group=_SOCK,
       status=UNSUPPORTED, note="TLS 1.2 is the minimum procmaster speaks"),
    _O("enable-proxy-protocol", "bool", "read a PROXY protocol header (v1 or v2) first on "
       "every TCP socket", default=False, group=_SOCK, status=PARTIAL,
       note="v1 and v2 (uWSGI 2.0 reads v1 on HTTP alone); needs proxy-allow-ips, and a "
       "connection from elsewhere is refused"),
    _O("http-enable-proxy-protocol", "bool", "read a PROXY protocol header first on the "
       "http/https router sockets", default=False, group=_SOCK, status=PARTIAL,
       note="as enable-proxy-protocol, for the sockets of http = and https = only"),
    _O("proxy-allow-ips", "str", "the load balancers whose PROXY protocol headers are "
       "believed: addresses, CIDR networks or * (comma or space separated; gunicorn's name)",
       multi=True, group=_SOCK, note="a procmaster extension; required by "
       "enable-proxy-protocol"),
    _O("forwarded-allow-ips", "str", "the proxies whose X-Forwarded-For/-Proto/-Host and "
       "Forwarded headers are believed: addresses, CIDR networks or * (gunicorn's name and "
       "meaning)", multi=True, group=_SOCK,
       note="a procmaster extension; REMOTE_ADDR becomes the first untrusted hop from the "
       "right, wsgi.url_scheme the forwarded proto"),
    _O("reuse-port", "bool", "set SO_REUSEPORT on TCP sockets (several servers share a port)",
       default=False, group=_SOCK),
    _O("http11-socket", "address", "bind an HTTP/1.1 keep-alive socket", multi=True,
       group=_SOCK, protocol="http",
       note="the same as http-socket: procmaster keeps HTTP/1.1 connections alive on every "
       "HTTP socket (idle timeout: http-keepalive)"),
    _O("raw-socket", "address", "bind a socket using the RAW protocol", multi=True,
       aliases=("puwsgi-socket", "fastcgi-nph-socket", "scgi-nph-socket", "shared-socket",
                "undeferred-shared-socket"),
       group=_SOCK, status=UNSUPPORTED, blocking=True,
       note=NOT_YET + "; use uwsgi-socket, http-socket or fastcgi-socket"),
    _O("protocol", "str", "the protocol of sockets declared with 'socket' (uwsgi, http, "
       "http11, fastcgi, scgi)", aliases=("socket-protocol",), group=_SOCK),
    _O("listen", "int", "set the socket listen queue size (backlog)", short="l", default=100,
       min=1, group=_SOCK),
    _O("chmod-socket", "mode", "chmod unix sockets (bare: 666)", aliases=("chmod",),
       short="C", bare=0o666, group=_SOCK),
    _O("chown-socket", "str", "chown unix sockets (user[:group])", group=_SOCK,
       note="applied when the socket is bound, before uid/gid are dropped"),
    _O("vacuum", "bool", "remove the unix sockets and pidfile procmaster created, on exit",
       default=False, group=_SOCK),
    _O("socket-timeout", "seconds", "set the timeout of client socket operations",
       short="z", default=4, group=_SOCK),
    _O("http-keepalive", "int", "HTTP/1.1 keep-alive on http-socket: 0 off, 1 on, more "
       "than 1 is the idle timeout in seconds", default=0, bare=1, group=_SOCK),
    _O("http-websockets", "bool", "enable WebSockets support on the HTTP router",
       default=False, group=_SOCK, status=ACCEPTED,
       note="WebSockets (uwsgi.websocket_handshake and friends) work on every http-socket "
       "and uwsgi-socket (behind nginx) without it; each upgraded connection runs its app "
       "in a thread of its own, so a worker holds many"),
    _O("websocket-max-size", "int", "the maximum size of a WebSocket message, in KiB",
       aliases=("websockets-max-size",), default=1024, min=1, group=_SOCK,
       note="a bigger message closes the WebSocket with 1009 (counted as it arrives, never "
       "buffered past the limit)"),
    _O("websocket-ping-freq", "seconds", "how often a WebSocket waiting in "
       "websocket_recv() pings its client", aliases=("websockets-ping-freq",), default=30,
       group=_SOCK),
    _O("websocket-pong-tolerance", "seconds", "how long to wait for the pong before the "
       "WebSocket is closed", aliases=("websockets-pong-tolerance",), default=3,
       group=_SOCK),
    # -- Processes -------------------------------------------------------------
    _O("master", "bool", "enable the master process", short="M", default=False,
       group=_PROC, note="procmaster always runs a master; the option is accepted either way"),
    _O("processes", "int", "spawn the specified number of workers", aliases=("workers",),
       short="p", default=1, min=1, group=_PROC),
    _O("threads", "int", "run each worker with the specified number of threads", default=1,
       min=1, group=_PROC,
       note="the app runs in N threads per worker while the event loop does the socket "
       "work; responses stream with the same back-pressure as without threads (a thread "
       "waits while its client is behind)"),
    _O("enable-threads", "bool", "enable Python threads", short="T", default=False,
       group=_PROC, status=ACCEPTED,
       note="Python threads always work in procmaster; there is nothing to enable"),
    _O("offload-threads", "int", "set the number of offload threads per worker", default=0,
       min=0, group=_PROC,
       note="static files and wsgi.file_wrapper responses are always sent by the "
       "worker's event loop (sendfile, as the client reads), never holding an app "
       "thread; no extra threads are needed, so N only has to be valid"),
    _O("single-interpreter", "bool", "do not use multiple interpreters", short="i",
       default=False, group=_PROC, status=ACCEPTED,
       note="procmaster always runs one interpreter per process"),
    _O("thunder-lock", "bool", "serialize accept() usage", default=False, group=_PROC,
       status=ACCEPTED, note="procmaster does not need an accept lock"),
    _O("no-orphans", "bool", "kill workers if the master dies", default=False, group=_PROC,
       status=ACCEPTED, note="procmaster workers always exit when their master dies"),
    _O("lazy-apps", "bool", "load the app in each worker instead of the master",
       default=False, group=_PROC),
    _O("lazy", "bool", "load the app in each worker instead of the master (older "
       "spelling)", store="lazy-apps", group=_PROC,
       note="same as lazy-apps in procmaster"),
    _O("cheaper", "int", "set cheaper mode (adaptive process spawning): the minimum number "
       "of workers", default=0, group=_PROC,
       note="processes/workers is the maximum"),
    _O("cheaper-initial", "int", "the number of workers to spawn at start in cheaper mode",
       default=0, group=_PROC),
    _O("cheaper-step", "int", "the number of workers to spawn at each overload", default=1,
       group=_PROC),
    _O("cheaper-algo", "str", "the algorithm for adaptive process spawning", group=_PROC,
       status=PARTIAL, note="only 'spare' (uWSGI's default); another name is a warning"),
    _O("cheaper-overload", "seconds", "spawn more workers after this overload", default=3,
       group=_PROC, note="also how long workers must stay idle before one is stopped"),
    _O("max-fd", "int", "set the maximum number of file descriptors (raising the hard "
       "limit needs root)", min=1, group=_PROC),
    _O("locks", "int", "create the specified number of shared locks (uwsgi.lock(N); "
       "lock 0 always exists)", default=0, min=0, group=_PROC),
    _O("gevent", "text", "run the gevent loop engine with the specified number of async "
       "cores", group=_PROC, prefixes=("gevent-",), status=UNSUPPORTED,
       note="no gevent loop and no threads instead: each worker's event loop reads many "
       "connections at once and calls the app for one complete request at a time; raise "
       "processes for concurrency (do not monkey-patch)"),
    # -- Application -------------------------------------------------------------
    _O("module", "str", "load a WSGI module (module[:callable])", aliases=("wsgi",),
       short="w", group=_APP),
    _O("callable", "str", "set the default WSGI callable name", default="application",
       group=_APP),
    _O("wsgi-file", "path", "load a .wsgi/.py file", aliases=("file",), group=_APP),
    _O("asgi", "str", "load an ASGI 3 app (module:app or module:factory(); the callable "
       "defaults to 'app') and serve it from an asyncio loop in each worker (a procmaster "
       "extension)", group=_APP,
       note="http, websocket and lifespan scopes over every socket protocol; the same limits, guards "
       "and reloads as a WSGI app; excludes module, wsgi-file, mount and threads"),
    _O("asgi-loop", "str", "the event loop of an ASGI worker: auto (uvloop when installed), "
       "asyncio or uvloop (a procmaster extension)", default="auto", group=_APP),
    _O("chdir", "path", "chdir to the specified directory before loading the app",
       group=_APP),
    _O("pythonpath", "path", "add a directory to the Python path",
       aliases=("python-path", "pp"), multi=True, group=_APP),
    _O("virtualenv", "path", "set the virtualenv (PYTHONHOME)",
       aliases=("home", "venv", "pyhome"), short="H", group=_APP),
    _O("env", "keyval", "set an environment variable: env = NAME=VALUE", multi=True,
       group=_APP),
    _O("mount", "mapping", "load an app under a mountpoint: mount = /path=module:callable "
       "or /path=file.py", multi=True, group=_APP),
    _O("manage-script-name", "bool", "rewrite SCRIPT_NAME and PATH_INFO from the mountpoint",
       default=False, group=_APP),
    _O("need-app", "bool", "exit if no app can be loaded", default=True, group=_APP,
       note="true by default, as in uWSGI 2.1 (2.0: false); need-app = false keeps the "
       "server up without an app"),
    _O("plugins", "str", "load uWSGI plugins (comma-separated)", aliases=("plugin",),
       multi=True, group=_APP, status=ACCEPTED,
       note="Python is built in; python plugins are accepted silently, others give a warning"),
    _O("py-autoreload", "seconds", "reload when a Python module changes (check interval)",
       aliases=("python-autoreload", "py-auto-reload", "python-auto-reload"), default=0,
       group=_APP, status=PARTIAL,
       note="changes are seen at once through inotify (the interval is accepted); files of the app's modules are watched, not the standard library or installed packages"),
    # -- Requests ----------------------------------------------------------------
    _O("buffer-size", "size", "set the buffer size for request headers (uwsgi packet size)",
       short="b", default=4096, min=1, group=_REQ),
    _O("post-buffering", "size", "buffer request bodies larger than this to disk",
       default=0, bare=1, group=_REQ),
    _O("limit-post", "size", "limit request bodies to this many bytes (0: no limit)",
       default=0, group=_REQ),
    _O("route-*", "str", "add a routing rule: route = REGEX ACTION:ARGS (PATH_INFO), "
       "route-uri, route-host, route-qs, route-remote-addr, route-user-agent, route-referer, "
       "route-remote-user, route-if = COND:ARGS ACTION:ARGS, route-if-not, route-run = "
       "ACTION:ARGS, route-label = NAME",
       aliases=("route",), prefixes=("route-",), multi=True, group=_REQ, status=PARTIAL,
       note="run by the worker before static files and the app; actions: continue/last, "
       "break[:STATUS], return:STATUS, log, donotlog, goto, addvar, addheader, delheader, "
       "redirect(-302/-301/-permanent), rewrite(-last), basicauth(-next) (USER:PASS, or an "
       "htpasswd file: {SHA} and crypt(3) hashes, not $apr1$), static(-next)/file, "
       "setscriptname, setmethod, seturi, setpathinfo, setremoteaddr, setdocroot, "
       "setscheme, setuser; $1..$9 and ${VAR}, ${qs[K]}, ${cookie[K]}; not: send, "
       "cache and proxy actions (uwsgi:, http:), ${mime[]}/${time[]} vars, a bare break "
       "(answers 500 instead of closing); a value from a capture is never re-expanded"),
    _O("final-route", "str", "add a final, error or response routing rule "
       "(final-route, error-route, response-route and their subjects)", multi=True,
       group=_REQ, prefixes=("final-route", "error-route", "response-route"),
       status=UNSUPPORTED, blocking=True, note=NOT_YET + "; route, route-if and route-run "
       "are supported"),
    _O("add-header", "str", "add a header to every response: add-header = Name: value",
       multi=True, group=_REQ),
    # -- Logging -----------------------------------------------------------------
    _O("disable-logging", "bool", "disable request logging", short="L", default=False,
       group=_LOG),
    _O("log-format", "text", "set the request log format, with %(var) request variables",
       aliases=("logformat",), group=_LOG, request_vars=True),
    _O("log-date", "bool-or-str", "prefix logs with the date, or with a strftime format "
       "(write %% for % in INI files)", aliases=("logdate",), default=False, bare=True,
       group=_LOG, note="as uWSGI: 'ctime - ' or 'FORMAT - ' before procmaster's own "
       "lines; request lines are not dated (uWSGI 2.0 does not date them either: use "
       "%(ltime) or %(ftime) in log-format)"),
    _O("logto", "str", "log to the specified file", group=_LOG,
       note="as uWSGI, HOST:PORT (no /) logs over UDP, one datagram per line"),
    _O("logto2", "str", "log to the specified file after privileges drop", group=_LOG,
       note="as uWSGI: opened once uid/gid are dropped (the file belongs to that user; "
       "HOST:PORT logs over UDP); the lines before go to stderr; logto wins when both are set"),
    _O("log-maxsize", "size", "rotate the log file at this size", default=0, group=_LOG,
       note="every process checks after each line; the file is renamed once (under a "
       "lock) and every process reopens, so no line is lost"),
    _O("log-backupname", "path", "the name of the rotated log file", group=_LOG,
       note="without it the rotated file is LOG.<timestamp>"),
    _O("log-reopen", "bool", "reopen the log on reload", default=False, group=_LOG,
       note="procmaster reopens the log on every reload"),
    _O("log-x-forwarded-for", "bool", "use the X-Forwarded-For header as the client "
       "address in request logs", default=False, group=_LOG),
    _O("req-logger", "logger", "set/append a request logger", multi=True, group=_LOG,
       status=PARTIAL, note="file:PATH, file:logfile=PATH,maxsize=BYTES,backupname=PATH, "
       "fd:N, stdio, syslog[:NAME[,FACILITY]], rsyslog:HOST:PORT|/PATH[,TAG[,PRI]]; other "
       "logger plugins (socket, udp, redislog, ...) are reported and ignored"),
    _O("logger", "logger", "set/append a logger ([NAME ]PLUGIN[:ARGS])", multi=True,
       group=_LOG, status=PARTIAL,
       note="file:PATH, file:logfile=PATH,maxsize=BYTES,backupname=PATH (rotated past "
       "maxsize), fd:N, stdio, syslog[:NAME[,FACILITY]] (RFC 3164 to /dev/log, as glibc's "
       "syslog), rsyslog:HOST:PORT|/PATH[,TAG[,PRI]] (RFC 3164 over UDP or a unix datagram "
       "socket); a named logger gets only the lines log-route sends it; other plugins "
       "(socket, udp, redislog, ...) are reported and ignored"),
    _O("rsyslog-packet-size", "int", "the largest rsyslog datagram (bytes; more than 1024 "
       "breaks RFC 3164)", default=1024, min=64, group=_LOG),
    _O("rsyslog-split-messages", "bool", "send a line longer than rsyslog-packet-size in "
       "several datagrams (else it is cut)", default=False, group=_LOG),
    _O("log-route", "log-route", "send log lines matching REGEX to the logger NAME: "
       "log-route = NAME REGEX", multi=True, group=_LOG,
       note="a routed line goes to every matching route's logger and to no other"),
    _O("log-req-route", "log-route", "send request lines matching REGEX to the logger "
       "NAME (a logger of logger, as uWSGI)", multi=True, group=_LOG),
    _O("log-encoder", "log-encoder", "add an encoder to the log chain: "
       "NAME[:LOGGER] [ARGS]", multi=True, group=_LOG,
       note="prefix, suffix, nl, format, json (${msg}, ${msgnl}, ${unix}, ${millis}, "
       "${micros}, ${strftime:FMT}), gzip, compress; as uWSGI, format and json add no "
       "newline (add the nl encoder)"),
    _O("log-req-encoder", "log-encoder", "add an encoder to the request log chain",
       multi=True, group=_LOG),
    _O("logformat-strftime", "bool", "apply log-date's strftime format to %(ftime) in "
       "log-format", aliases=("log-format-strftime",), default=False, group=_LOG,
       note="uWSGI 2.0's meaning: %(ftime) takes log-date's format (else it is %(ltime))"),
    _O("log-master", "bool", "delegate logging to the master process", default=False,
       group=_LOG,
       note="each worker's, spooler's and mule's stdout/stderr (print(), C extensions "
       "writing to fd 1/2) is a pipe the master reads and runs line by line through "
       "loggers, log-route and log-encoder; one pipe per child, so lines never "
       "interleave (uWSGI shares one socket); procmaster's own lines take the same chain "
       "in the process that writes them"),
    _O("log-master-bufsize", "int", "the longest line the log master hands on whole "
       "(longer ones are cut into pieces of this size)", default=8192, min=64,
       group=_LOG),
    _O("threaded-logger", "bool", "run the log master's reading in a thread",
       default=False, group=_LOG, status=ACCEPTED,
       note="the master reads the pipes in its own loop, never blocking on them (a "
       "thread adds nothing)"),
    _O("log-zero", "bool", "log responses without body, even with disable-logging",
       default=False, group=_LOG),
    _O("log-slow", "int", "log requests slower than this many milliseconds, even with "
       "disable-logging", default=0, min=0, group=_LOG),
    _O("log-4xx", "bool", "log requests with a 4xx response, even with disable-logging",
       default=False, group=_LOG),
    _O("log-5xx", "bool", "log requests with a 5xx response, even with disable-logging",
       default=False, group=_LOG),
    _O("log-big", "size", "log responses with a body of at least this many bytes, even "
       "with disable-logging", default=0, group=_LOG),
    _O("log-sendfile", "bool", "log responses sent with sendfile, even with "
       "disable-logging", default=False, bare=True, group=_LOG),
    _O("log-ioerror", "bool", "log requests whose client went away during the response, "
       "even with disable-logging", default=False, bare=True, group=_LOG,
       note="uWSGI counts read and write errors; here a response cut by the client "
       "(the write failed) is such a request"),
    _O("touch-logrotate", "path", "rotate the log when the file is touched", multi=True,
       group=_LOG, watch="logrotate",
       note="as uWSGI: 'logsize: N, triggering rotation to NAME...' ends the old file, "
       "renamed to log-backupname or LOG.<epoch>; the path is then reopened"),
    _O("touch-logreopen", "path", "reopen the log when the file is touched", multi=True,
       group=_LOG, status=FULL, watch="logreopen"),
    _O("memory-report", "bool", "add memory usage to request logs", short="m",
       default=False, group=_LOG,
       note="the worker's address space and RSS before each request line, as uWSGI"),
    # -- Process names -------------------------------------------------------------
    _O("procname-prefix", "text", "add a prefix to the process names", default="", group=_NAME,
       status=PARTIAL, note=_PROCNAME_NOTE),
    _O("procname-prefix-spaced", "spaced-text", "add a prefix and a space to the process "
       "names", store="procname-prefix", group=_NAME, status=PARTIAL,
       note="sets procname-prefix to the value plus a space, as uWSGI; " + _PROCNAME_NOTE),
    _O("auto-procname", "bool", "name processes after their role (master, worker N)",
       default=False, group=_NAME, status=PARTIAL, note=_PROCNAME_NOTE),
    _O("procname", "str", "set the process names", group=_NAME, status=PARTIAL,
       note=_PROCNAME_NOTE),
    _O("procname-master", "str", "set the master process name", group=_NAME,
       status=PARTIAL, note=_PROCNAME_NOTE),
    _O("procname-append", "str", "append a string to process names", group=_NAME,
       status=UNSUPPORTED, note=NOT_YET),
    # -- Reloading and limits ------------------------------------------------------
    _O("reload-mercy", "seconds", "the maximum time to wait for workers and other "
       "processes to die during reload/shutdown", default=60, group=_RELOAD),
    _O("worker-reload-mercy", "seconds", "the maximum time a worker can take to "
       "reload/shutdown", default=60, group=_RELOAD),
    _O("harakiri", "seconds", "kill a worker whose request takes longer than this",
       short="t", default=0, group=_RELOAD,
       note="checked by the master from the scoreboard, per thread; the worker is "
       "SIGKILLed and replaced"),
    _O("harakiri-verbose", "bool", "log more when harakiri kills a worker", default=False,
       group=_RELOAD, note="the stuck worker's Python stacks (all threads) are logged "
       "before it is killed"),
    _O("max-requests", "int", "reload a worker after this many requests", short="R",
       default=0, group=_RELOAD, note="the worker finishes its requests, then is replaced"),
    _O("max-requests-delta", "int", "add (worker id × delta) to max-requests", default=0,
       group=_RELOAD),
    _O("max-worker-lifetime", "seconds", "reload a worker after this many seconds",
       default=0, group=_RELOAD, note="checked by the worker once a second"),
    _O("max-worker-lifetime-delta", "seconds", "add (worker id × delta) seconds to "
       "max-worker-lifetime", default=0, group=_RELOAD),
    _O("reload-on-rss", "megabytes", "reload a worker whose RSS is above this many MB",
       default=0, group=_RELOAD, note="measured with psutil after each request"),
    _O("limit-as", "megabytes", "limit each worker's address space (RLIMIT_AS) to this "
       "many megabytes", default=0, group=_RELOAD,
       note="set in each worker after the fork (uWSGI sets it in the master, which the "
       "workers inherit): an allocation beyond it is a MemoryError in the app"),
    _O("skip-atexit", "bool", "do not run Python atexit handlers when a worker exits "
       "gracefully", default=False, group=_RELOAD),
    _O("no-site", "bool", "do not import the site module", default=False, group=_APP,
       status=UNSUPPORTED,
       note="procmaster is a Python program, so site is imported before the config is "
       "read; start it as python -S -m procmaster (with PYTHONPATH set) for the same effect"),
    _O("reload-on-as", "megabytes", "reload a worker whose address space is above this "
       "many MB", default=0, group=_RELOAD, note="measured with psutil after each request"),
    _O("evil-reload-on-rss", "megabytes", "have the master reload a worker whose RSS is "
       "above this many MB", default=0, group=_RELOAD,
       note="the master measures every second and SIGKILLs the worker"),
    _O("evil-reload-on-as", "megabytes", "have the master reload a worker whose address "
       "space is above this many MB", default=0, group=_RELOAD,
       note="the master measures every second and SIGKILLs the worker"),
    _O("touch-reload", "path", "reload gracefully when the file is modified/touched",
       multi=True, group=_RELOAD, status=FULL, watch="reload"),
    _O("touch-chain-reload", "path", "chain-reload the workers when the file is "
       "modified/touched", multi=True, group=_RELOAD, status=FULL,
       note="new code needs lazy-apps, as in uWSGI", watch="chain"),
    _O("touch-workers-reload", "path", "reload only the workers when the file is "
       "modified/touched", multi=True, group=_RELOAD, status=FULL, watch="workers"),
    _O("fs-reload", "path", "reload gracefully when the filesystem object changes",
       multi=True, group=_RELOAD, status=FULL, watch="reload"),
    # -- Static files --------------------------------------------------------------
    _O("static-map", "mapping", "map a URL prefix to a static directory or file: "
       "static-map = /static=/srv/static", multi=True, group=_STATIC,
       note="served by the worker with sendfile before the app is called; a missing file "
       "falls through to the app"),
    _O("static-map2", "mapping", "like static-map, appending the whole requested path to "
       "the directory", multi=True, group=_STATIC),
    _O("static-check", "path", "look for static files in the specified directory",
       aliases=("check-static",), multi=True, group=_STATIC),
    _O("static-index", "str", "the file to serve when a static directory is requested",
       multi=True, group=_STATIC),
    _O("static-safe", "path", "allow static files under this path even outside the "
       "mapped directory", multi=True, group=_STATIC),
    _O("static-gzip-all", "bool", "send FILE.gz (or FILE.br) instead of any static FILE "
       "when the client accepts it", default=False, group=_STATIC),
    _O("static-gzip-dir", "str", "send FILE.gz (or FILE.br) for static files whose path "
       "starts with this directory/prefix", aliases=("static-gzip-prefix",), multi=True,
       group=_STATIC),
    _O("static-gzip-ext", "str", "send FILE.gz (or FILE.br) for static files with this "
       "extension/suffix", aliases=("static-gzip-suffix",), multi=True, group=_STATIC),
    _O("static-gzip", "str", "send FILE.gz (or FILE.br) for static files whose path "
       "matches this regex", multi=True, group=_STATIC,
       note="Python's re, searched anywhere in the file's path (as PCRE)"),
    # -- Master, control and stats ---------------------------------------------------
    _O("pidfile", "path", "write the master's pid to this file", group=_MASTER),
    _O("pidfile2", "path", "write the pidfile after privileges drop", group=_MASTER,
       note="procmaster never drops privileges, so it is written when pidfile is (atomically)"),
    _O("safe-pidfile", "path", "write the pidfile atomically",
       aliases=("safe-pidfile2",), group=_MASTER,
       note="every pidfile procmaster writes is written atomically (rename)"),
    _O("die-on-term", "bool", "exit (instead of reloading) on SIGTERM", default=False,
       group=_MASTER, status=ACCEPTED,
       note="SIGTERM is always a graceful stop in procmaster, as in uWSGI 2.1"),
    _O("master-fifo", "path", "enable the master FIFO (the first one is active): the "
       "letters r R c w W q Q l L + - s p", multi=True, group=_MASTER,
       status=PARTIAL, note="as uWSGI, the first FIFO is active and 0-9 make the Nth "
       "one active; uWSGI's letters B (vassal asks for reinforcements), C (go cheap), E "
       "(emperor rescan), f (re-fork), P (rewrite pidfiles) and S (subscriptions) are "
       "logged and ignored"),
    _O("stats", "address", "enable the stats server on the specified address",
       aliases=("stats-server",), group=_MASTER, status=PARTIAL,
       note="uWSGI's JSON keys and types, served by the master; listen_queue is "
       "reported for TCP sockets (0 for unix sockets), listen_queue_errors is always 0"),
    _O("stats-http", "bool", "serve the stats with HTTP headers; GET /metrics answers "
       "the Prometheus text format, /ready and /live the readiness and liveness probes "
       "(procmaster extensions)", default=False, group=_MASTER,
       note="/ready (/readyz): 200 while every configured worker accepts and no stop has "
       "begun, else 503; /live (/livez, /healthz): 200, written by the master's loop"),
    _O("stats-push", "stats-push", "push the stats to this destination: statsd:HOST:PORT[,PREFIX]",
       multi=True, group=_MASTER, status=PARTIAL,
       note="statsd over UDP under uWSGI's metric names (worker.N.requests, "
       "core.busy_workers, ...), counters as increments since the last push; other "
       "pushers (file, socket, mongodb) are refused at start"),
    _O("stats-pusher-default-freq", "int", "seconds between two stats pushes",
       aliases=("stats-pushers-default-freq",), default=3, min=1, group=_MASTER),
    _O("statsd-all-gauges", "bool", "push every statsd metric as a gauge of its current "
       "value", default=False, group=_MASTER),
    _O("statsd-no-workers", "bool", "leave the per-worker metrics out of statsd pushes",
       default=False, group=_MASTER),
    _O("carbon", "host-port", "push the stats to this carbon (graphite) server: HOST:PORT",
       multi=True, group=_MASTER, status=PARTIAL,
       note="uWSGI's carbon names (ROOT.HOST.ID.requests, .workerN.busyness, ...), one "
       "TCP connection a push as uWSGI, but driven by the master's selector: never "
       "blocking it; carbon-max-retry and carbon-retry-delay are not read (the next "
       "push is the retry)"),
    _O("carbon-freq", "int", "seconds between two carbon pushes", default=60, min=1,
       group=_MASTER),
    _O("carbon-timeout", "int", "seconds a carbon push may take to connect and be sent",
       default=3, min=1, group=_MASTER),
    _O("carbon-id", "str", "the carbon id (default: the first socket's name, dots as _)",
       group=_MASTER),
    _O("carbon-root", "str", "the carbon metrics' root node", default="uwsgi",
       group=_MASTER),
    _O("carbon-hostname-dots", "str", "replace the dots of the host name with this "
       "character in carbon names", group=_MASTER),
    _O("carbon-no-workers", "bool", "leave the per-worker metrics out of carbon pushes",
       default=False, group=_MASTER),
    # -- Daemons and background work -----------------------------------------------
    _O("attach-daemon", "str", "run a command alongside the workers (it must stay in the "
       "foreground)", multi=True, group=_BG,
       note="started by the master (through /bin/sh), restarted when it exits, stopped "
       "with SIGTERM (then SIGKILL) when procmaster stops"),
    _O("smart-attach-daemon", "str", "run a command that writes a pidfile: "
       "pidfile command", multi=True, group=_BG,
       note="the pid in the pidfile is watched; the command runs again when that "
       "process is gone; stopped with procmaster"),
    _O("cron", "str", "add a cron task: minute hour day month weekday command",
       multi=True, group=_BG,
       note="uWSGI's syntax: -1 is any, -N is every N; checked by the master each minute; "
       "a run still going when its next time comes is not started twice"),
    _O("mule", "text", "add a mule: a process that runs this script, or (no value) waits "
       "for @mulefunc calls and uwsgi.mule_msg messages", multi=True, bare="", group=_BG),
    _O("mules", "int", "add this many programmed mules", default=0, min=0, group=_BG),
    _O("farm", "str", "group mules under a name: farm = NAME:1,2 (uwsgi.mule_msg(msg, NAME))",
       multi=True, group=_BG),
    _O("mule-*", "str", "other mule options (mule-harakiri, mule-reload-mercy and the rest)",
       prefixes=("mule-",), multi=True, group=_BG, status=UNSUPPORTED,
       note="mules are kept alive and stopped with the master; these knobs are not read"),
    _O("spooler", "path", "run a spooler on the specified directory (uwsgi.spool, @spool)",
       short="Q", multi=True, group=_BG),
    _O("spooler-processes", "int", "spooler processes per spooler directory", default=1,
       min=1, group=_BG),
    _O("spooler-frequency", "seconds", "how often a spooler looks for tasks to retry (a "
       "new task starts at once)", default=30, group=_BG),
    _O("spooler-ordered", "bool", "run spooler tasks in the order of their names",
       default=False, group=_BG),
    _O("spooler-max-tasks", "int", "replace a spooler process after this many tasks",
       default=0, min=0, group=_BG),
    _O("spooler-harakiri", "int", "end a spooler task (and its process) after this many "
       "seconds; the task runs again later", default=0, min=0, group=_BG),
    _O("spooler-*", "str", "other spooler options (spooler-chdir, spooler-external, "
       "spooler-quiet and the rest)", prefixes=("spooler-",), multi=True, group=_BG,
       status=UNSUPPORTED, note="the spooler options above are supported"),
    _O("hook-*", "str", "run hooks at a phase: hook-PHASE = ACTION:ARGS (hook-asap, "
       "hook-as-root, hook-as-user, hook-pre-app, hook-post-app, hook-master-start, "
       "hook-post-fork, hook-accepting, hook-accepting1, hook-accepting-once, "
       "hook-accepting1-once, hook-as-user-atexit ...); exec-PHASE = CMD and "
       "call-PHASE = SYMBOL are short forms",
       prefixes=("hook-", "exec-", "call-"), multi=True, group=_BG, status=PARTIAL,
       note="run at uWSGI's moments (pre-jail, in-jail and post-jail run just before "
       "as-root: there is no jail; as-root runs before the sockets are bound, as-user "
       "after them, where uWSGI runs both before); actions exec, safeexec, cd/chdir, mkdir, putenv, unlink, "
       "create, write(n), append(n), writefifo, chmod, sticky, chown, print/log, exit, "
       "wait_for_file/dir/fs, call/callret/callint/callintret (C symbols via ctypes), "
       "unix_signal:N gracefully_kill_them_all|kill_them_all|grace_them_all|reap_them_all "
       "(master phases), pycall:module.function (a procmaster extension); not: the "
       "emperor/vassal/mule/gateway phases, hook-touch, mount, hostname, alarm, rpc; a "
       "failing hook stops the instance, as in uWSGI"),
    _O("mount-*", "str", "mount or unmount filesystems at a phase (mount-PHASE, "
       "umount-PHASE)", prefixes=("mount-", "umount-"), multi=True, group=_BG,
       status=UNSUPPORTED, blocking=True,
       note=NOT_YET + "; mount filesystems before starting procmaster (systemd mounts)"),
    # -- Privileges and daemonizing ----------------------------------------------------
    _O("uid", "str", "setuid to the specified user/uid", group=_PRIV,
       note="dropped after binding the sockets, before the app is loaded; running as "
       "root without uid is a warning"),
    _O("gid", "str", "setgid to the specified group/gid", group=_PRIV,
       note="with uid given by name, the user's supplementary groups are set too"),
    _O("daemonize", "path", "daemonize, logging to the specified file", short="d",
       aliases=("daemonize2",), group=_PRIV, status=PARTIAL,
       note="as uWSGI: detaches at once (pidfile holds the master), umask 0 unless umask "
       "is set, logs to the file (HOST:PORT: over UDP); a vassal is not detached (it only "
       "logs there); differs: daemonize2 detaches before the app is loaded (uWSGI: after)"),
    _O("umask", "mode", "set the process umask (octal, e.g. 022)", group=_PRIV,
       note="set before anything is bound or written, as uWSGI; daemonize then keeps it"),
    _O("chroot", "path", "chroot to the specified directory", group=_PRIV,
       aliases=("pivot-root", "jail", "unshare", "cap", "namespace", "ns",
                "immediate-uid", "immediate-gid"),
       status=UNSUPPORTED, blocking=True, note=NOT_YET + "; use systemd sandboxing or a "
       "container"),
    # -- Other uWSGI subsystems ----------------------------------------------------------
    _O("emperor", "str", "run the Emperor: one master (vassal) per *.ini in a directory, "
       "or per file matching a glob (repeatable)", multi=True, group=_OTHER, status=PARTIAL,
       note="INI vassals only (no .xml/.yml/.json, no zmq:// or other monitor schemes); "
       "watched with inotify; a vassal's %d and %n are those of the INI file symlinks "
       "point to"),
    _O("emperor-throttle", "int", "the Emperor's throttle (milliseconds) for vassals that "
       "keep dying: the first back-off step", default=1000, group=_OTHER),
    _O("emperor-max-throttle", "int", "the longest back-off (milliseconds) before a dying "
       "vassal is started again", default=180000, group=_OTHER),
    _O("vassals-include", "ini", "include this INI in every vassal's config, after the "
       "vassal's own lines (its values win)", multi=True, group=_OTHER),
    _O("vassals-inherit", "ini", "read this INI as a base for every vassal, before the "
       "vassal's own lines (the vassal's values win)", multi=True, group=_OTHER),
    _O("vassal-set", "keyval", "set an option for every vassal: vassal-set = NAME=VALUE",
       aliases=("vassals-set",), multi=True, group=_OTHER),
    _O("emperor-pidfile", "path", "write the Emperor's pid to this file", group=_OTHER),
    _O("emperor-stats", "address", "serve the Emperor's stats (JSON: each vassal's INI, "
       "pid, state, restarts, last start) on this address", aliases=("emperor-stats-server",),
       group=_OTHER),
    _O("emperor-tyrant", "bool", "when the Emperor runs as root, run each vassal as the "
       "owner (uid and gid) of its INI file; root-owned vassals are refused", default=False,
       group=_OTHER),
    _O("emperor-tyrant-allow-root", "bool", "with emperor-tyrant, let root-owned vassal "
       "files run as root (a procmaster extension)", default=False, group=_OTHER),
    _O("emperor-on-demand-directory", "path", "bind each vassal's unix socket DIR/NAME.socket "
       "(NAME: the vassal file's name up to its last dot) in the Emperor and start the vassal "
       "on its first connection", aliases=("emperor-on-demand-dir",), group=_OTHER,
       note="the vassal gets the socket as its fd 0 and serves it (with its socket option of "
       "the same address, else with the uwsgi protocol); when it exits the Emperor waits for "
       "the next connection"),
    _O("emperor-on-demand-extension", "str", "on-demand vassals: the file VASSAL+EXT holds the "
       "vassal's socket name (unix path or host:port)", aliases=("emperor-on-demand-ext",),
       group=_OTHER),
    _O("emperor-on-demand-exec", "str", "on-demand vassals: the first line this command prints "
       "(run with the vassal's path as its argument) is the vassal's socket name",
       group=_OTHER),
    _O("emperor-*", "str", "other Emperor and vassal options (emperor-freq, "
       "emperor-broodlord, vassals-include-before and the rest)",
       prefixes=("emperor-", "vassals-", "vassal-"), multi=True, group=_OTHER,
       status=UNSUPPORTED, blocking=True, note=NOT_YET + "; the options above are supported"),
    _O("cache2", "str", "create a shared cache: name=NAME,items=N[,blocksize=BYTES,"
       "keysize=BYTES,purge_lru=1,store=FILE,store_sync=SECONDS] (uwsgi.cache_*)",
       multi=True, group=_OTHER, status=PARTIAL,
       note="local caches only: no udp sync between servers (nodes=, udp=), no bitmap "
       "mode (a value takes one block of blocksize bytes)"),
    _O("cache", "int", "create the 'default' shared cache with this many items (uWSGI's "
       "older spelling of cache2)", default=0, min=0, group=_OTHER),
    _O("cache-blocksize", "size", "the largest value the 'cache' option's cache holds",
       default=65536, min=8, group=_OTHER),
    _O("cache-store", "path", "keep the 'cache' option's cache in this file (it survives "
       "restarts)", group=_OTHER),
    _O("cache-store-sync", "int", "flush the cache store to disk every N seconds",
       default=0, min=0, group=_OTHER),
    _O("sharedarea", "str", "create a shared memory area of N pages (or pages=N / "
       "size=BYTES) for uwsgi.sharedarea_* (numbered from 0 in order)", short="A",
       multi=True, group=_OTHER, status=PARTIAL,
       note="anonymous memory only: no file=, fd= or ptr= areas; uwsgi.sharedarea_object "
       "(a plugin's Python object) is absent"),
    _O("rpc-max", "int", "the most RPC functions a process registers (uwsgi.register_rpc)",
       default=64, min=1, group=_OTHER, status=PARTIAL,
       note="RPC on the local node only: uwsgi.rpc() to another node raises ValueError"),
    _O("cache-expire-freq", "seconds", "sweep expired cache items every N seconds",
       default=3, group=_OTHER),
    _O("cache-*", "str", "other cache options (cache-udp-server, cache-udp-node, "
       "cache-sync and the rest)", prefixes=("cache-",), multi=True, group=_OTHER,
       status=UNSUPPORTED, note="caches are local to one server: no udp sync"),
    # -- Command line ---------------------------------------------------------------------
    _O("help", "bool", "show this help and exit", aliases=("usage",), short="h",
       default=False, cli_only=True, group=_CLI),
    _O("version", "bool", "print the procmaster version and exit", default=False,
       cli_only=True, group=_CLI),
    _O("check", "ini", "read FILE[:section] like --ini, report errors and warnings, check "
       "every path and import the app in a child process as a worker would (this costs the "
       "app's import time; --check-no-import skips it), and exit without starting: "
       "non-zero when procmaster would not start (a procmaster extension); bare "
       "(--ini FILE --check): check the configuration the other options give",
       cli_only=True, bare=True, group=_CLI),
    _O("check-no-import", "bool", "with --check: do not import the app in a child "
       "process (faster for an app slow to import; the import is then not checked)",
       default=False, cli_only=True, group=_CLI),
    _O("reload", "path", "send a graceful reload (SIGHUP) to the master named in the "
       "pidfile, and exit", cli_only=True, group=_CLI),
    _O("wait", "bool", "with --reload: wait for the reload's outcome (the master writes "
       "it to PIDFILE.reload); exit 0 when the new workers serve, 1 with the reason "
       "when the reload was aborted (a procmaster extension)", default=False,
       cli_only=True, group=_CLI),
    _O("wait-timeout", "seconds", "with --reload --wait: give up after this many seconds "
       "(exit 1)", default=180, cli_only=True, group=_CLI),
    _O("stop", "path", "send a graceful stop (SIGTERM) to the master named in the "
       "pidfile, and exit", cli_only=True, group=_CLI,
       note="procmaster's SIGTERM is a graceful stop (uWSGI 2.0's --stop sends SIGINT)"),
    _O("chain-reload", "path", "send a chain reload (SIGURG) to the master named in the "
       "pidfile, and exit (a procmaster extension)", cli_only=True, group=_CLI),
    _O("print", "text", "print the value when the configuration is read", multi=True,
       group=_CLI),
    _O("show-config", "bool", "show the resolved configuration as INI at start",
       default=False, group=_CLI),
)
# fmt: on
