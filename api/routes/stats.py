"""Statistics for dashboards and reports: the summary contract and alert histograms."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from soclite import sitetime
from soclite.api.deps import RuntimeDep, ScopeDep, narrow
from soclite.api.routes.alerts import TimeRangeDep
from soclite.api.routes.hosts import is_online
from soclite.models import AlertStatus, Severity, utcnow
from soclite.runtime import Runtime
from soclite.store.base import AlertQuery, HostQuery

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])


def host_counts(runtime: Runtime, scope: frozenset[str] | None) -> dict[str, int]:
    """Servers, workstations and online hosts in scope (hosts are thousands, not millions: a scan is fine)."""
    servers = runtime.store.query_hosts(HostQuery(units=scope, type="server", limit=1)).total
    workstations = runtime.store.query_hosts(HostQuery(units=scope, type="workstation", limit=1)).total
    online = 0
    cursor: str | None = None
    now = utcnow()
    while True:
        page = runtime.store.query_hosts(HostQuery(units=scope, limit=5000, cursor=cursor))
        online += sum(1 for host in page.items if is_online(host, runtime, now))
        cursor = page.next
        if not cursor or not page.items:
            break
    return {"servers": servers, "workstations": workstations, "online": online}


def summary(runtime: Runtime, scope: frozenset[str] | None, start: datetime | None, end: datetime | None,
            ) -> dict[str, Any]:
    query = AlertQuery(start=start, end=end, units=scope)
    by_severity = runtime.store.count_alerts(query, group_by="severity")
    by_status = runtime.store.count_alerts(query, group_by="status")
    total = runtime.store.count_alerts(query).get("total", 0)
    return {
        "alerts": {
            "total": total,
            "by_severity": {s.value: int(by_severity.get(s.value, 0)) for s in Severity},
            "by_status": {s.value: int(by_status.get(s.value, 0)) for s in AlertStatus},
        },
        "hosts": host_counts(runtime, scope),
    }


@router.get("/summary")
def get_summary(
    runtime: RuntimeDep,
    scope: ScopeDep,
    period: TimeRangeDep,
    unit: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """{"alerts": {"total", "by_severity", "by_status"}, "hosts": {"servers", "workstations", "online"}}."""
    start, end = period.start, period.end
    return summary(runtime, narrow(scope, unit, runtime), start, end)


@router.get("/histogram")
def get_histogram(
    runtime: RuntimeDep,
    scope: ScopeDep,
    period: TimeRangeDep,
    interval: Literal["hour", "day", "month"] = "day",
    group_by: Literal["severity", "status", "level", "rule_id", "host", "unit"] = "severity",
    unit: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Alert counts per time bucket, one series per value of group_by (for charts)."""
    start, end = period.start, period.end
    tz = sitetime.zone(runtime.settings.timezone)
    buckets = runtime.store.alert_histogram(
        AlertQuery(start=start, end=end, units=narrow(scope, unit, runtime)), interval, group_by, tz
    )
    # a bucket starts at a local midnight (days, months): its ISO form keeps the site's offset
    return {"interval": interval, "group_by": group_by, "timezone": tz.key,
            "buckets": [{"start": b.start.isoformat(timespec="seconds"), "counts": b.counts} for b in buckets]}


@router.get("/top")
def get_top(
    runtime: RuntimeDep,
    scope: ScopeDep,
    period: TimeRangeDep,
    by: Literal["rule_id", "host", "unit", "assignee"] = "rule_id",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """The most frequent values of ``by`` among alerts (top rules, noisiest hosts)."""
    start, end = period.start, period.end
    counts = runtime.store.count_alerts(AlertQuery(start=start, end=end, units=scope), group_by=by)
    top = sorted(((k, v) for k, v in counts.items() if k != "total"), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return {"by": by, "items": [{"value": k, "count": v} for k, v in top]}
