"""The audit log, for auditors and admins, scoped like everything else."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from soclite.api.deps import AuditorDep, RuntimeDep, scope_of
from soclite.api.routes.alerts import TimeRangeDep
from soclite.models import AuditEntry
from soclite.runtime import Runtime

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def audit_page(runtime: Runtime, scope: frozenset[str] | None, start: datetime | None, end: datetime | None,
               limit: int, cursor: str | None) -> tuple[list[AuditEntry], int | None, str | None]:
    """A page of entries; a unit-bound auditor sees only entries about its subtree (total is then unknown)."""
    if scope is None:
        page = runtime.store.list_audit(start=start, end=end, limit=limit, cursor=cursor)
        return page.items, page.total, page.next
    items: list[AuditEntry] = []
    next_cursor = cursor
    for _ in range(50):  # bounded scan
        page = runtime.store.list_audit(start=start, end=end, limit=500, cursor=next_cursor)
        items.extend(e for e in page.items if e.unit in scope)
        next_cursor = page.next
        if len(items) >= limit or not next_cursor:
            break
    return items[:limit], None, next_cursor if len(items) >= limit else None


@router.get("")
def list_audit(
    runtime: RuntimeDep,
    principal: AuditorDep,
    period: TimeRangeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    start, end = period.start, period.end
    try:
        items, total, nxt = audit_page(runtime, scope_of(runtime, principal), start, end, limit, cursor or None)
    except ValueError as exc:
        from fastapi import HTTPException

        raise HTTPException(400, f"invalid query: {exc}") from exc
    return {"total": total if total is not None else len(items), "items": [e.model_dump(mode="json") for e in items],
            "next": nxt}
