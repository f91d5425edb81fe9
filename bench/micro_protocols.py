"""Micro-benchmark of the uwsgi, FastCGI and SCGI protocols on bytes alone (no sockets).

For each protocol, one "request" is: a new protocol object (one per connection,
as the worker does), ``feed()`` of a request as nginx sends it (its stock
``uwsgi_params`` / ``fastcgi_params`` / ``scgi_params`` plus typical browser headers), then
``response_head`` + ``response_body`` + ``response_end`` of a small response.
Reported: requests/s parsed only, and parsed + framed; best of ``--repeat`` runs.
Also the streaming rates of a large body in and out (MB/s).

    python bench/micro_protocols.py [--n 100000] [--repeat 5]

The procmaster measured is this checkout's, whatever else is installed; the
request bytes are built in wire.py. The machine should be otherwise idle: the
figures are the best of several runs because a busy neighbour only ever makes a
run slower.
"""

from __future__ import annotations

import argparse
import sys
import time

from processes import ROOT
from wire import FCGI_STDIN, fastcgi_record, fastcgi_request, scgi_request, uwsgi_packet

sys.path.insert(0, ROOT)  # this checkout's procmaster, before any installed one

from procmaster.protocols.fastcgi import FastCGIProtocol  # noqa: E402
from procmaster.protocols.scgi import SCGIProtocol  # noqa: E402
from procmaster.protocols.uwsgi import UwsgiProtocol  # noqa: E402

# what nginx 1.22 sends for "GET /hello?name=world" from a browser
VARS = [
    (b"QUERY_STRING", b"name=world"),
    (b"REQUEST_METHOD", b"GET"),
    (b"CONTENT_TYPE", b""),
    (b"CONTENT_LENGTH", b""),
    (b"REQUEST_URI", b"/hello?name=world"),
    (b"PATH_INFO", b"/hello"),
    (b"DOCUMENT_ROOT", b"/usr/share/nginx/html"),
    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"REQUEST_SCHEME", b"http"),
    (b"REMOTE_ADDR", b"192.168.1.20"),
    (b"REMOTE_PORT", b"51514"),
    (b"SERVER_PORT", b"80"),
    (b"SERVER_NAME", b"example.com"),
    (b"HTTP_HOST", b"example.com"),
    (b"HTTP_USER_AGENT", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"HTTP_ACCEPT", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"HTTP_ACCEPT_LANGUAGE", b"en-US,en;q=0.5"),
    (b"HTTP_ACCEPT_ENCODING", b"gzip, deflate, br"),
    (b"HTTP_COOKIE", b"sessionid=0123456789abcdef0123456789abcdef; csrftoken=abcdefabcdef"),
    (b"HTTP_CONNECTION", b"keep-alive"),
]
FASTCGI_EXTRA = [
    (b"SCRIPT_NAME", b"/hello"),
    (b"DOCUMENT_URI", b"/hello"),
    (b"GATEWAY_INTERFACE", b"CGI/1.1"),
    (b"SERVER_SOFTWARE", b"nginx/1.22.1"),
    (b"SERVER_ADDR", b"192.168.1.10"),
    (b"REDIRECT_STATUS", b"200"),
]
STATUS = "200 OK"
HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "13")]
BODY = b"Hello, World!"


class Sink:
    __slots__ = ("req",)

    def __init__(self):
        self.req = None

    def on_head(self, req):
        self.req = req

    def on_body(self, req, data):
        pass

    def on_end(self, req):
        pass


def per_request(factory, data, n, frame):
    sink = Sink()
    t0 = time.perf_counter()
    if frame:
        for _ in range(n):
            proto = factory(sink)
            proto.feed(data)
            req = sink.req
            proto.response_head(req, STATUS, HEADERS)
            proto.response_body(req, BODY)
            proto.response_end(req)
    else:
        for _ in range(n):
            factory(sink).feed(data)
    return n / (time.perf_counter() - t0)


def best(fn, repeat):
    return max(fn() for _ in range(repeat))


def stream_in(factory, head, record, count):
    """MB/s of body handed to on_body, fed in 64 KiB reads."""
    sink = Sink()
    proto = factory(sink)
    proto.feed(head)
    data = record * count
    reads = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    t0 = time.perf_counter()
    for piece in reads:
        proto.feed(piece)
    return len(data) / (time.perf_counter() - t0) / 1e6


def stream_out(factory, data, chunk, total):
    sink = Sink()
    proto = factory(sink)
    proto.feed(data)
    req = sink.req
    t0 = time.perf_counter()
    for _ in range(total // len(chunk)):
        proto.response_body(req, chunk)
    return total / (time.perf_counter() - t0) / 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="requests per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best is reported")
    args = parser.parse_args(argv)

    uwsgi_get = uwsgi_packet(VARS)
    fcgi_get = fastcgi_request(VARS + FASTCGI_EXTRA)
    body = bytes(range(256)) * 4
    post_vars = [(k, v) for k, v in VARS if k not in (b"REQUEST_METHOD", b"CONTENT_LENGTH")]
    post_vars += [(b"REQUEST_METHOD", b"POST"), (b"CONTENT_LENGTH", b"1024")]
    uwsgi_post = uwsgi_packet(post_vars, body)
    fcgi_post = fastcgi_request(post_vars + FASTCGI_EXTRA, body)
    scgi_get = scgi_request(VARS)
    scgi_post = scgi_request(post_vars, body)
    cases = [
        ("uwsgi", "GET", UwsgiProtocol, uwsgi_get),
        ("uwsgi", "POST 1 KiB", UwsgiProtocol, uwsgi_post),
        ("fastcgi", "GET", FastCGIProtocol, fcgi_get),
        ("fastcgi", "POST 1 KiB", FastCGIProtocol, fcgi_post),
        ("scgi", "GET", SCGIProtocol, scgi_get),
        ("scgi", "POST 1 KiB", SCGIProtocol, scgi_post),
    ]
    print(f"n={args.n} per run, best of {args.repeat}; request sizes: ", end="")
    print(", ".join(f"{p} {w} {len(d)} B" for p, w, _, d in cases))
    print(f"{'protocol':<9} {'request':<11} {'parse req/s':>12} {'parse+frame req/s':>18}")
    for proto_name, what, factory, data in cases:
        parse = best(lambda f=factory, d=data: per_request(f, d, args.n, False), args.repeat)
        full = best(lambda f=factory, d=data: per_request(f, d, args.n, True), args.repeat)
        print(f"{proto_name:<9} {what:<11} {parse:>12,.0f} {full:>18,.0f}")

    mib = 1024 * 1024
    big = bytes(range(256)) * 4096  # 1 MiB
    up_vars = post_vars[:-1] + [(b"CONTENT_LENGTH", str(64 * mib).encode())]
    fc_head = fastcgi_request(up_vars + FASTCGI_EXTRA)
    fc_head = fc_head[: len(fc_head) - 8]  # all but the empty STDIN record
    fc_rec = fastcgi_record(FCGI_STDIN, 1, big[:32768])
    fc_in = best(lambda: stream_in(FastCGIProtocol, fc_head, fc_rec, 2048), args.repeat)
    fc_out = best(lambda: stream_out(FastCGIProtocol, fcgi_get, big, 256 * mib), args.repeat)
    print("FastCGI body streaming, MB/s:")
    print(f"  in  {fc_in:>7,.0f}  (32 KiB STDIN records, 64 KiB reads; one copy per read)")
    print(f"  out {fc_out:>7,.0f}  (1 MiB chunks into 65528-byte STDOUT records; one copy)")
    print(
        "uwsgi and SCGI body streaming: no copy in either direction "
        "(reads are handed on as they are)"
    )


if __name__ == "__main__":
    main()
