"""Dead letters: ``GET /api/v1/deadletters`` — input that could not become an event, with reason and raw bytes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from soclite.api.deps import MAX_SEQ, AnalystDep, RuntimeDep, scope_of
from soclite.store.deadletter import DeadLetters

router = APIRouter(prefix="/api/v1/deadletters", tags=["deadletters"])


@router.get("")
def list_deadletters(
    runtime: RuntimeDep,
    principal: AnalystDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
) -> dict[str, Any]:
    """Newest first → {"total", "items": [{id, at, source, reason, raw, raw_base64, unit}], "next"}.

    A unit-bound caller sees only dead letters its subtree's agents sent; unit-less
    ones (syslog, file loads, province-wide senders) only province-wide callers see.
    """
    if runtime.journal is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "ingest journal is not running")
    letters = DeadLetters(runtime.journal.db)
    scope = scope_of(runtime, principal)
    items, next_cursor = letters.list(limit, cursor, scope)
    return {"total": letters.count(scope), "items": [item.to_json() for item in items], "next": next_cursor}
