"""GET /health: liveness, the warnings an operator must see, and one check per part that can fail.

``status`` is "ok" while the process answers and loses nothing (the DESIGN.md contract), "degraded" while
data is being dropped or refused (input queues full, disk full), with the reasons in ``degraded``;
``overall`` is "degraded" when that or any check is, and ``checks`` says which and why
(:mod:`soclite.api.notices`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from soclite import __version__
from soclite.api.deps import RuntimeDep
from soclite.api.notices import DEGRADED, OK, health_checks

router = APIRouter(tags=["health"])


@router.get("/health")
def health(runtime: RuntimeDep) -> dict[str, Any]:
    warnings: list[str] = []
    for part in (runtime.journal, runtime.pipeline, runtime.outbox):
        check = getattr(part, "health_warnings", None)
        if callable(check):
            warnings.extend(check())
    checks = health_checks(runtime)
    # Still 200 (the process serves). ``status`` is "degraded" only while data is being lost or refused
    # right now (input drops, a full disk), with the reasons; ``overall``/``checks`` cover every part
    # that can fail (a connector down, rules that do not load, failing actions).
    degraded = runtime.degraded()
    warnings.extend(reason for reason in degraded if reason not in warnings)
    inputs = {
        running.name: {"received": running.stats.received, "dropped": running.stats.dropped,
                       "refused": running.stats.refused, "rejected": running.stats.rejected}
        for running in runtime.inputs
    }  # fmt: skip
    overall = DEGRADED if degraded or any(c["status"] == DEGRADED for c in checks.values()) else OK
    return {
        "status": "degraded" if degraded else "ok", "overall": overall, "version": __version__,
        "store": runtime.store.kind, "warnings": warnings, "degraded": degraded, "inputs": inputs, "checks": checks,
    }  # fmt: skip
