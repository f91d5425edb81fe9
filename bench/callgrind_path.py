"""Instructions per request of one worker's whole path, one new connection per
request, as a front end makes them: accept, read, parse, app, write, close,
and the event loop around them (what ``micro.py`` leaves out).

The worker's real ``Worker.run_forever`` serves a real listening socket in this
process; a client in another process (started with ``exec``, so callgrind does
not follow it) opens a connection per request, sends the bytes nginx sends,
reads the answer to the end and checks it, one request at a time, then stops the
worker with SIGTERM. Run it under callgrind at two counts and take the
difference, so the start-up cancels out::

    for n in 1000 3000; do PYTHONHASHSEED=0 valgrind --tool=callgrind \\
        --callgrind-out-file=cg.$n python bench/callgrind_path.py uwsgi $n; done
    python bench/callgrind_path.py --per-request cg.1000 cg.3000

CASE is uwsgi, http (``Connection: close``), fastcgi (no keep-conn), scgi,
``asgi-http`` / ``asgi-uwsgi`` (the ASGI worker, ``bench/apps/hello_asgi.py``, on
its default loop: uvloop when installed), or ``blocking`` (a 40-line blocking uwsgi server: accept, one read, parse the vars,
call the app, one write, close; the floor a per-connection Python server has).
``asgi-keepalive`` sends its requests one after another on one kept-alive
connection (as nginx's ``proxy_pass`` with upstream keep-alive does), and
``uvicorn-keepalive`` does the same to uvicorn (httptools, uvloop) serving the
same app in this process: the peer's figure, measured the same way;
``uvicorn-http`` is uvicorn with a new connection per request (as ``asgi-http``).
``asgi-churn`` and ``uvicorn-churn`` send one kept-alive request on each new
unix-socket connection and close it once answered, as nginx's upstream
keep-alive does to the connections it has no room to keep.
``asgi-nginx-keepalive`` and ``uvicorn-nginx-keepalive``: as ``*-keepalive``, on
a unix socket, with the request the bench's nginx sends upstream for wrk's
(one header field).
Without valgrind it prints the requests per second of one worker. ``--logged``
after the count writes uWSGI's default request line for each request into a
file (the default is ``disable-logging``).

The peer, uWSGI 2.0 (C), counted the same way: run it under callgrind yourself
(one process, no master) and point the client at it; the counts go after the
two files, since uWSGI's command line does not end with them::

    for n in 1000 3000; do rm -f /tmp/cg.sock; valgrind --tool=callgrind \
        --callgrind-out-file=cg.uwsgi.$n uwsgi --socket /tmp/cg.sock --processes 1 \
        --disable-logging --wsgi-file bench/apps/hello.py & sleep 3
      python bench/callgrind_path.py --client /tmp/cg.sock uwsgi $n $!; wait; done
    python bench/callgrind_path.py --per-request cg.uwsgi.1000 cg.uwsgi.3000 1000 3000

``--app NAME N`` counts an app alone, without a server: ``application`` of
``bench/apps/NAME.py`` called N times with a plain ``GET /`` environ (after 50
calls that warm it up), for ``flask_app`` and ``django_app`` (which needs
``BENCH_DB``, a path for its SQLite file). Its instructions per call, added to a
server's per-request figure, give that server's cost with that app.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from processes import ROOT
from wire import fastcgi_request, scgi_request, uwsgi_packet

sys.path.insert(0, ROOT)  # this checkout's procmaster, before any installed one

BODY = b"Hello, World!"
PAIRS = [
    (b"REQUEST_METHOD", b"GET"),
    (b"REQUEST_URI", b"/hello?x=1"),
    (b"PATH_INFO", b"/hello"),
    (b"QUERY_STRING", b"x=1"),
    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"REMOTE_ADDR", b"127.0.0.1"),
    (b"REMOTE_PORT", b"40000"),
    (b"SERVER_PORT", b"80"),
    (b"SERVER_NAME", b"localhost"),
    (b"HTTP_HOST", b"localhost"),
    (b"HTTP_USER_AGENT", b"wrk"),
    (b"HTTP_ACCEPT", b"*/*"),
]
CASES = {  # case: (protocol, unix socket?, request bytes)
    "uwsgi": ("uwsgi", True, uwsgi_packet(PAIRS)),
    "http": (
        "http",
        False,
        b"GET /hello?x=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: wrk\r\n"
        b"Accept: */*\r\nConnection: close\r\n\r\n",
    ),
    "fastcgi": (
        "fastcgi",
        True,
        fastcgi_request([*PAIRS, (b"SCRIPT_NAME", b""), (b"CONTENT_LENGTH", b"")], keep=False),
    ),
    "scgi": ("scgi", True, scgi_request(PAIRS)),
    "blocking": ("uwsgi", True, uwsgi_packet(PAIRS)),
}
CASES["asgi-http"] = CASES["http"]
CASES["asgi-uwsgi"] = CASES["uwsgi"]
# requests one after another on one kept-alive connection, as nginx's proxy_pass
# with upstream keep-alive sends them; uvicorn (httptools, uvloop) is the peer
KEPT = b"GET /hello?x=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
CASES["asgi-keepalive"] = ("http", False, KEPT)
CASES["uvicorn-keepalive"] = ("http", False, KEPT)
CASES["uvicorn-http"] = CASES["http"]
# a new connection per request that is kept alive and closed by the client once
# answered: nginx's upstream keep-alive when more requests are in flight than it
# keeps idle connections (the rest are closed after their answer)
CASES["asgi-churn"] = ("http", True, KEPT)
CASES["uvicorn-churn"] = ("http", True, KEPT)
# what the bench's nginx sends upstream (proxy_pass, HTTP/1.1, Connection "") for
# wrk's request, kept alive on a unix socket
PROXIED = b"GET / HTTP/1.1\r\nHost: http_app\r\n\r\n"
CASES["asgi-nginx-keepalive"] = ("http", True, PROXIED)
CASES["uvicorn-nginx-keepalive"] = ("http", True, PROXIED)


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [BODY]


def connect(address: str, unix: bool) -> socket.socket:
    """A connection to the server under count: a unix socket's path, or host:port."""
    if unix:
        s = socket.socket(socket.AF_UNIX)
        s.connect(address)
        return s
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)))


def kept_client(address: str, n: int, request: bytes, unix: bool) -> None:
    """One kept-alive connection, one request at a time, each answer read to its body."""
    s = connect(address, unix)
    for i in range(n):
        s.sendall(request)
        got = b""
        while not got.endswith(BODY):
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit(f"request {i}: closed after {got[:200]!r}")
            got += chunk
    s.close()


def client(address: str, case: str, n: int, server_pid: int) -> None:
    """One connection per request, one at a time; each answer read to EOF
    (``*-keepalive``: all on one connection)."""
    _, unix, request = CASES[case]
    churn = case.endswith("-churn")
    start = time.perf_counter()
    if case.endswith("-keepalive"):
        try:
            kept_client(address, n, request, unix)
        except BaseException:
            os.kill(server_pid, signal.SIGKILL)
            raise
    for i in range(0 if case.endswith("-keepalive") else n):
        s = connect(address, unix)
        s.sendall(request)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
            if churn and got.endswith(BODY):
                break  # (kept alive: the client closes)
        s.close()
        if BODY not in got:
            os.kill(server_pid, signal.SIGKILL)
            raise SystemExit(f"request {i}: no body in the answer {got[:200]!r}")
    rate = n / (time.perf_counter() - start)
    if case != "blocking":  # (which stops after n requests)
        os.kill(server_pid, signal.SIGINT)  # the worker exits at once
    how = "on one connection" if case.endswith("-keepalive") else "one connection each"
    print(f"{case}: {rate:,.0f} requests/s, {how}, one at a time", file=sys.stderr)


def blocking_server(sock: socket.socket, n: int) -> None:
    """The floor: a blocking uwsgi server (as a throwaway pre-fork one would be)."""
    unpack = struct.unpack_from
    for _ in range(n):
        conn, _ = sock.accept()
        data = conn.recv(65536)
        size = unpack("<H", data, 1)[0] + 4
        env, p = {}, 4
        while p < size:
            k = unpack("<H", data, p)[0]
            key = data[p + 2 : p + 2 + k].decode("latin-1")
            p += 2 + k
            v = unpack("<H", data, p)[0]
            env[key] = data[p + 2 : p + 2 + v].decode("latin-1")
            p += 2 + v
        out = []

        def start_response(status, headers, out=out):
            out.append(status)
            out.append(headers)

        body = b"".join(hello(env, start_response))
        lines = "".join(f"{name}: {value}\r\n" for name, value in out[1])
        head = f"HTTP/1.1 {out[0]}\r\n{lines}\r\n"
        conn.sendall(head.encode("latin-1") + body)
        conn.close()
    os._exit(0)


def serve(case: str, n: int, logged: bool = False) -> None:
    proto, unix, _ = CASES[case]
    tmp = tempfile.mkdtemp()
    if unix:
        address = os.path.join(tmp, "s.sock")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(address)
    else:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    sock.listen(128)
    if case.startswith("uvicorn"):
        import uvicorn
        from apps.hello_asgi import app

        config = uvicorn.Config(
            app,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
    elif case != "blocking":
        # lazy: the blocking floor is measured without procmaster's modules
        from procmaster.app import Apps
        from procmaster.config import load as load_config
        from procmaster.scoreboard import Scoreboard
        from procmaster.worker import Worker

        sock.setblocking(False)
        listener = type("L", (), {"sock": sock, "proto": proto})()
        # --logged: uWSGI's default request line for each request, into a file
        logging = ["--logto", os.path.join(tmp, "log")] if logged else ["--disable-logging"]
        asgi = ["--asgi", "x:app"] if case.startswith("asgi") else []
        cfg = load_config(["--processes", "1", *logging, *asgi])
        if logged:
            from procmaster.logs import log

            log.configure(cfg)
        r, w = os.pipe()
        if asgi:
            from apps.hello_asgi import app

            from procmaster.worker.asgi import AsgiWorker

            worker = AsgiWorker(1, cfg, [listener], Apps([("", app)]), w, Scoreboard(2), 0)
        else:
            worker = Worker(1, cfg, [listener], Apps([("", hello)]), w, Scoreboard(2), 0)
    args = [sys.executable, __file__, "--client", address, case, str(n), str(os.getpid())]
    subprocess.Popen(args)
    if case == "blocking":
        blocking_server(sock, n)
    elif case.startswith("uvicorn"):
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # (uvicorn raises the client's SIGINT again once stopped)
            pass
    else:
        worker.run_forever()


def per_request(low: str, high: str, counts: list[str]) -> None:
    """(instructions at the higher count - at the lower) / (difference of counts);
    the counts end each file's command line, or are given (``counts``)."""
    totals = []
    for k, path in enumerate((low, high)):
        with open(path) as f:
            text = f.read()
        cmd = re.search(r"^cmd: .* (\d+)(?: --logged)?$", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if total is None or (cmd is None and not counts):
            raise SystemExit(f"{path}: no callgrind totals, or no count (give both counts)")
        totals.append((int(counts[k]) if counts else int(cmd.group(1)), int(total.group(1))))
    (n1, i1), (n2, i2) = totals
    print(f"{(i2 - i1) / (n2 - n1):,.0f} instructions per request")


def app_alone(name: str, n: int) -> None:
    """Call ``bench/apps/NAME.py``'s ``application`` n times (after 50), no server."""
    from test_bench import wsgi_get  # the environ the bench's own checks call apps with

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))
    app = __import__(name).application
    for i in range(50 + n):
        status, body = wsgi_get(app)
        if not status.startswith("200") or not body:
            raise SystemExit(f"{name}: call {i} answered {status} {body[:100]!r}")
    print(f"{name}: {n} calls", file=sys.stderr)


def main() -> None:
    args = sys.argv[1:]
    logged = "--logged" in args
    if logged:
        args.remove("--logged")
    if args[:1] == ["--client"]:
        client(args[1], args[2], int(args[3]), int(args[4]))
    elif args[:1] == ["--per-request"] and len(args) in (3, 5):
        per_request(args[1], args[2], args[3:])
    elif args[:1] == ["--app"] and len(args) == 3:
        app_alone(args[1], int(args[2]))
    elif len(args) == 2 and args[0] in CASES:
        serve(args[0], int(args[1]), logged)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
