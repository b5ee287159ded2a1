"""Retention per host and unit on OpenSearch (issue 17): daily event indices and the alerts index.

A daily index older than the plan's cut-off is deleted whole when no event in it is protected by a
keep clause (a long-retention host or unit): the cheap, common case. Otherwise, and for the index
the cut-off falls in, a ``delete_by_query`` removes the old events whose host key and unit are not
in a clause still protecting them (``must_not`` over ``terms`` of ``soclite.host_key`` /
``soclite.unit`` with their ``since``). Long-retention hosts' events stay in their day's index rather
than moving to an index of their own: the queries, Dashboards index patterns and the ISM policy
keep one layout, and a level change needs no re-indexing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError as OSNotFoundError
from opensearchpy.exceptions import TransportError

from soclite.errors import StoreError
from soclite.models import isoformat
from soclite.store import _os_mappings as m
from soclite.store.base import RetentionPlan, RetentionResult

if TYPE_CHECKING:
    from soclite.store.opensearch import OpenSearchStore


def _protected(plan: RetentionPlan, time_field: str, host_field: str, unit_field: str) -> list[dict[str, Any]]:
    """The plan's keep clauses as query DSL (``should``: any of them protects a document)."""
    out: list[dict[str, Any]] = []
    for k in plan.keep:
        since = {"range": {time_field: {"gte": isoformat(k.since)}}}
        if k.hosts:
            out.append({"bool": {"filter": [{"terms": {host_field: sorted(k.hosts)}}, since]}})
        if k.units:
            out.append({"bool": {"filter": [{"terms": {unit_field: sorted(k.units)}}, since]}})
    return out

def apply_os_retention(store: OpenSearchStore, plan: RetentionPlan) -> RetentionResult:
    """Daily indices older than ``plan.before`` are deleted whole when none of their events is
    protected; otherwise (and in the index ``before`` falls in) a delete_by_query with the host and
    unit terms of the keep clauses as ``must_not``. Alerts: one delete_by_query the same way."""
    result = RetentionResult()
    try:
        names = list(store.client.indices.get(index=store._events, params={"allow_no_indices": "true"}))
    except OSNotFoundError:
        names = []
    except (TransportError, OSConnectionError) as exc:
        raise StoreError(f"listing event indices failed: {exc}") from exc
    cutoff = plan.before.astimezone(UTC)
    protected = _protected(plan, "@timestamp", m.EVENT_HOST_KEY, "soclite.unit")
    old = {"range": {"@timestamp": {"lt": isoformat(cutoff)}}}
    doomed = {"bool": {"filter": [old], "must_not": protected}} if protected else old
    stem = f"{store.prefix}-events-"
    for name in sorted(names):
        try:
            day = datetime.strptime(name[len(stem) :], "%Y.%m.%d").replace(tzinfo=UTC)
        except ValueError:
            continue  # not one of ours
        if day >= cutoff:
            continue
        try:
            kept = store._count(name, {"bool": {"filter": [old], "should": protected, "minimum_should_match": 1}}
                               ) if protected else 0  # fmt: skip
            if day + timedelta(days=1) <= cutoff and kept == 0:
                result.events += store._count(name, {"match_all": {}})
                store.client.indices.delete(index=name)
                result.days_dropped += 1
                continue
            done = store.client.delete_by_query(index=name, body={"query": doomed}, refresh=True,
                                               params={"conflicts": "proceed"})
            result.events += int(done.get("deleted", 0))
            result.days_trimmed += 1 if kept else 0
        except (TransportError, OSConnectionError) as exc:
            raise StoreError(f"retention on {name} failed after deleting {result.events} events: {exc}") from exc
    alert_protected = _protected(plan, "last_seen", "host_key", "unit")
    old_alert = {"range": {"last_seen": {"lt": isoformat(cutoff)}}}
    query = {"bool": {"filter": [old_alert], "must_not": alert_protected}} if alert_protected else old_alert
    try:
        done = store.client.delete_by_query(index=store._index("alerts"), body={"query": query}, refresh=True,
                                           params={"conflicts": "proceed"})
    except (TransportError, OSConnectionError) as exc:
        raise StoreError(f"alert retention failed after deleting {result.events} events: {exc}") from exc
    result.alerts = int(done.get("deleted", 0))
    return result
