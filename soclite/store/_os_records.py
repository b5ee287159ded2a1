"""The host, unit and audit methods of the OpenSearch store."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError as OSNotFoundError
from opensearchpy.exceptions import TransportError

from soclite.errors import NotFoundError, StoreError
from soclite.models import AuditEntry, Host, Unit, isoformat
from soclite.store import _common as c
from soclite.store import _os_mappings as m
from soclite.store._os_base import MAX_BUCKETS, OpenSearchBase
from soclite.store._os_bulk import BulkItem
from soclite.store._os_cas import cas_create, cas_update
from soclite.store._os_query import host_filter
from soclite.store.base import HostChange, HostQuery, Page

#: update_host with ``create``: rounds of (update, else create) when the host keeps appearing/vanishing
_CREATE_ATTEMPTS = 5
#: host names per search of find_hosts (three terms lists of this many: well under the 65,536 limit)
FIND_CHUNK = 1000


class OpenSearchRecords(OpenSearchBase):
    """The host, unit and audit methods of :class:`~soclite.store.opensearch.OpenSearchStore`."""

    _audit_lock: threading.Lock
    _audit_last: tuple[int, str] | None

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

    def find_hosts(self, names: Sequence[str]) -> dict[str, Host]:
        """One search per FIND_CHUNK names, resolved as find_host would: id, then name, then agent id."""
        found: dict[str, Host] = {}
        for start in range(0, len(names), FIND_CHUNK):
            chunk = list(names[start : start + FIND_CHUNK])
            keys = sorted({name.lower() for name in chunk})
            should = [{"terms": {"id": keys}}, {"terms": {"name_key": keys}}, {"terms": {"agent_id": chunk}}]
            size = 3 * len(chunk)
            body = {"query": {"bool": {"should": should, "minimum_should_match": 1}}, "size": size}
            hits = self._search(self._index("hosts"), body)["hits"]["hits"]
            by_field: dict[str, dict[str, Host]] = {"id": {}, "name_key": {}, "agent_id": {}}
            for hit in hits:
                source = hit["_source"]
                stored = self._to_host(source)
                for field, seen in by_field.items():
                    if source.get(field):
                        seen.setdefault(str(source[field]), stored)
            for name in chunk:
                key = name.lower()
                host: Host | None = (
                    by_field["id"].get(key) or by_field["name_key"].get(key) or by_field["agent_id"].get(name)
                )
                if host is None and len(hits) >= size:
                    host = self.find_host(name)  # the page was full (many hosts share a name): ask alone
                if host is not None:
                    found[name] = host
        return found

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
        body = {"query": {"match_all": {}}, "size": MAX_BUCKETS, "sort": [{"code": "asc"}]}
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
