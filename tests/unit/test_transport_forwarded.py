"""Forwarded headers believed only from trusted proxies (transports/forwarded.py)
and the trusted-network lists (transports/networks.py)."""

from __future__ import annotations

import pytest

from procmaster.transports import forwarded
from procmaster.transports.networks import Networks

TRUSTED = Networks.parse(["10.0.0.0/8, 127.0.0.1", "::1"])


def env(remote="127.0.0.1", **headers):
    e = {"REMOTE_ADDR": remote, "REMOTE_PORT": "4000", "wsgi.url_scheme": "http"}
    e.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    return e


def test_networks_parse_and_contain():
    assert TRUSTED.contains("10.1.2.3") and TRUSTED.contains("::1")
    assert TRUSTED.contains("::ffff:127.0.0.1")
    assert (
        not TRUSTED.contains("11.0.0.1") and not TRUSTED.contains("") and not TRUSTED.contains("x")
    )
    assert Networks.parse("*").contains("203.0.113.1")
    for bad in ("10.0.0.0/33", "example.com", ""):
        with pytest.raises(ValueError):
            Networks.parse(bad)


def test_untrusted_peer_changes_nothing():
    e = env("203.0.113.5", x_forwarded_for="1.2.3.4", x_forwarded_proto="https")
    before = dict(e)
    forwarded.apply(e, TRUSTED)
    assert e == before


def test_first_untrusted_hop_from_the_right():
    e = env(x_forwarded_for="6.6.6.6, 198.51.100.7, 10.0.0.2", x_forwarded_proto="https")
    forwarded.apply(e, TRUSTED)
    assert e["REMOTE_ADDR"] == "198.51.100.7"  # 6.6.6.6 was written by the client: not believed
    assert e["wsgi.url_scheme"] == "https" and e["HTTPS"] == "on"


def test_all_trusted_gives_the_leftmost_and_garbage_stops_the_walk():
    e = env(x_forwarded_for="10.0.0.9, 10.0.0.8")
    forwarded.apply(e, TRUSTED)
    assert e["REMOTE_ADDR"] == "10.0.0.9"
    e = env(x_forwarded_for="1.1.1.1, <script>, 10.0.0.8")
    forwarded.apply(e, TRUSTED)
    assert e["REMOTE_ADDR"] == "10.0.0.8"


def test_proto_and_host():
    e = env(x_forwarded_proto="javascript", x_forwarded_host="evil\r\nx")
    forwarded.apply(e, TRUSTED)
    assert e["wsgi.url_scheme"] == "http" and "HTTP_HOST" not in e
    e = env(x_forwarded_proto="https, http", x_forwarded_host="a.example, www.example.com:8443")
    forwarded.apply(e, TRUSTED)
    assert e["wsgi.url_scheme"] == "http" and e["HTTP_HOST"] == "www.example.com:8443"


def test_rfc7239_forwarded():
    e = env(
        forwarded='for=6.6.6.6, for="[2001:db8::5]:4711";proto=https;host=app.example, '
        "for=10.0.0.3",
        x_forwarded_for="9.9.9.9",
    )
    forwarded.apply(e, TRUSTED)
    assert e["REMOTE_ADDR"] == "2001:db8::5" and e["REMOTE_PORT"] == "4711"
    assert e["wsgi.url_scheme"] == "https" and e["HTTP_HOST"] == "app.example"
    e = env(forwarded="for=unknown, for=10.0.0.3")
    forwarded.apply(e, TRUSTED)
    assert e["REMOTE_ADDR"] == "10.0.0.3"


def test_a_thousand_hops_cost_a_bounded_walk():
    hops = ", ".join(f"10.0.{i // 250}.{i % 250}" for i in range(1000))
    e = env(x_forwarded_for="7.7.7.7, " + hops)
    forwarded.apply(e, TRUSTED)
    # every hop is trusted; the walk stops after MAX_HOPS, never reaching 7.7.7.7
    assert e["REMOTE_ADDR"] == "10.0.3.218"
    e = env(forwarded=", ".join(["for=10.0.0.1"] * 1000))
    forwarded.apply(e, TRUSTED)
    assert e["REMOTE_ADDR"] == "10.0.0.1"
