"""GET /health: liveness and the warnings an operator must see.

``status`` is "ok", or "degraded" with its ``reasons`` when a journal consumer is more than
``journal.lag_degraded`` events behind (alerts late for detection, event search behind for storage).
The endpoint still answers 200: the server is alive and ingesting; the reason says what is late.
"""

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
    lags = runtime.journal.lags() if runtime.journal is not None else {}
    limit = runtime.settings.journal.lag_degraded
    reasons = [
        f"journal consumer {name!r} is {lag} events behind (more than {limit})"
        for name, lag in lags.items() if lag > limit
    ]
    return {
        "status": "degraded" if reasons else "ok", "reasons": reasons, "version": __version__,
        "store": runtime.store.kind, "journal_lag": lags, "warnings": [*reasons, *warnings],
    }
