"""Alerts: the triage queue, detail with matched and surrounding events, lifecycle, comments, bulk."""

from __future__ import annotations

import csv
import inspect
import io
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from pydantic_core import to_json

from soclite import attack, sitetime
from soclite.api import process_tree, triage
from soclite.api.deps import AnalystDep, RuntimeDep, ScopeDep, ViewsDep, narrow
from soclite.api.viewcache import query_key
from soclite.csvsafe import safe_row
from soclite.errors import NotFoundError, TriageError
from soclite.models import AlertStatus, Level, Severity, utcnow
from soclite.runtime import Runtime
from soclite.store.base import AlertQuery, EventQuery

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

T = TypeVar("T")

#: how far around an alert the host's other events are shown
CONTEXT_MINUTES = 15
#: the process tree's window (hours before and after its anchor event), as the alert page offers it
TREE_HOURS = (1, 6, 24, 168)


def attack_json(tags: list[str]) -> dict[str, Any]:
    """The rule's ATT&CK tactics and techniques by name, each with its attack.mitre.org page."""
    mapping = attack.from_tags(tags)
    return {
        "tactics": [{"id": t.id, "name": t.name, "shortname": t.shortname, "url": t.url} for t in mapping.tactics],
        "techniques": [{"id": t.id, "name": t.full_name, "url": t.url, "tactics": list(mapping.columns(t))}
                       for t in mapping.techniques],
    }




def split_csv(values: list[str] | None) -> list[str] | None:
    """Accept both ``?status=a&status=b`` and ``?status=a,b``."""
    if not values:
        return None
    out = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return out or None


_FROM_HELP = ("first instant: a date (2026-12-07 or 07/12/2026) = that day's local midnight in the site's zone; "
              "or an ISO 8601 datetime (with an offset; without one it is local time)")
_TO_HELP = "end, exclusive for a datetime; a date includes that whole local day"


def check_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'to' must not be before 'from'")


def in_loop(cls: type[T]) -> Callable[..., Awaitable[T]]:
    """A class of parsed query parameters as an ``async`` dependency, with the class's own signature.

    FastAPI runs a class dependency in the thread pool, like any plain callable; these only parse strings, so
    the hop (and its wait behind every other request's under 100 concurrent clients: bench/api.py
    --concurrency) bought nothing. Defined here so FastAPI resolves the signature's names in this module.
    """

    async def build(**params: Any) -> T:
        return cls(**params)

    build.__signature__ = inspect.signature(cls)  # type: ignore[attr-defined]
    build.__doc__ = cls.__doc__
    return build


class TimeRange:
    """``from``/``to`` as a person means them (see :mod:`soclite.sitetime`).

    A date (``2026-12-07`` or ``07/12/2026``) is a whole day in the site's zone: ``from=D&to=D`` is
    all of day D. A datetime with an offset keeps its meaning; one without is local time.
    """

    def __init__(
        self,
        runtime: RuntimeDep,
        start: Annotated[str | None, Query(alias="from", max_length=64, description=_FROM_HELP)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=64, description=_TO_HELP)] = None,
    ) -> None:
        tz = sitetime.zone(runtime.settings.timezone)
        self.start = sitetime.parse_bound(start, tz, name="from")
        self.end = sitetime.parse_bound(end, tz, end=True, name="to")
        check_range(self.start, self.end)


TimeRangeDep = Annotated[TimeRange, Depends(in_loop(TimeRange))]


def enum_values(values: list[str] | None, enum: type[Any], name: str) -> list[str] | None:
    parts = split_csv(values)
    if parts is None:
        return None
    known = {member.value for member in enum}
    bad = [p for p in parts if p not in known]
    if bad:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown {name} {bad[0]!r}; expected one of {sorted(known)}"
        )
    return parts


class AlertFilters:
    """The alert query parameters (shared with the UI queue and exports)."""

    def __init__(
        self,
        period: TimeRangeDep,
        host: Annotated[str | None, Query(max_length=255)] = None,
        q: Annotated[str | None, Query(max_length=500, description="full text")] = None,
        severity: Annotated[list[str] | None, Query(description="high, medium, low (repeat or comma)")] = None,
        level: Annotated[list[str] | None, Query(description="Sigma level(s)")] = None,
        status_: Annotated[list[str] | None, Query(alias="status", description="status(es)")] = None,
        rule_id: Annotated[str | None, Query(max_length=255)] = None,
        unit: Annotated[str | None, Query(max_length=64)] = None,
        assignee: Annotated[str | None, Query(max_length=64)] = None,
        sort: Literal["last_seen", "first_seen", "severity", "count"] = "last_seen",
        order: Literal["desc", "asc"] = "desc",
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> None:
        self.host = host or None
        self.q = q or None
        self.start = period.start  # on last_seen
        self.end = period.end
        self.severity = enum_values(severity, Severity, "severity")
        self.level = enum_values(level, Level, "level")
        self.status = enum_values(status_, AlertStatus, "status")
        self.rule_id = rule_id or None
        self.unit = unit or None
        self.assignee = assignee or None
        self.sort = sort
        self.order = order
        self.limit = limit
        self.cursor = cursor or None

    def query(self, runtime: Runtime, scope: frozenset[str] | None) -> AlertQuery:
        return AlertQuery(
            host=self.host, q=self.q, start=self.start, end=self.end, units=narrow(scope, self.unit, runtime),
            severity=self.severity, level=self.level, status=self.status, rule_id=self.rule_id,
            assignee=self.assignee, sort=self.sort, order=self.order, limit=self.limit, cursor=self.cursor,
        )


FiltersDep = Annotated[AlertFilters, Depends(in_loop(AlertFilters))]


def run_query(runtime: Runtime, query: AlertQuery) -> dict[str, Any]:
    try:
        page = runtime.store.query_alerts(query)
    except ValueError as exc:  # a cursor that is not ours
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"invalid query: {exc}") from exc
    now = utcnow()
    return {"total": page.total, "items": [triage.alert_json(a, runtime.settings, now) for a in page.items],
            "next": page.next}


def json_body(data: Any) -> Response:
    """``data`` as a JSON answer, encoded here, in the endpoint's thread.

    Returned as a dict, a sync endpoint's answer is validated against its response model in a second
    thread-pool hop and encoded on the event loop (fastapi.routing.serialize_response): under 100
    concurrent clients each hop waited behind every other request (bench/api.py --concurrency). The
    route keeps its response_model for the schema; pydantic's encoder gives the same JSON.
    """
    return Response(to_json(data), media_type="application/json")


@router.get("", response_model=dict[str, Any])
def list_alerts(runtime: RuntimeDep, scope: ScopeDep, filters: FiltersDep, views: ViewsDep) -> Response:
    """Alerts in the caller's unit scope, newest first → {"total", "items", "next"}."""
    query = filters.query(runtime, scope)
    # the same page for every caller of the same scope and filters, until an alert changes (viewcache)
    body = views.get(("api_alerts", query_key(query)), runtime.store.alerts_version(),
                     lambda: json_body(run_query(runtime, query)).body)
    return Response(body, media_type="application/json")


EXPORT_COLUMNS = ("id", "severity", "level", "status", "rule_id", "rule_title", "host", "unit", "assignee",
                  "first_seen", "last_seen", "count", "close_reason", "closed_at")
EXPORT_MAX = 100_000


@router.get("/export", response_class=StreamingResponse)
def export_alerts(
    runtime: RuntimeDep, scope: ScopeDep, filters: FiltersDep, format: Literal["csv", "jsonl"] = "csv"
) -> StreamingResponse:
    """Every alert matching the filters (scoped; at most 100,000) as CSV or JSON lines, streamed page by page."""
    query = filters.query(runtime, scope)
    query.limit, query.cursor = 1000, None

    def rows() -> Iterator[str]:
        sent = 0
        if format == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(EXPORT_COLUMNS)
            yield "\ufeff" + buffer.getvalue()  # BOM: Excel opens Vietnamese text correctly
        while sent < EXPORT_MAX:
            page = runtime.store.query_alerts(query)
            for alert in page.items:
                data = triage.alert_json(alert, runtime.settings)
                if format == "jsonl":
                    yield json.dumps(data, ensure_ascii=False) + "\n"
                else:
                    buffer = io.StringIO()
                    csv.writer(buffer).writerow(  # text cells neutralised: alert fields come from logs
                        safe_row(data.get(col) if data.get(col) is not None else "" for col in EXPORT_COLUMNS))
                    yield buffer.getvalue()
            sent += len(page.items)
            if not page.next:
                break
            query.cursor = page.next

    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(rows(), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="alerts.{format}"'})


class BulkRequest(BaseModel):
    model_config = {"extra": "forbid"}

    ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=1000)
    status: AlertStatus | None = None
    assignee: str | None = Field(None, max_length=64)
    close_reason: str | None = Field(None, max_length=2000)
    comment: str | None = Field(None, max_length=20000)


@router.post("/bulk")
def bulk_update(body: BulkRequest, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep) -> dict[str, Any]:
    """Apply one change to many alerts; each alert succeeds or fails on its own."""
    patch = triage.AlertPatch(status=body.status, assignee=body.assignee, close_reason=body.close_reason,
                              comment=body.comment)
    updated: list[str] = []
    failed: list[dict[str, str]] = []
    for alert_id in dict.fromkeys(body.ids):
        try:
            triage.update_alert(runtime, principal, alert_id, patch, scope)
            updated.append(alert_id)
        except NotFoundError:
            failed.append({"id": alert_id, "error": "not found"})
        except TriageError as exc:
            failed.append({"id": alert_id, "error": str(exc)})
    return {"updated": updated, "failed": failed}


#: the ``by`` of /alerts/groups → the store's group (``rule`` reads better in a URL than rule_id).
GROUP_BY = {"rule": "rule_id", "rule_id": "rule_id", "host": "host", "user": "user", "source_ip": "source_ip",
            "unit": "unit", "severity": "severity", "level": "level", "status": "status", "assignee": "assignee",
            "tags": "tags"}
GroupBy = Literal["rule", "rule_id", "host", "user", "source_ip", "unit", "severity", "level", "status", "assignee",
                  "tags"]


def group_labels(runtime: Runtime, group: str, values: list[str], query: AlertQuery) -> dict[str, str]:
    """What a person reads for a group value: a unit's name, a rule's title (of an alert the query
    matches: titles change with rule versions); else the value itself."""
    if group == "unit":
        names = {u.code: u.name for u in runtime.store.list_units()}
        return {v: names.get(v, v) for v in values}
    if group == "rule_id":
        labels = {}
        for rule_id in values:
            page = runtime.store.query_alerts(replace(query, rule_id=rule_id, limit=1, cursor=None))
            labels[rule_id] = page.items[0].rule_title if page.items else rule_id
        return labels
    return {v: v for v in values}


def alert_groups(runtime: Runtime, query: AlertQuery, by: str, limit: int) -> dict[str, Any]:
    group = GROUP_BY[by]
    counts = runtime.store.count_alerts(query, group_by=group)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    labels = group_labels(runtime, group, [k for k, _ in top if k], query)
    return {
        "by": by,
        "total": runtime.store.count_alerts(query).get("total", 0),
        "distinct": len(counts),
        "groups": [{"value": k or None, "label": labels.get(k, k) if k else None, "count": n} for k, n in top],
    }


@router.get("/groups")
def list_groups(
    runtime: RuntimeDep, scope: ScopeDep, filters: FiltersDep, by: GroupBy = "rule",
    top: Annotated[int, Query(ge=1, le=1000, description="at most this many groups, largest first")] = 20,
) -> dict[str, Any]:
    """Alerts matching the filters counted per value of ``by`` (rule, host, user, source_ip, unit, ...)
    → {"by", "total", "distinct", "groups": [{"value", "label", "count"}]}; alerts without a value
    (e.g. no user in the matched event) count under value null."""
    return alert_groups(runtime, filters.query(runtime, scope), by, top)


@router.get("/{alert_id}", response_model=dict[str, Any])
def get_alert(alert_id: str, runtime: RuntimeDep, scope: ScopeDep) -> Response:
    """The alert with its matched events, the host's events around it, comments, history and cases."""
    alert = triage.get_in_scope(runtime, alert_id, scope)
    data = triage.alert_json(alert, runtime.settings)
    matched: list[dict[str, Any]] = []
    if alert.event_ids:
        matched = runtime.store.query_events(
            EventQuery(ids=alert.event_ids, units=scope, limit=min(len(alert.event_ids), 100))
        ).items
    context: list[dict[str, Any]] = []
    if alert.host:
        around = timedelta(minutes=CONTEXT_MINUTES)
        context = runtime.store.query_events(
            EventQuery(host=alert.host, start=alert.first_seen - around, end=alert.last_seen + around,
                       units=scope, limit=100)
        ).items
    from soclite.api import cases

    data.update({
        "attack": attack_json(alert.tags),
        "events": matched,
        "context_events": context,
        "comments": triage.comments(runtime, alert.id),
        "history": triage.history(runtime, alert.id, scope),
        "timeline": triage.timeline(alert, runtime, scope),
        "cases": cases.cases_of_alert(runtime, alert.id, scope),
    })
    return json_body(data)


@router.get("/{alert_id}/process-tree")
def get_process_tree(
    alert_id: str, runtime: RuntimeDep, scope: ScopeDep,
    hours: Annotated[int, Query(description="window before and after the process event, hours: 1, 6, 24 or 168")] = 24,
) -> dict[str, Any]:
    """The process tree around the alert's first matched process event (else its copy of the event): ancestors
    up to ``hours`` before, children and grandchildren up to ``hours`` after, read within the caller's units.
    ``{"tree": null}`` when the alert holds no process event (Sysmon, Security 4688, auditd)."""
    if hours not in TREE_HOURS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"hours must be one of {list(TREE_HOURS)}")
    alert = triage.get_in_scope(runtime, alert_id, scope)
    matched = runtime.store.query_events(EventQuery(ids=alert.event_ids, units=scope, limit=50)).items \
        if alert.event_ids else []
    anchor = next((ev for ev in [*matched, alert.event] if ev and process_tree.scheme_of(ev)), None)
    tree = process_tree.build(runtime.store, anchor, scope, timedelta(hours=hours)) if anchor else None
    return {"alert_id": alert.id, "tree": process_tree.tree_json(tree) if tree else None}


@router.patch("/{alert_id}")
def patch_alert(
    alert_id: str, patch: triage.AlertPatch, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    """Change status (transitions enforced; close_reason for resolved/false_positive), assignee, comment."""
    alert = triage.update_alert(runtime, principal, alert_id, patch, scope)
    return triage.alert_json(alert, runtime.settings)


class CommentRequest(BaseModel):
    model_config = {"extra": "forbid"}

    body: str = Field(min_length=1, max_length=20000)


@router.get("/{alert_id}/comments")
def list_comments(alert_id: str, runtime: RuntimeDep, scope: ScopeDep) -> list[dict[str, Any]]:
    alert = triage.get_in_scope(runtime, alert_id, scope)
    return triage.comments(runtime, alert.id)


@router.post("/{alert_id}/comments", status_code=status.HTTP_201_CREATED)
def add_comment(
    alert_id: str, body: CommentRequest, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    alert = triage.get_in_scope(runtime, alert_id, scope)
    return triage.add_comment(runtime, principal, alert, body.body)
