"""The master's statistics: uWSGI's stats server (JSON, Prometheus ``/metrics``,
readiness and liveness), and the pushers that send the same numbers to statsd
and carbon.

Theory of operation
-------------------
``document`` renders what a ``StatsSource`` (callables the master hands in)
reports; ``server`` answers clients on the ``stats`` socket; ``push`` sends
metrics over UDP at ``stats-push``'s frequency. All three run in the master's
loop and never block it.

Must not know: how workers are run, reloads are done, or requests are served.
"""

from .document import StatsSource, listen_queue, render_json, render_metrics, stats_document
from .server import PROBES, StatsServer

__all__ = [
    "PROBES",
    "StatsServer",
    "StatsSource",
    "listen_queue",
    "render_json",
    "render_metrics",
    "stats_document",
]
