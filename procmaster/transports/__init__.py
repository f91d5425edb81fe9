"""Transport layers between a client's socket and its wire protocol: the PROXY
protocol header (``proxy``), TLS in memory (``tls``) and the certificate a
server name picks (``sni``), the trusted forwarded headers (``forwarded``) and
the networks a layer trusts (``networks``).

Theory of operation
-------------------
Each layer is sans-IO, like ``protocols/``: bytes in, bytes (and facts) out,
tested with bytes alone. The worker (``worker/transport.py``) runs a
connection's received bytes through its layers before the protocol sees them
and its response bytes through them before the write.

Must not know: sockets, ``os``, the worker's loop, WSGI, logging, protocol names.
"""
