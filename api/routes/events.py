"""Events: search over stored events, scoped to the caller's units."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from soclite.api.deps import RuntimeDep, ScopeDep, narrow
from soclite.api.routes.alerts import TimeRangeDep
from soclite.api.search import parse_search
from soclite.errors import NotFoundError
from soclite.store.base import EventQuery

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.get("")
def list_events(
    runtime: RuntimeDep,
    scope: ScopeDep,
    period: TimeRangeDep,
    host: Annotated[str | None, Query(max_length=255)] = None,
    q: Annotated[str | None, Query(max_length=500, description="full text")] = None,
    query: Annotated[str | None, Query(max_length=2000, description=(
        'search: field:value, "phrases", AND/OR/NOT, * and ? wildcards, e.g. '
        'source.ip:203.0.113.45 AND NOT user.name:admin'))] = None,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    field: Annotated[list[str] | None, Query(description="exact match NAME=VALUE, repeatable")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Events newest first → {"total", "items", "next"}."""
    start, end = period.start, period.end
    fields: dict[str, str] = {}
    for item in field or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"field filter {item!r} must be NAME=VALUE")
        fields[name.strip()] = value
    search = EventQuery(host=host or None, q=q or None, start=start, end=end, units=narrow(scope, unit, runtime),
                        fields=fields, expr=parse_search(query or ""), limit=limit, cursor=cursor or None)
    try:
        page = runtime.store.query_events(search)
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"invalid query: {exc}") from exc
    return {"total": page.total, "items": page.items, "next": page.next}


@router.get("/{event_id}")
def get_event(event_id: str, runtime: RuntimeDep, scope: ScopeDep) -> dict[str, Any]:
    page = runtime.store.query_events(EventQuery(ids=[event_id], units=scope, limit=1))
    if not page.items:
        raise NotFoundError(f"event {event_id} not found")
    return page.items[0]
