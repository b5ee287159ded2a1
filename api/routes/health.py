"""GET /health: liveness, the warnings an operator must see, and one check per part that can fail.

``status`` is "ok" while the process answers and loses nothing late or dropped (the DESIGN.md contract), and
"degraded" with its ``reasons`` while data is being dropped or refused (input queues full, disk full) or a
journal consumer is more than ``journal.lag_degraded`` events behind (alerts late for detection, event search
behind for storage). The endpoint still answers 200: the server is alive. ``overall`` is "degraded" when
that or any check is, and ``checks`` says which and why (:mod:`soclite.api.notices`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from soclite import __version__
from soclite.api.deps import RuntimeDep
from soclite.api.notices import DEGRADED, OK, health_checks
from soclite.control.retention import last_run

router = APIRouter(tags=["health"])


@router.get("/health")
def health(runtime: RuntimeDep) -> dict[str, Any]:
    warnings: list[str] = []
    for part in (runtime.journal, runtime.pipeline, runtime.outbox):
        check = getattr(part, "health_warnings", None)
        if callable(check):
            warnings.extend(check())
    checks = health_checks(runtime)
    lags = runtime.journal.lags() if runtime.journal is not None else {}
    limit = runtime.settings.journal.lag_degraded
    reasons = [*runtime.degraded()]
    reasons += [
        f"journal consumer {name!r} is {lag} events behind (more than {limit})"
        for name, lag in lags.items() if lag > limit
    ]
    warnings.extend(reason for reason in reasons if reason not in warnings)
    inputs = {
        running.name: {"received": running.stats.received, "dropped": running.stats.dropped,
                       "refused": running.stats.refused, "rejected": running.stats.rejected}
        for running in runtime.inputs
    }  # fmt: skip
    run = last_run(runtime.control)
    retention = None if run is None else {
        key: run[key] for key in ("status", "started_at", "finished_at", "before", "events_deleted", "alerts_deleted",
                                  "archived_days", "segments_retired")
    }
    if run is not None and run["status"] == "failed":
        warnings.append(f"the last retention run (started {run['started_at']}) failed: see the server log")
    overall = DEGRADED if reasons or any(c["status"] == DEGRADED for c in checks.values()) else OK
    return {
        "status": "degraded" if reasons else "ok", "reasons": reasons, "degraded": reasons, "overall": overall,
        "version": __version__, "store": runtime.store.kind, "journal_lag": lags, "warnings": warnings,
        "inputs": inputs, "checks": checks, "retention": retention,
    }  # fmt: skip
