"""Checks of the bench's own pure parts, no servers started: wrk's output parsed,
--only and --baseline-tree selecting rows, the round order, the environment of a
source tree, and the wire bytes understood by procmaster's protocol parsers.

    python -m pytest bench/test_bench.py        (from the repository root)

Not collected by the project's test suite (testpaths = tests): bench/ is a tool.
"""

from __future__ import annotations

import os

import pytest
from processes import ROOT, tree_env
from scenarios import SCENARIOS
from servers import ALL_SERVERS, BASELINE, round_order, with_baseline, with_tree
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
    servers = with_baseline(with_tree(list(ALL_SERVERS[:3]), "/new"), "/old")
    names = [s.name for s in servers]
    assert [s.name for s in round_order(servers, 1)] == names
    assert [s.name for s in round_order(servers, 2)] == [
        "procmaster",
        "procmaster (baseline)",
        "uWSGI",
        "gunicorn",
    ]


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
    assert names(["nginx-asgi"]) == {"procmaster-asgi-uwsgi", "uvicorn-proxy", "granian-proxy"}
