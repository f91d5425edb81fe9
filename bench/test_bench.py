"""Checks of the bench's own pure parts, no servers started: wrk's output parsed,
--only and --baseline-tree selecting rows, the round order, the environment of a
source tree, the wire bytes understood by procmaster's protocol parsers, and the
rows of app_rows.py (threads, Django and Flask behind nginx, logging on): same
settings on both sides, the bodies the apps really answer, the threads ratio.

    python -m pytest bench/test_bench.py        (from the repository root)

Part of the project's test suite too (testpaths = tests, bench): a bench that
misreads wrk or mixes up its rows would put wrong figures in RESULTS.md.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import pytest
from app_rows import (
    DJANGO_BODY,
    EVERY_SERVER,
    FLASK_BODY,
    LOGGED_SERVERS,
    REAL_APP_SERVERS,
    THREAD_SERVERS,
)
from processes import HERE, ROOT, tree_env
from scenarios import SCENARIOS
from servers import ALL_SERVERS, APPS, BASELINE, round_order, with_baseline, with_tree
from soak import slope
from wire import fastcgi_request, scgi_request, uwsgi_packet
from wrk import parse_wrk

import bench
from procmaster.protocols.fastcgi import FastCGIProtocol
from procmaster.protocols.scgi import SCGIProtocol
from procmaster.protocols.uwsgi import UwsgiProtocol

WRK_OUTPUT = """Running 8s test @ http://127.0.0.1:40000/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms    2.10ms  48.31ms   93.10%
    Req/Sec    21.40k     1.90k   25.10k    70.00%
  340880 requests in 8.00s, 40.31MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:  42610.00
Transfer/sec:      5.04MB
"""


def test_parse_wrk_reads_every_figure() -> None:
    res = parse_wrk(WRK_OUTPUT)
    assert not res.failed
    assert res.rps == 42610.0
    assert res.requests == 340880
    assert (res.connect, res.read, res.write, res.timeout) == (0, 3, 1, 2)
    assert res.socket_errors == 4
    assert res.non2xx == 5
    assert res.max_latency == pytest.approx(0.04831)


def test_parse_wrk_without_result_is_failed() -> None:
    assert parse_wrk("unable to connect to 127.0.0.1:1 Connection refused").failed


def lead_selection(baseline: str) -> list[str]:
    servers, scenarios = bench.select(
        ["procmaster", "uWSGI", "procmaster-uwsgi", "uWSGI-uwsgi", "keep-alive"],
        ALL_SERVERS,
        SCENARIOS,
    )
    assert [c.name for c in scenarios] == ["keep-alive"]
    return [s.name for s in with_baseline(with_tree(servers, ROOT), baseline)]


def test_baseline_twin_precedes_each_procmaster_row() -> None:
    assert lead_selection("/somewhere/else") == [
        "procmaster (baseline)",
        "procmaster",
        "uWSGI",
        "procmaster-uwsgi (baseline)",
        "procmaster-uwsgi",
        "uWSGI-uwsgi",
    ]


def test_baseline_twin_runs_its_tree_in_the_same_group() -> None:
    servers = with_baseline(with_tree(list(ALL_SERVERS[:2]), "/new"), "/old")
    twin, ours, theirs = servers
    assert (twin.family, twin.tree, twin.group) == (BASELINE, "/old", ours.group)
    assert (ours.family, ours.tree) == ("procmaster", "/new")
    assert theirs.tree == "" and theirs.family == "uWSGI"
    assert twin.commands == ours.commands
    assert twin.slug == "procmaster-baseline"


def test_even_rounds_swap_baseline_and_current() -> None:
    first = [s for s in ALL_SERVERS if s.name in ("procmaster", "uWSGI", "gunicorn")]
    servers = with_baseline(with_tree(first, "/new"), "/old")
    names = [s.name for s in servers]
    assert [s.name for s in round_order(servers, 1)] == names
    assert [s.name for s in round_order(servers, 2)] == [
        "procmaster",
        "procmaster (baseline)",
        "uWSGI",
        "gunicorn",
    ]


def test_peers_are_compared_in_the_same_mode() -> None:
    """A close run compares with uWSGI's --http-socket (it honours Connection:
    close), a keep-alive run with --http11-socket."""
    for scenario in SCENARIOS:
        peers = [s for s in ALL_SERVERS if s.family == "uWSGI" and s.serves(scenario)]
        for server in peers:
            argv = server.commands[0]
            if server.suite == "nginx":
                continue  # behind nginx: a new connection per request either way
            wanted = "--http-socket" if scenario.client_closes else "--http11-socket"
            assert wanted in argv, (scenario.name, server.name)


def test_tree_env_puts_the_tree_first() -> None:
    env = tree_env("/old", {"PYTHONPATH": "/elsewhere", "HOME": "/root"})
    assert env["PYTHONPATH"] == os.pathsep.join(["/old", "/elsewhere"])
    assert tree_env("/old", {})["PYTHONPATH"] == "/old"


class Sink:
    def __init__(self) -> None:
        self.environ: dict | None = None
        self.ended = False

    def on_head(self, req) -> None:
        self.environ = req.environ

    def on_body(self, req, data) -> None:
        pass

    def on_end(self, req) -> None:
        self.ended = True


PAIRS = [(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/hello"), (b"QUERY_STRING", b"x=1")]


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (UwsgiProtocol, uwsgi_packet(PAIRS)),
        (SCGIProtocol, scgi_request(PAIRS)),
        (FastCGIProtocol, fastcgi_request(PAIRS)),
        (FastCGIProtocol, fastcgi_request([*PAIRS, (b"HTTP_X_LONG", b"v" * 300)])),
    ],
)
def test_wire_bytes_are_one_whole_request(cls, data: bytes) -> None:
    sink = Sink()
    cls(sink).feed(data)
    assert sink.ended
    assert sink.environ is not None
    assert sink.environ["REQUEST_METHOD"] == "GET"
    assert sink.environ["PATH_INFO"] == "/hello"
    assert sink.environ["QUERY_STRING"] == "x=1"


def test_soak_slope_is_least_squares() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert slope([(0, 7), (1, 7)]) == 0.0
    assert slope([(0, 1)]) == 0.0


def test_asgi_rows_run_only_when_named() -> None:
    def names(only: list[str]) -> set[str]:
        return {s.name for s in bench.select(only, ALL_SERVERS, SCENARIOS)[0]}

    assert not {"uvicorn", "granian", "procmaster-asgi"} & (names([]) | names(["http"]))
    assert {"procmaster-asgi", "uvicorn", "granian", "gunicorn-asgi"} <= names(["asgi"])
    assert names(["nginx-asgi"]) == {
        "procmaster-asgi-uwsgi",
        "procmaster-asgi-proxy",
        "uvicorn-proxy",
        "granian-proxy",
    }
    assert names(["nginx-asgi-json"]) == {
        "procmaster-asgi-proxy-json",
        "uvicorn-proxy-json",
        "granian-proxy-json",
    }
    assert "uvicorn-proxy-json" not in names(["asgi-json"]) | names(["nginx-asgi"])


def test_a_row_with_errors_is_void() -> None:
    """A run with socket errors gives no req/s and no ratio (its requests got no answer)."""
    from report import ratios, table
    from runner import Row
    from wrk import WrkResult

    ours = next(s for s in ALL_SERVERS if s.name == "procmaster")
    theirs = next(s for s in ALL_SERVERS if s.name == "uWSGI http-socket")
    close = next(c for c in SCENARIOS if c.name == "close")
    good = Row(ours, close, runs=[WrkResult(rps=5000.0, requests=5000)])
    bad = Row(theirs, close, runs=[WrkResult(rps=6000.0, requests=6000, read=300)])
    cells = {c[1]: c[2] for c in table([good, bad])[1]}
    assert cells == {"procmaster": "5,000", "uWSGI http-socket": "void (errors)"}
    assert ratios([good, bad])[1] == [["close", "void (errors)"]]


def test_new_rows_run_only_when_named_and_leave_the_old_selections_alone() -> None:
    def names(only: list[str]) -> set[str]:
        return {s.name for s in bench.select(only, EVERY_SERVER, SCENARIOS)[0]}

    new = {s.name for s in THREAD_SERVERS + REAL_APP_SERVERS + LOGGED_SERVERS}
    for only in ([], ["http"], ["nginx"], ["keep-alive"], ["close"]):
        assert not new & names(only), only
        assert names(only) == {s.name for s in bench.select(only, ALL_SERVERS, SCENARIOS)[0]}
    servers, scenarios = bench.select(["threads-1", "threads-4"], EVERY_SERVER, SCENARIOS)
    assert [c.name for c in scenarios] == ["threads hello", "threads sleep"]
    assert [s.name for s in servers] == [
        "procmaster threads=1",
        "uWSGI threads=1",
        "procmaster threads=4",
        "uWSGI threads=4",
    ]
    assert names(["nginx-django"]) == {"procmaster-django", "uWSGI-django", "gunicorn-django"}
    assert names(["http-logged"]) == {"procmaster logged", "uWSGI logged"}


def options(server) -> list[str]:
    """The options of a row's backend (its first command) after the program and its
    socket (procmaster's --http-socket is uWSGI's --http11-socket for keep-alive)."""
    argv = list(server.commands[0])
    return argv[5:] if argv[0] == "{python}" else argv[3:]


def test_peers_of_the_new_rows_run_with_the_same_settings() -> None:
    """procmaster and uWSGI differ by their program only (the threads rows, the
    real apps, the logged rows); the logged rows differ from their base only by
    logging."""
    pairs = [THREAD_SERVERS[0:2], THREAD_SERVERS[2:4], LOGGED_SERVERS]
    pairs += [REAL_APP_SERVERS[0:2], REAL_APP_SERVERS[3:5]]
    for ours, theirs in pairs:
        assert (ours.family, theirs.family) == ("procmaster", "uWSGI")
        extra = ["--tcp-nodelay"] if ours.suite == "threads" else []  # procmaster's own
        assert options(ours) + extra == options(theirs), (ours.name, theirs.name)
    for row, threads in zip(THREAD_SERVERS, (1, 1, 4, 4), strict=True):
        argv = options(row)
        assert argv[argv.index("--threads") + 1] == str(threads)
        assert "{apps}/threads_app.py" in argv and "--disable-logging" in argv
    for row in LOGGED_SERVERS:
        base = next(s for s in ALL_SERVERS if s.name == row.name.removesuffix(" logged"))
        assert "--disable-logging" not in row.commands[0]
        assert [a for a in options(base) if a != "--disable-logging"] == options(row)


def test_gunicorn_behind_nginx_gets_the_clients_host() -> None:
    """Django refuses proxy_pass's default Host (the upstream's name, http_app)."""
    for row in REAL_APP_SERVERS:
        conf = dict(row.files)["nginx.conf"]
        if row.family == "gunicorn":
            assert "proxy_pass http://http_app;" in conf and "proxy_set_header Host $host;" in conf
            assert "--worker-class" in row.commands[0] and "sync" in row.commands[0]
        else:
            assert "uwsgi_pass unix:{tmp}/app.sock;" in conf


def wsgi_get(app, path: str = "/") -> tuple[str, bytes]:
    """Call a WSGI app once; its status and body."""
    got: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
    }
    body = b"".join(app(environ, lambda status, headers, exc_info=None: got.append(status)))
    return got[0], body


def test_real_apps_answer_the_bodies_the_rows_expect(tmp_path) -> None:
    """The bodies readiness and probes compare with: what the apps really send
    (Django with its SQLite query, in a child so its settings stay there)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import django_app, flask_app, test_bench;"
        " print(test_bench.wsgi_get(django_app.application)[1].decode(), end='\\0');"
        " print(test_bench.wsgi_get(flask_app.application)[1].decode(), end='')"
    )
    env = {**os.environ, "BENCH_DB": str(tmp_path / "items.sqlite3")}
    env["PYTHONPATH"] = os.pathsep.join([HERE, ROOT])
    out = subprocess.run(
        [sys.executable, "-c", code, APPS], env=env, capture_output=True, check=True
    ).stdout
    django_body, flask_body = out.split(b"\0")
    assert django_body == DJANGO_BODY and flask_body == FLASK_BODY
    for row in REAL_APP_SERVERS:
        assert row.expected == (DJANGO_BODY if "django" in row.group else FLASK_BODY)


def test_threads_app_streams_and_sleeps_on_sleep_only() -> None:
    sys.path.insert(0, APPS)
    try:
        import threads_app
    finally:
        sys.path.remove(APPS)
    assert wsgi_get(threads_app.application) == ("200 OK", b"Hello, World!")
    status_headers: list = []
    result = threads_app.application(
        {"PATH_INFO": "/"}, lambda s, h, e=None: status_headers.append(h)
    )
    assert not isinstance(result, list | tuple | bytes)  # a generator: the server streams it
    assert list(result) == [b"Hello, ", b"World!"]
    t0 = time.monotonic()
    assert wsgi_get(threads_app.application, "/sleep")[1] == b"Hello, World!"
    assert time.monotonic() - t0 >= threads_app.SLEEP


def test_threads_ratio_is_each_family_against_its_one_thread_row() -> None:
    from report import threads_table
    from runner import Row
    from wrk import WrkResult

    hello, sleep = (c for c in SCENARIOS if c.suites == ("threads",))
    figures = {  # (server, scenario): req/s; uWSGI threads=4 sleep has an error
        (0, hello): 1000.0, (1, hello): 800.0, (2, hello): 950.0, (3, hello): 900.0,
        (0, sleep): 40.0, (1, sleep): 20.0, (2, sleep): 150.0, (3, sleep): 80.0,
    }  # fmt: skip
    rows = [
        Row(THREAD_SERVERS[i], c, runs=[WrkResult(rps=v, requests=int(v), timeout=(i, c) == (3, sleep))])
        for (i, c), v in figures.items()
    ]  # fmt: skip
    header, cells = threads_table(rows)
    assert header == ["scenario", "procmaster threads=4 / threads=1", "uWSGI threads=4 / threads=1"]
    assert cells == [["threads hello", "0.95", "1.12"], ["threads sleep", "3.75", "void (errors)"]]


@pytest.mark.parametrize("case", ["asgi-keepalive", "uvicorn-keepalive", "uwsgi"])
def test_opcodes_counts_each_server_from_its_first_request(case) -> None:
    """opcodes.py counts procmaster and the uvicorn peer the same way: from the
    first call of the app on (no start-up), per request, with the app among the
    functions it names."""
    run = subprocess.run(
        [sys.executable, os.path.join(HERE, "opcodes.py"), case, "8"],
        cwd=HERE,
        env=tree_env(ROOT),
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout
    totals = [line for line in out.splitlines() if "opcodes per request" in line]
    assert totals, f"exit {run.returncode}:\n{out}{run.stderr[-2000:]}"
    total = totals[0]
    per_request = int(total.split(": ")[1].split()[0].replace(",", ""))
    assert 100 < per_request < 20_000, out  # (start-up would add tens of thousands)
    assert " app" in out or " hello" in out, out
