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
    return {"status": "ok", "version": __version__, "store": runtime.store.kind, "warnings": warnings}
