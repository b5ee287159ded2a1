"""The OpenSearch store: events in daily indices, alerts/hosts/units/audit in one index each.

Layout (``<p>`` = ``store.index_prefix``): events go to ``<p>-events-YYYY.MM.DD``,
the UTC day of their ``@timestamp`` computed here, so retention deletes whole
indices; ``<p>-alerts``, ``<p>-hosts``, ``<p>-units`` and ``<p>-audit`` hold
one document per object with ``_id`` = its id, so a retried write replaces
instead of duplicating. Composable index templates (:mod:`._os_mappings`) are
installed on :meth:`open`, and an ISM retention policy only when the cluster
has the ISM plugin.

Reads never depend on ``refresh``: writes of alerts, hosts, units and audit
ask for ``refresh=wait_for`` (visible to the next search on a real cluster),
events are not refreshed by default (throughput; visible within the refresh
interval) unless ``refresh_events`` is set. Pages use ``search_after`` on
(sort key, id), never ``from``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError as OSNotFoundError
from opensearchpy.exceptions import TransportError

from soclite.errors import NotFoundError, StoreError
from soclite.models import Alert, AuditEntry, Event, Host, Unit, isoformat
from soclite.store import _common as c
from soclite.store import _os_mappings as m
from soclite.store._os_bulk import BulkItem, bulk_write
from soclite.store._os_cas import cas_create, cas_update
from soclite.store._os_cluster import build_client, cluster_health, install_ism, resolve_replicas
from soclite.store._os_query import alert_filter, event_filter, host_filter
from soclite.store._os_retention import apply_os_retention
from soclite.store.base import (
    TRIAGE_FIELDS,
    AlertQuery,
    AlertRepeat,
    EventQuery,
    FieldChange,
    HistogramBucket,
    HostChange,
    HostQuery,
    Page,
    RetentionPlan,
    RetentionResult,
    Store,
    StoreHealth,
)

if TYPE_CHECKING:
    from soclite.config import Settings

#: group_by name → the alert document field that holds its (exact, lower-cased where needed) value.
_GROUP_FIELD = {"host": "host_key", "user": "user_key", "source_ip": "source_ip_key"}
_MAX_BUCKETS = 10000
#: update_host with ``create``: rounds of (update, else create) when the host keeps appearing/vanishing
_CREATE_ATTEMPTS = 5

log = logging.getLogger(__name__)


class OpenSearchStore(Store):
    """:class:`~soclite.store.base.Store` on an OpenSearch cluster through opensearch-py."""

    kind = "opensearch"
    remote = True

    def __init__(
        self,
        client: OpenSearch,
        prefix: str = "soclite",
        *,
        retention_days: int = 180,
        refresh_events: bool = False,
        replicas: int | None = None,
    ) -> None:
        self.client = client
        #: replicas of every index (None: decided on open by the cluster's data nodes, see _os_cluster)
        self.replicas = replicas
        #: seconds a health() answer is reused (every page's banner asks for it)
        self.health_ttl = 5.0
        self._health: tuple[float, StoreHealth] | None = None
        self.prefix = prefix
        self.retention_days = retention_days
        self.refresh_events: bool | str = "wait_for" if refresh_events else False
        self.ism_installed = False
        self._audit_lock = threading.Lock()
        self._audit_last: tuple[int, str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, refresh_events: bool = False) -> OpenSearchStore:
        s = settings.store
        # The ISM policy is only a backstop: it deletes whole daily indices by age, blind to hosts, so it must
        # not fire before the longest retention any security level can ask for; the scheduled retention job
        # (soclite.control.retention) deletes per host before that.
        longest_level = max(settings.compliance.retention_months_by_level.values(), default=0)
        ism_days = max(s.retention_days, longest_level * 31)
        return cls(
            build_client(s), s.index_prefix, retention_days=ism_days, refresh_events=refresh_events,
            replicas=s.opensearch_replicas,
        )  # fmt: skip

    # --- names -------------------------------------------------------------
    def events_index(self, ts: datetime) -> str:
        """The daily index of an event time (UTC day)."""
        return f"{self.prefix}-events-{ts.astimezone(UTC):%Y.%m.%d}"

    @property
    def _events(self) -> str:
        return f"{self.prefix}-events-*"

    def _index(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    # --- lifecycle -------------------------------------------------------
    def open(self) -> None:
        try:
            self.replicas = resolve_replicas(self.client, self.replicas)
            for name, body in m.templates(self.prefix, self.replicas).items():
                self.client.indices.put_index_template(name=name, body=body)
            for name in ("alerts", "hosts", "units", "audit"):
                if not self.client.indices.exists(index=self._index(name)):
                    try:
                        self.client.indices.create(index=self._index(name))
                    except TransportError as exc:
                        if exc.status_code != 400 or "already_exists" not in str(exc.error):
                            raise
            # fields added after an alerts index was created (a template only shapes new indices)
            self.client.indices.put_mapping(index=self._index("alerts"), body=m.ALERT_ADDED_FIELDS)
            # indices created before the replica count changed (a node added to the cluster) follow it
            self.client.indices.put_settings(
                index=f"{self.prefix}-*", body={"index": {"number_of_replicas": self.replicas}},
                params={"allow_no_indices": "true", "ignore_unavailable": "true"},
            )  # fmt: skip
            self.ism_installed = install_ism(self.client, self.prefix, self.retention_days)
        except (TransportError, OSConnectionError) as exc:
            raise StoreError(f"OpenSearch store {self.prefix!r} could not be opened: {exc}") from exc

    def health(self) -> StoreHealth:
        """The cluster's health (cached a few seconds: every page's banner asks)."""
        now = time.monotonic()
        if self._health is not None and now - self._health[0] < self.health_ttl:
            return self._health[1]
        found = cluster_health(self.client)
        problem = found.problem
        result = StoreHealth(problems=[problem] if problem else [], details={"cluster": found.as_dict()})
        self._health = (now, result)
        return result

    def close(self) -> None:
        self.client.close()

    def drop_all(self) -> None:
        """Delete every index and template of this prefix (tests against a shared cluster)."""
        self.client.indices.delete(index=f"{self.prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        for name in m.templates(self.prefix, self.replicas):
            self.client.indices.delete_index_template(name=name, ignore=[404])

    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self.client.search(
                index=index, body=body, params={"ignore_unavailable": "true", "allow_no_indices": "true"}
            )
        except (TransportError, OSConnectionError) as exc:
            raise StoreError(f"search on {index} failed: {exc}") from exc
        return result

    def _count(self, index: str, query: dict[str, Any]) -> int:
        body = {"query": query, "size": 0, "track_total_hits": True}
        return int(self._search(index, body)["hits"]["total"]["value"])

    def _write(self, items: list[BulkItem], *, refresh: bool | str = "wait_for") -> int:
        result = bulk_write(self.client, items, refresh=refresh)
        if result.rejected:
            raise StoreError(
                "documents refused: " + "; ".join(f"{i.id}: {r}" for i, r in result.rejected[:10])
            )
        return result.created

    def _page(
        self, index: str, query: dict[str, Any], sort: list[dict[str, str]], limit: int, cursor: str | None
    ) -> tuple[int, list[dict[str, Any]], str | None]:
        body: dict[str, Any] = {"query": query, "size": limit + 1, "sort": sort, "track_total_hits": True}
        if cursor:
            body["search_after"] = c.decode_cursor(cursor, len(sort))
        result = self._search(index, body)
        hits = result["hits"]["hits"]
        more = len(hits) > limit
        next_cursor = c.encode_cursor(hits[limit - 1]["sort"]) if more else None
        return int(result["hits"]["total"]["value"]), hits[:limit], next_cursor

    # --- events ----------------------------------------------------------
    def write_events(self, events: Sequence[Event]) -> int:
        items = []
        for event in events:  # serialize everything first: a bad event fails the batch before any write
            ts = c.event_time(event)
            try:
                doc = orjson.loads(orjson.dumps(event, default=str))
            except TypeError as exc:
                raise StoreError(f"event {event.get('event.id')!r} cannot be serialized: {exc}") from exc
            doc[m.EVENT_TEXT] = c.event_text(event)[:8000]
            doc[m.EVENT_HOST_KEY] = c.event_host(event)
            if not isinstance(doc.get("@timestamp"), str) or not doc["@timestamp"]:
                doc["@timestamp"] = isoformat(ts)
            items.append(BulkItem("create", self.events_index(ts), c.event_id(event), doc))
        if not items:
            return 0
        result = bulk_write(self.client, items, refresh=self.refresh_events)
        stored = result.created
        if result.rejected:
            # Shape conflicts with the index mapping: keep the core fields searchable, the rest as JSON.
            fallback = [
                BulkItem("create", item.index, item.id, m.fallback_doc(item.doc))
                for item, _ in result.rejected
            ]
            again = bulk_write(self.client, fallback, refresh=self.refresh_events)
            if again.rejected:
                raise StoreError(
                    "events refused: " + "; ".join(f"{i.id}: {r}" for i, r in again.rejected[:10])
                )
            stored += again.created
        return stored

    def query_events(self, query: EventQuery) -> Page[Event]:
        flt = event_filter(query)
        if flt is None:
            return Page(total=0, items=[])
        sort = [{"@timestamp": "desc"}, {"event.id": "desc"}]
        total, hits, cursor = self._page(self._events, flt, sort, query.limit, query.cursor)
        return Page(total=total, items=[m.event_from_source(h["_source"]) for h in hits], next=cursor)

    def count_events(self, query: EventQuery) -> int:
        flt = event_filter(query)
        return 0 if flt is None else self._count(self._events, flt)

    def search_lucene(
        self, lucene: str, query: EventQuery, chunk: int = 500
    ) -> Iterator[tuple[int, list[Event]]]:
        """Events matching a Lucene query (a Sigma rule converted by pySigma's OpenSearch backend) within
        ``query``'s time range and units, oldest first: (total matching, a page) per page.

        The unit and time filters are a ``bool`` filter beside the rule's ``query_string``, never text
        spliced into the rule's query, so a rule cannot widen its own scope."""
        flt = event_filter(EventQuery(start=query.start, end=query.end, units=query.units))
        if flt is None:
            return
        body: dict[str, Any] = {
            "query": {"bool": {"filter": [flt], "must": [{"query_string": {"query": lucene}}]}},
            "size": chunk,
            "sort": [{"@timestamp": "asc"}, {"event.id": "asc"}],
            "track_total_hits": True,
        }
        while True:
            result = self._search(self._events, body)
            hits = result["hits"]["hits"]
            if hits:
                yield int(result["hits"]["total"]["value"]), [m.event_from_source(h["_source"]) for h in hits]
            if len(hits) < chunk:
                return
            body["search_after"] = hits[-1]["sort"]
            body["track_total_hits"] = False

    def delete_events_before(self, before: datetime) -> int:
        """Drop whole daily indices that end before ``before``; trim the one day it falls in."""
        try:
            names = list(self.client.indices.get(index=self._events, params={"allow_no_indices": "true"}))
        except OSNotFoundError:
            names = []
        except (TransportError, OSConnectionError) as exc:
            raise StoreError(f"listing event indices failed: {exc}") from exc
        cutoff = before.astimezone(UTC)
        deleted = 0
        stem = f"{self.prefix}-events-"
        for name in sorted(names):
            try:
                day = datetime.strptime(name[len(stem) :], "%Y.%m.%d").replace(tzinfo=UTC)
            except ValueError:
                continue  # not one of ours
            try:
                if day + timedelta(days=1) <= cutoff:
                    deleted += self._count(name, {"match_all": {}})
                    self.client.indices.delete(index=name)
                elif day < cutoff:
                    flt = {"range": {"@timestamp": {"lt": isoformat(cutoff)}}}
                    result = self.client.delete_by_query(index=name, body={"query": flt}, refresh=True)
                    deleted += int(result.get("deleted", 0))
            except (TransportError, OSConnectionError) as exc:
                raise StoreError(
                    f"retention on {name} failed after deleting {deleted} events: {exc}"
                ) from exc
        return deleted

    def apply_retention(self, plan: RetentionPlan) -> RetentionResult:
        """Per host and unit (see :mod:`._os_retention`)."""
        return apply_os_retention(self, plan)

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
        terms: dict[str, Any] = {"field": _GROUP_FIELD.get(group_by, group_by), "size": _MAX_BUCKETS}
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

    # --- hosts and units ---------------------------------------------------
    @staticmethod
    def _host_doc(host: Host) -> dict[str, Any]:
        doc = host.model_dump(mode="json", warnings=False)
        doc["name_key"] = host.name.lower()
        doc["text"] = "\n".join([host.id, host.name, host.os or "", *host.ips]).casefold()
        return doc

    def put_host(self, host: Host) -> Host:
        self._write([BulkItem("index", self._index("hosts"), host.id, self._host_doc(host))])
        return host

    def update_host(
        self,
        host_id: str,
        changes: HostChange,
        *,
        units: frozenset[str] | None = None,
        create: Host | None = None,
    ) -> Host:
        """Compare-and-set of one host (:mod:`._os_cas`); ``changes`` (if a function) is re-run on a conflict.

        A missing host with ``create`` is written with ``op_type=create``: if another writer created it
        in between (409), the changes are applied to that one instead.
        """
        index = self._index("hosts")

        def modify(_: str, source: dict[str, Any]) -> dict[str, Any] | None:
            if units is not None and source.get("unit") not in units:
                raise NotFoundError(f"host {host_id!r} not found")
            changed = c.apply_host_changes(self._to_host(source), changes)
            return self._host_doc(changed) if changed is not None else None

        if create is not None and create.id != host_id:
            raise StoreError(f"update_host({host_id!r}): the host to create has id {create.id!r}")
        for _ in range(_CREATE_ATTEMPTS):
            stored = cas_update(self.client, index, [host_id], modify)
            if host_id in stored:
                return self._to_host(stored[host_id])
            if create is None:
                raise NotFoundError(f"host {host_id!r} not found")
            new = c.apply_host_changes(create, changes) or create
            if cas_create(self.client, index, {host_id: self._host_doc(new)}):
                return new
        raise StoreError(f"host {host_id!r}: created and deleted under {_CREATE_ATTEMPTS} attempts; try again")

    def touch_hosts(self, seen: Mapping[str, datetime], *, create: Mapping[str, Host] | None = None) -> list[Host]:
        """Compare-and-set per host: a concurrent isolation change makes us re-read, never overwrite, it."""
        index = self._index("hosts")
        create = create or {}
        for host_id, proto in create.items():
            if proto.id != host_id:
                raise StoreError(f"touch_hosts: the host to create as {host_id!r} has id {proto.id!r}")

        def modify(host_id: str, source: dict[str, Any]) -> dict[str, Any] | None:
            touched = c.touch_host(self._to_host(source), seen[host_id])
            return self._host_doc(touched) if touched is not None else None

        stored = cas_update(self.client, index, list(seen), modify)
        missing = {
            host_id: self._host_doc(c.touch_host(create[host_id], at) or create[host_id])
            for host_id, at in seen.items()
            if host_id not in stored and host_id in create
        }
        created = cas_create(self.client, index, missing)
        stored |= {host_id: missing[host_id] for host_id in created}
        if len(created) < len(missing):  # another writer created some first: raise theirs
            stored |= cas_update(self.client, index, [h for h in missing if h not in created], modify)
        return [self._to_host(stored[host_id]) for host_id in seen if host_id in stored]

    @staticmethod
    def _to_host(source: dict[str, Any]) -> Host:
        return Host.model_validate({k: v for k, v in source.items() if k not in m.HOST_HIDDEN})

    def get_host(self, host_id: str, units: frozenset[str] | None = None) -> Host:
        try:
            source = self.client.get(index=self._index("hosts"), id=host_id)["_source"]
        except OSNotFoundError:
            raise NotFoundError(f"host {host_id!r} not found") from None
        except (TransportError, OSConnectionError) as exc:
            raise StoreError(f"reading host {host_id!r} failed: {exc}") from exc
        if units is not None and source.get("unit") not in units:
            raise NotFoundError(f"host {host_id!r} not found")
        return self._to_host(source)

    def find_host(self, name: str) -> Host | None:
        key = name.lower()
        for field, value in (("id", key), ("name_key", key), ("agent_id", name)):
            hits = self._search(self._index("hosts"), {"query": {"term": {field: value}}, "size": 1})["hits"][
                "hits"
            ]
            if hits:
                return self._to_host(hits[0]["_source"])
        return None

    def query_hosts(self, query: HostQuery) -> Page[Host]:
        flt = host_filter(query)
        if flt is None:
            return Page(total=0, items=[])
        total, hits, cursor = self._page(
            self._index("hosts"), flt, [{"id": "asc"}], query.limit, query.cursor
        )
        return Page(total=total, items=[self._to_host(h["_source"]) for h in hits], next=cursor)

    def put_unit(self, unit: Unit) -> Unit:
        self._write([BulkItem("index", self._index("units"), unit.code, unit.model_dump(mode="json"))])
        return unit

    def delete_unit(self, code: str) -> bool:
        result = self.client.delete(index=self._index("units"), id=code, refresh="wait_for", ignore=[404])
        return bool(result.get("result") == "deleted")

    def list_units(self) -> list[Unit]:
        body = {"query": {"match_all": {}}, "size": _MAX_BUCKETS, "sort": [{"code": "asc"}]}
        return [
            Unit.model_validate(h["_source"])
            for h in self._search(self._index("units"), body)["hits"]["hits"]
        ]

    # --- audit -------------------------------------------------------------
    def _last_audit(self) -> tuple[int, str]:
        body = {"query": {"match_all": {}}, "size": 1, "sort": [{"seq": "desc"}]}
        hits = self._search(self._index("audit"), body)["hits"]["hits"]
        return (int(hits[0]["_source"]["seq"]), str(hits[0]["_source"]["hash"])) if hits else (0, "")

    def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """One writer at a time (lock); ``_id`` = seq with op_type=create, so even another process
        racing for the same seq gets a conflict instead of forking the chain, and re-reads the tail."""
        with self._audit_lock:
            for _ in range(20):
                seq, prev = self._audit_last or self._last_audit()
                stored = entry.model_copy(update={"seq": seq + 1, "prev_hash": prev})
                stored.hash = stored.compute_hash()
                try:
                    self.client.index(
                        index=self._index("audit"),
                        id=str(stored.seq),
                        body=stored.model_dump(mode="json"),
                        op_type="create",
                        refresh="wait_for",
                    )
                except TransportError as exc:
                    if exc.status_code == 409:
                        self._audit_last = None
                        self.client.indices.refresh(index=self._index("audit"))
                        continue
                    raise StoreError(f"audit append failed: {exc}") from exc
                except OSConnectionError as exc:
                    raise StoreError(f"audit append failed: {exc}") from exc
                self._audit_last = (stored.seq, stored.hash)
                return stored
        raise StoreError("audit append: the chain's tail kept moving (another writer?); try again")

    def list_audit(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditEntry]:
        rng: dict[str, str] = {}
        if start:
            rng["gte"] = isoformat(start)
        if end:
            rng["lt"] = isoformat(end)
        query: dict[str, Any] = {"range": {"at": rng}} if rng else {"match_all": {}}
        total, hits, nxt = self._page(self._index("audit"), query, [{"seq": "desc"}], limit, cursor)
        return Page(total=total, items=[AuditEntry.model_validate(h["_source"]) for h in hits], next=nxt)

    def iter_audit(self) -> Iterator[AuditEntry]:
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"query": {"match_all": {}}, "size": 1000, "sort": [{"seq": "asc"}]}
            if after is not None:
                body["search_after"] = after
            hits = self._search(self._index("audit"), body)["hits"]["hits"]
            if not hits:
                return
            for hit in hits:
                yield AuditEntry.model_validate(hit["_source"])
            after = hits[-1]["sort"]


__all__ = ["OpenSearchStore"]
