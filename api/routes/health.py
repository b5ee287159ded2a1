"""GET /health: liveness and the warnings an operator must see."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from soclite import __version__
from soclite.api.deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(runtime: RuntimeDep) -> dict[str, Any]:
    warnings: list[str] = []
    for part in (runtime.journal, runtime.pipeline, runtime.outbox):
        check = getattr(part, "health_warnings", None)
        if callable(check):
            warnings.extend(check())
    # Still 200 (the process serves): "degraded" says data is being lost or refused right now, and why.
    degraded = runtime.degraded()
    warnings.extend(reason for reason in degraded if reason not in warnings)
    inputs = {
        running.name: {"received": running.stats.received, "dropped": running.stats.dropped,
                       "refused": running.stats.refused, "rejected": running.stats.rejected}
        for running in runtime.inputs
    }  # fmt: skip
    return {
        "status": "degraded" if degraded else "ok", "version": __version__, "store": runtime.store.kind,
        "warnings": warnings, "degraded": degraded, "inputs": inputs,
    }  # fmt: skip
