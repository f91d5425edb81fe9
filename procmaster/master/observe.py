"""What the master shows of itself: the stats server (JSON, ``/metrics``, the
readiness and liveness probes) and the stats pushers (statsd, carbon), wired
to the master's numbers.

Theory of operation
-------------------
``start_stats`` builds one ``StatsSource`` of callables over the worker table,
the reload planner and the caches (what ``procmaster.stats`` may read, never
the master itself) and hands it to the stats server and the pushers. Readiness
is the master's to say: every configured worker accepts (``all_ready``) and no
stop has begun (``stopping`` is set at the first moment of a graceful stop, so
a probe says "not ready" while the workers still finish their requests).

Must not know: how the stats are rendered or sent (``procmaster.stats``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..ipc import STATS_FD_ENV
from ..logs import log

if TYPE_CHECKING:
    from ..stats import StatsServer
    from ..stats.push import Pushers

__all__ = ["start_stats"]


def start_stats(master) -> tuple[StatsServer | None, Pushers | None]:
    """The stats server (``stats``) and the pushers (``stats-push``, ``carbon``),
    each None when not configured; a stats address that cannot be bound is a
    warning (the site serves on without stats)."""
    cfg = master.cfg
    if not (cfg.get("stats") or cfg.stats_push or cfg.carbon):
        if STATS_FD_ENV in os.environ:  # the previous image served stats: close its socket
            from ..stats import StatsServer  # lazily, as below

            StatsServer.forget_inherited()
        return None, None
    # lazily: the stats server and the pushers (JSON documents, metrics, UDP) are
    # loaded only by a master configured to serve or push stats
    from ..stats import StatsServer, StatsSource
    from ..stats.push import make_pushers

    table = master.table
    source = StatsSource(
        workers=lambda: [(p.wid, p.pid, s) for p, s in table.slots()],
        respawns=lambda: table.respawns,
        reloads=lambda: master.planner.reloads,
        listeners=master.listeners,
        cwd=master.start_cwd,
        caches=master.runtime.caches.stats,
        ready=lambda: not master.stopping and table.all_ready(),
    )
    server = None
    try:
        if cfg.get("stats"):
            server = StatsServer(
                cfg.get("stats"), cfg.stats_http, source, master.sel, cfg.get("chmod-socket")
            )
        else:
            StatsServer.forget_inherited()
    except (OSError, ValueError) as exc:
        log(f"warning: {cfg.origin('stats')}: cannot serve stats on {cfg.get('stats')!r}: {exc}")
    return server, make_pushers(cfg, source, log, master.sel)
