"""Hooks, internal routing, add-header, static-gzip, protocol, http11-socket,
limit-as and skip-atexit, on real processes."""

from __future__ import annotations

import gzip
import signal
import socket
import threading

import psutil
from support import free_port, http_get, raw_request, wait_for


def ini(tmp_path, text: str, name: str = "site.ini") -> str:
    path = tmp_path / name
    path.write_text("[uwsgi]\n" + text)
    return str(path)


# -- hooks --------------------------------------------------------------------------------


def test_hooks_run_at_their_moments_in_order(procmaster, tmp_path):
    port = free_port()
    out = tmp_path / "order"
    phases = [
        "asap", "as-root", "as-user", "pre-app", "post-app", "master-start",
        "post-fork", "accepting", "accepting1", "accepting-once", "accepting1-once",
        "as-user-atexit",
    ]  # fmt: skip
    hooks = "".join(f"hook-{p} = exec:echo {p} $PPID $$ >> {out}\n" for p in phases)
    path = ini(
        tmp_path,
        f"http-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesses = 2\n{hooks}",
    )
    server = procmaster("--ini", path, wait_port=port)
    wait_for(lambda: out.exists() and out.read_text().count("accepting1-once") == 1)
    wait_for(lambda: out.read_text().count("accepting-once") == 2)
    lines = [line.split() for line in out.read_text().splitlines()]
    order = [words[0] for words in lines]
    master = str(server.pid)
    # the master's phases, in uWSGI's order, run by the master (the shell's parent)
    mine = [w[0] for w in lines if w[1] == master]
    assert mine == ["asap", "as-root", "as-user", "pre-app", "post-app", "master-start"]
    # each worker: post-fork, then accepting (worker 1 also accepting1 and -once)
    workers = server.worker_pids()
    for pid in workers:
        theirs = [w[0] for w in lines if w[1] == str(pid)]
        assert theirs[0] == "post-fork" and "accepting" in theirs and "accepting-once" in theirs
    assert order.count("accepting1") == 1 and order.count("post-fork") == 2
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert out.read_text().splitlines()[-1].startswith("as-user-atexit")


def test_a_respawned_worker_runs_accepting_again_but_not_the_once_hooks(procmaster, tmp_path):
    port = free_port()
    out = tmp_path / "order"
    path = ini(
        tmp_path,
        f"http-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesses = 1\n"
        f"hook-accepting = appendn:{out} accepting\n"
        f"hook-accepting-once = appendn:{out} once\n"
        f"hook-accepting1-once = appendn:{out} one-once\n",
    )
    server = procmaster("--ini", path, wait_port=port)
    (first,) = server.worker_pids()
    assert http_get(port, "/pid")[2] == str(first).encode()
    psutil.Process(first).kill()

    def respawned():
        pids = server.worker_pids()
        return pids if len(pids) == 1 and first not in pids else None

    (new,) = wait_for(respawned, 20)
    # it serves only once its accepting hooks are done
    wait_for(lambda: _answer(port, "/pid") == str(new).encode(), 20)
    assert out.read_text().split() == ["accepting", "once", "one-once", "accepting"]


def _answer(port: int, path: str) -> bytes | None:
    try:
        return http_get(port, path, timeout=5)[2]
    except OSError:
        return None


def test_lazy_apps_run_the_app_hooks_in_each_worker(procmaster, tmp_path):
    port = free_port()
    out = tmp_path / "order"
    path = ini(
        tmp_path,
        f"http-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesses = 2\nlazy-apps = true\n"
        f"hook-pre-app = exec:echo pre $PPID >> {out}\n"
        f"hook-post-app = exec:echo post $PPID >> {out}\n",
    )
    server = procmaster("--ini", path, wait_port=port)
    wait_for(lambda: out.read_text().count("post") == 2)
    pids = {line.split()[1] for line in out.read_text().splitlines()}
    assert pids == {str(p) for p in server.worker_pids()}


def test_a_failing_master_hook_aborts_the_start_naming_the_line(procmaster, tmp_path):
    port = free_port()
    path = ini(
        tmp_path,
        f"http-socket = 127.0.0.1:{port}\nmodule = testapp\n"
        f"hook-as-root = exec:exit 7\nhook-as-user = writen:{tmp_path}/never x\n",
    )
    server = procmaster("--ini", path)
    assert server.wait_exit() != 0
    assert f"hook-as-root = exec:exit 7 ({path}:4) failed" in server.log
    assert not (tmp_path / "never").exists()
    assert "Traceback" not in server.log


def test_a_failing_worker_hook_stops_the_instance(procmaster, tmp_path):
    port = free_port()
    path = ini(
        tmp_path,
        f"http-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesses = 2\n"
        "hook-post-fork = exec:false\n",
    )
    server = procmaster("--ini", path)
    assert server.wait_exit(30) is not None
    assert "hook-post-fork = exec:false (" in server.log
    wait_for(lambda: not server.descendants(), 15)


def test_unix_signal_makes_sigint_a_graceful_stop(procmaster, tmp_path):
    port = free_port()
    started = tmp_path / "started"
    app = tmp_path / "slow_app.py"
    app.write_text(
        "import time\n"
        "def application(env, sr):\n"
        "    if env['PATH_INFO'] == '/slow':\n"
        f"        open({str(started)!r}, 'w').close()\n"
        "        time.sleep(1.5)\n"
        "    sr('200 OK', [('Content-Length', '4')])\n"
        "    return [b'done']\n"
    )
    path = ini(
        tmp_path,
        f"http-socket = 127.0.0.1:{port}\nwsgi-file = {app}\n"
        "hook-master-start = unix_signal:2 gracefully_kill_them_all\n",
    )
    server = procmaster("--ini", path, wait_port=port)
    server.wait_log("procmaster master pid")
    got = {}

    def slow():
        try:
            got["r"] = http_get(port, "/slow", timeout=20)
        except Exception as exc:  # shown by the assertion below
            got["r"] = (repr(exc), None, server.log)

    t = threading.Thread(target=slow)
    t.start()
    wait_for(started.exists, 20)  # the request is in the app
    server.signal(signal.SIGINT)
    t.join(30)
    assert got["r"][::2] == (200, b"done")  # finished, not cut off
    assert server.wait_exit() == 0
    assert "SIGTERM: graceful shutdown" in server.log


# -- routes -------------------------------------------------------------------------------


def test_routes_on_real_requests(procmaster, tmp_path):
    port = free_port()
    path = ini(
        tmp_path,
        f"http-socket = 127.0.0.1:{port}\nmodule = testapp\nadd-header = X-Frame-Options: DENY\n"
        "route = ^/health$ donotlog:\nroute = ^/health$ return:200\n"
        "route = ^/old/(.*)$ redirect-permanent:/new/$1\n"
        "route = ^/ addheader:X-Host: ${HTTP_HOST}\n"
        "route = ^/env delheader:Content-Type\n"
        "route = ^/r/(.*) redirect:/x/$1\n",
    )
    server = procmaster("--ini", path, wait_port=port)
    status, headers, body = http_get(port, "/")
    assert (status, body) == (200, b"Hello, World!")
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Host"] == f"127.0.0.1:{port}"
    status, headers, _ = http_get(port, "/old/a?b")
    assert (status, headers["Location"]) == (301, "/new/a")
    status, headers, _ = http_get(port, "/env")
    assert status == 200 and "Content-Type" not in headers
    # a header injection through a capture: refused
    reply = raw_request(
        port, b"GET /r/a%0d%0aSet-Cookie:%20x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 400") and b"Set-Cookie" not in reply
    # donotlog: the health check leaves no request line, the others do
    http_get(port, "/health")
    http_get(port, "/after-health")
    server.wait_log("GET /after-health")
    assert "GET /health" not in server.log
    # a huge request line against the rules: answered, nothing breaks
    status, _, _ = http_get(port, "/" + "a" * 3000)
    assert status in (404, 414, 431, 200)
    assert http_get(port, "/")[0] == 200


def test_a_bad_route_aborts_the_start_naming_the_line(procmaster, tmp_path):
    port = free_port()
    path = ini(
        tmp_path, f"http-socket = 127.0.0.1:{port}\nmodule = testapp\nroute = ^/( return:403\n"
    )
    server = procmaster("--ini", path)
    assert server.wait_exit() != 0
    assert f"{path}:4: route = ^/( return:403: the regex" in server.log
    assert "Traceback" not in server.log


def test_static_gzip_over_http(procmaster, tmp_path):
    port = free_port()
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.css").write_text("body { color: red }\n" * 100)
    (static / "app.css.gz").write_bytes(gzip.compress((static / "app.css").read_bytes()))
    path = ini(
        tmp_path,
        f"http-socket = 127.0.0.1:{port}\nmodule = testapp\n"
        f"static-map = /static={static}\nstatic-gzip-all = true\n",
    )
    procmaster("--ini", path, wait_port=port)
    status, headers, body = http_get(port, "/static/app.css", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert headers["Vary"] == "Accept-Encoding" and headers["Content-Type"] == "text/css"
    assert int(headers["Content-Length"]) == len(body) == (static / "app.css.gz").stat().st_size
    assert gzip.decompress(body) == (static / "app.css").read_bytes()
    status, headers, body = http_get(port, "/static/app.css")
    assert "Content-Encoding" not in headers and body == (static / "app.css").read_bytes()


# -- sockets and limits ------------------------------------------------------------------


def test_protocol_http_on_a_plain_socket_and_http11_socket(procmaster, tmp_path):
    port, port11 = free_port(), free_port()
    path = ini(
        tmp_path,
        f"socket = 127.0.0.1:{port}\nprotocol = http\nhttp11-socket = 127.0.0.1:{port11}\n"
        "module = testapp\n",
    )
    procmaster("--ini", path, wait_port=port)
    assert http_get(port, "/")[::2] == (200, b"Hello, World!")
    # http11-socket keeps the connection alive for a second request
    with socket.create_connection(("127.0.0.1", port11), timeout=10) as s:
        for _ in range(2):
            s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            data = b""
            while b"Hello, World!" not in data:
                chunk = s.recv(65536)
                assert chunk, data
                data += chunk
            assert data.startswith(b"HTTP/1.1 200")


def test_an_unknown_protocol_is_refused_naming_the_line(procmaster, tmp_path):
    path = ini(tmp_path, f"socket = 127.0.0.1:{free_port()}\nprotocol = raw\nmodule = testapp\n")
    server = procmaster("--ini", path)
    assert server.wait_exit() != 0
    assert f"{path}:3: option 'protocol': 'raw' is not a protocol procmaster speaks" in server.log


def test_limit_as_is_set_in_each_worker(procmaster, tmp_path):
    port = free_port()
    path = ini(
        tmp_path,
        f"http-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesses = 2\nlimit-as = 4096\n",
    )
    server = procmaster("--ini", path, wait_port=port)
    wait_for(lambda: len(server.worker_pids()) == 2)
    for pid in server.worker_pids():
        assert psutil.Process(pid).rlimit(psutil.RLIMIT_AS) == (4096 << 20, 4096 << 20)
    assert psutil.Process(server.pid).rlimit(psutil.RLIMIT_AS)[0] != 4096 << 20


def test_atexit_handlers_run_on_a_graceful_exit_unless_skip_atexit(procmaster, tmp_path):
    app = tmp_path / "atexit_app.py"
    app.write_text(
        "import atexit, os\n"
        "def bye():\n"
        "    open(os.environ['MARK'] + '.' + str(os.getpid()), 'w').close()\n"
        "atexit.register(bye)\n"
        "def application(env, sr):\n"
        "    sr('200 OK', [('Content-Length', '2')])\n"
        "    return [b'ok']\n"
    )
    for skip in ("false", "true"):
        port = free_port()
        mark = tmp_path / f"mark-{skip}"
        path = ini(
            tmp_path,
            f"http-socket = 127.0.0.1:{port}\nwsgi-file = {app}\nlazy-apps = true\n"
            f"skip-atexit = {skip}\n",
            name=f"{skip}.ini",
        )
        server = procmaster("--ini", path, env={"MARK": str(mark)}, wait_port=port)
        workers = server.worker_pids()
        server.signal(signal.SIGTERM)
        assert server.wait_exit() == 0
        made = sorted(p.name for p in tmp_path.glob(f"mark-{skip}.*"))
        assert made == ([] if skip == "true" else [f"mark-{skip}.{w}" for w in workers])


def test_as_root_hooks_run_before_the_sockets_are_bound(procmaster, tmp_path):
    """The common pattern: a hook makes the directory of the unix socket."""
    sock = tmp_path / "run" / "app.sock"
    path = ini(
        tmp_path,
        f"http-socket = {sock}\nmodule = testapp\nhook-as-root = mkdir:{tmp_path}/run\n",
    )
    server = procmaster("--ini", path, wait_unix=str(sock))
    assert "bound" in server.log and (tmp_path / "run").is_dir()
