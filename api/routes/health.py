"""GET /health: liveness, the warnings an operator must see, and one check per part that can fail.

``status`` stays "ok" while the process answers (the DESIGN.md contract: monitors and the acceptance
checks read it as liveness); ``overall`` is "degraded" when any check is, and ``checks`` says which and why
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
    overall = DEGRADED if any(c["status"] == DEGRADED for c in checks.values()) else OK
    return {"status": "ok", "overall": overall, "version": __version__, "store": runtime.store.kind,
            "warnings": warnings, "checks": checks}  # fmt: skip
