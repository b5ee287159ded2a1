"""The alert methods of the OpenSearch store: writes, compare-and-set triage updates, queries, counts, histograms."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError as OSNotFoundError
from opensearchpy.exceptions import TransportError

from soclite.errors import NotFoundError, StoreError
from soclite.models import Alert, isoformat
from soclite.store import _common as c
from soclite.store import _os_mappings as m
from soclite.store._os_base import MAX_BUCKETS, OpenSearchBase
from soclite.store._os_bulk import BulkItem
from soclite.store._os_cas import cas_update
from soclite.store._os_query import alert_filter
from soclite.store.base import TRIAGE_FIELDS, AlertQuery, AlertRepeat, FieldChange, HistogramBucket, Page

#: group_by name → the alert document field that holds its (exact, lower-cased where needed) value.
_GROUP_FIELD = {"host": "host_key", "user": "user_key", "source_ip": "source_ip_key"}

log = logging.getLogger(__name__)


class OpenSearchAlerts(OpenSearchBase):
    """The alert methods of :class:`~soclite.store.opensearch.OpenSearchStore`."""

    # --- alerts ----------------------------------------------------------
    @staticmethod
    def _alert_doc(alert: Alert) -> dict[str, Any]:
        doc = alert.model_dump(mode="json", warnings=False)
        doc["sev_rank"] = c.SEVERITY_RANK.get(str(alert.severity), 0)
        doc["closed"] = str(alert.status) in ("resolved", "false_positive")
        doc["host_key"] = alert.host.lower() if alert.host else None
        doc["text"] = c.alert_text(alert)
        doc["user_key"] = c.alert_group_value(alert, "user")
        doc["source_ip_key"] = c.alert_group_value(alert, "source_ip")
        return doc

    @staticmethod
    def _to_alert(source: dict[str, Any]) -> Alert:
        return Alert.model_validate({k: v for k, v in source.items() if k not in m.ALERT_HIDDEN})

    def put_alert(self, alert: Alert) -> Alert:
        self.put_alerts([alert])
        return alert

    def put_alerts(self, alerts: Sequence[Alert], *, refresh: bool | str = "wait_for") -> int:
        # The last version of an id in the batch wins, as in one SQL transaction.
        latest = {alert.id: alert for alert in alerts}
        items = [BulkItem("index", self._index("alerts"), a.id, self._alert_doc(a)) for a in latest.values()]
        if items:
            self._write(items, refresh=refresh)
        return len(alerts)

    def record_repeats(self, repeats: Sequence[AlertRepeat]) -> list[Alert]:
        """Compare-and-set per alert (:mod:`._os_cas`): a triage write in between makes us re-read it."""
        by_id: dict[str, list[AlertRepeat]] = {}
        for repeat in repeats:
            by_id.setdefault(repeat.id, []).append(repeat)

        def modify(alert_id: str, source: dict[str, Any]) -> dict[str, Any] | None:
            alert = self._to_alert(source)
            changed = [c.apply_repeat(alert, repeat) for repeat in by_id[alert_id]]
            if not any(changed):
                return None
            doc = self._alert_doc(alert)
            texts = [text for repeat in by_id[alert_id] for text in repeat.texts]
            doc["text"] = c.merge_text(str(source.get("text") or doc["text"]), texts)
            return doc

        stored = cas_update(self.client, self._index("alerts"), list(by_id), modify)
        for alert_id in by_id.keys() - stored.keys():
            log.warning("repeat of alert %s dropped: no such alert", alert_id)
        return [self._to_alert(stored[alert_id]) for alert_id in by_id if alert_id in stored]

    def update_alert_fields(
        self, alert_id: str, fields: FieldChange, units: frozenset[str] | None = None
    ) -> Alert:
        """Compare-and-set of one alert; ``fields`` (if a function) is re-run on a conflict."""

        def modify(_: str, source: dict[str, Any]) -> dict[str, Any] | None:
            if units is not None and source.get("unit") not in units:
                raise NotFoundError(f"alert {alert_id!r} not found")
            changed = c.apply_fields(self._to_alert(source), fields, TRIAGE_FIELDS)
            if changed is None:
                return None
            doc = self._alert_doc(changed)
            doc["text"] = source.get("text") or doc["text"]  # keeps the repeats' matched values
            return doc

        stored = cas_update(self.client, self._index("alerts"), [alert_id], modify)
        if alert_id not in stored:
            raise NotFoundError(f"alert {alert_id!r} not found")
        return self._to_alert(stored[alert_id])

    def get_alert(self, alert_id: str, units: frozenset[str] | None = None) -> Alert:
        try:
            found = self.client.get(index=self._index("alerts"), id=alert_id)
        except OSNotFoundError:
            raise NotFoundError(f"alert {alert_id!r} not found") from None
        except (TransportError, OSConnectionError) as exc:
            raise StoreError(f"reading alert {alert_id!r} failed: {exc}") from exc
        source = found["_source"]
        if units is not None and source.get("unit") not in units:
            raise NotFoundError(f"alert {alert_id!r} not found")
        return self._to_alert(source)

    def find_open_alert(self, fingerprint: str, since: datetime) -> Alert | None:
        query = {
            "bool": {
                "filter": [
                    {"term": {"fingerprint": fingerprint}},
                    {"term": {"closed": False}},
                    {"range": {"last_seen": {"gte": isoformat(since)}}},
                ]
            }
        }
        body = {"query": query, "size": 1, "sort": [{"last_seen": "desc"}, {"id": "desc"}]}
        hits = self._search(self._index("alerts"), body)["hits"]["hits"]
        return self._to_alert(hits[0]["_source"]) if hits else None

    def query_alerts(self, query: AlertQuery) -> Page[Alert]:
        flt = alert_filter(query)
        if flt is None:
            return Page(total=0, items=[])
        sort: list[dict[str, str]] = [{key: str(query.order)} for key in (*c.ALERT_SORT[query.sort], "id")]
        total, hits, cursor = self._page(self._index("alerts"), flt, sort, query.limit, query.cursor)
        return Page(total=total, items=[self._to_alert(h["_source"]) for h in hits], next=cursor)

    def _terms(self, group_by: str) -> dict[str, Any]:
        terms: dict[str, Any] = {"field": _GROUP_FIELD.get(group_by, group_by), "size": MAX_BUCKETS}
        if group_by != "tags":
            terms["missing"] = ""  # as SQLite: alerts without a value count under ""
        return terms

    def count_alerts(self, query: AlertQuery, group_by: str | None = None) -> dict[str, int]:
        c.check_group(group_by)
        flt = alert_filter(query)
        if flt is None:
            return {"total": 0} if group_by is None else {}
        if group_by is None:
            return {"total": self._count(self._index("alerts"), flt)}
        body = {"query": flt, "size": 0, "aggs": {"g": {"terms": self._terms(group_by)}}}
        buckets = self._search(self._index("alerts"), body)["aggregations"]["g"]["buckets"]
        return {str(b["key"]): int(b["doc_count"]) for b in buckets}

    def alert_histogram(
        self,
        query: AlertQuery,
        interval: Literal["hour", "day", "month"],
        group_by: str = "severity",
        tz: ZoneInfo | None = None,
    ) -> list[HistogramBucket]:
        """Alerts per hour/day/month of ``last_seen``; days and months of ``tz`` (``date_histogram`` ``time_zone``)."""
        c.check_group(group_by)
        if interval not in c.BUCKET_PREFIX:
            raise StoreError(f"unknown histogram interval {interval!r}; known: hour, day, month")
        flt = alert_filter(query)
        if flt is None:
            return []
        zone = tz or ZoneInfo("UTC")
        histogram = {
            "field": "last_seen",
            "calendar_interval": interval,
            "time_zone": zone.key,
            "min_doc_count": 1,
        }
        aggs = {"h": {"date_histogram": histogram, "aggs": {"g": {"terms": self._terms(group_by)}}}}
        result = self._search(self._index("alerts"), {"query": flt, "size": 0, "aggs": aggs})
        out = []
        for bucket in result["aggregations"]["h"]["buckets"]:
            counts = {str(b["key"]): int(b["doc_count"]) for b in bucket["g"]["buckets"]}
            if counts:
                # the key is the bucket's first instant (a local midnight for days and months)
                start = datetime.fromtimestamp(int(bucket["key"]) / 1000, tz=UTC)
                out.append(HistogramBucket(start=c.local_bucket(start, interval, zone), counts=counts))
        return out
