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
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError as OSNotFoundError
from opensearchpy.exceptions import TransportError

from soclite.errors import StoreError
from soclite.models import Event, isoformat
from soclite.store import _common as c
from soclite.store import _os_mappings as m
from soclite.store._os_alert_store import OpenSearchAlerts
from soclite.store._os_bulk import BulkItem, bulk_write
from soclite.store._os_cluster import build_client, cluster_health, install_ism, resolve_replicas
from soclite.store._os_query import event_filter
from soclite.store._os_records import OpenSearchRecords
from soclite.store._os_retention import apply_os_retention
from soclite.store.base import (
    EventQuery,
    Page,
    RetentionPlan,
    RetentionResult,
    Store,
    StoreHealth,
)

if TYPE_CHECKING:
    from soclite.config import Settings

log = logging.getLogger(__name__)

#: seconds between two attempts to set the indices up while the cluster is away
SETUP_RETRY_SECONDS = 5.0


def _unreachable(exc: BaseException | None) -> bool:
    """A refusal that waiting can fix: no connection, a timeout, or a cluster without a master yet (503)."""
    if isinstance(exc, OSConnectionError):  # includes ConnectionTimeout
        return True
    return isinstance(exc, TransportError) and exc.status_code == 503


class OpenSearchStore(OpenSearchAlerts, OpenSearchRecords, Store):
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
        self._client = client
        #: why the templates and indices are not set up yet (None once they are): a store opened with
        #: open_when_reachable() while the cluster was away sets them up on first use instead
        self._pending: str | None = "not opened"
        self._next_setup = 0.0
        self._setup_lock = threading.Lock()
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

    # --- lifecycle -------------------------------------------------------
    @property
    def client(self) -> OpenSearch:
        """The client, after the templates and indices are set up: a write before them would let the
        cluster create a daily index with guessed mappings. While the cluster is away every use raises
        StoreError (the callers' retry: the storage consumer waits, alerts are spooled, the API says 503)."""
        if self._pending is not None:
            self._set_up_when_due()
        return self._client

    def open(self) -> None:
        with self._setup_lock:
            self._set_up()

    def open_when_reachable(self) -> None:
        """Open, or when the cluster cannot be reached (refused, timed out, no master yet) start anyway
        and set the indices up on first use: a server started before its cluster (a power cut) ingests
        into its journal, detects and spools alerts meanwhile. Any other refusal (credentials, TLS,
        a mapping conflict) still stops the start, since waiting would not fix it."""
        try:
            self.open()
        except StoreError as exc:
            if not _unreachable(exc.__cause__):
                raise
            log.warning("OpenSearch is not reachable yet; starting without it and retrying: %s", exc)

    def _set_up_when_due(self) -> None:
        with self._setup_lock:
            if self._pending is None:
                return
            if time.monotonic() < self._next_setup:
                raise StoreError(f"OpenSearch store {self.prefix!r} is not set up yet: {self._pending}")
            self._set_up()
            log.info("OpenSearch store %r set up: the cluster is reachable", self.prefix)

    def _set_up(self) -> None:
        client = self._client
        try:
            self.replicas = resolve_replicas(client, self.replicas)
            for name, body in m.templates(self.prefix, self.replicas).items():
                client.indices.put_index_template(name=name, body=body)
            for name in ("alerts", "hosts", "units", "audit"):
                if not client.indices.exists(index=self._index(name)):
                    try:
                        client.indices.create(index=self._index(name))
                    except TransportError as exc:
                        if exc.status_code != 400 or "already_exists" not in str(exc.error):
                            raise
            # fields added after an alerts index was created (a template only shapes new indices)
            client.indices.put_mapping(index=self._index("alerts"), body=m.ALERT_ADDED_FIELDS)
            # indices created before the replica count changed (a node added to the cluster) follow it
            client.indices.put_settings(
                index=f"{self.prefix}-*", body={"index": {"number_of_replicas": self.replicas}},
                params={"allow_no_indices": "true", "ignore_unavailable": "true"},
            )  # fmt: skip
            self.ism_installed = install_ism(client, self.prefix, self.retention_days)
        except (TransportError, OSConnectionError) as exc:
            self._pending = str(exc)[:300]
            self._next_setup = time.monotonic() + SETUP_RETRY_SECONDS
            raise StoreError(f"OpenSearch store {self.prefix!r} could not be opened: {exc}") from exc
        self._pending = None

    def health(self) -> StoreHealth:
        """The cluster's health (cached a few seconds: every page's banner asks)."""
        now = time.monotonic()
        if self._health is not None and now - self._health[0] < self.health_ttl:
            return self._health[1]
        found = cluster_health(self._client)
        problems = [found.problem] if found.problem else []
        if self._pending is not None and found.status != "unreachable":
            try:
                self._set_up_when_due()  # the cluster is back: set up now rather than at the next write
            except StoreError as exc:
                problems.append(str(exc))
        elif self._pending is not None:
            problems.append("indices not set up yet (the cluster has not been reachable since the start)")
        result = StoreHealth(problems=problems, details={"cluster": found.as_dict()})
        self._health = (now, result)
        return result

    def close(self) -> None:
        self._client.close()

    def drop_all(self) -> None:
        """Delete every index and template of this prefix (tests against a shared cluster)."""
        self.client.indices.delete(index=f"{self.prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        for name in m.templates(self.prefix, self.replicas):
            self.client.indices.delete_index_template(name=name, ignore=[404])

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


__all__ = ["OpenSearchStore"]
