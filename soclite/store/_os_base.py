"""The OpenSearch store's shared plumbing: index names, searches, counts, bulk writes and keyset pages.

:class:`OpenSearchBase` is what the alert methods (:mod:`._os_alert_store`), the host/unit/audit methods
(:mod:`._os_records`) and :class:`~soclite.store.opensearch.OpenSearchStore` (which composes them and
opens the indices) read and write through.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError

from soclite.errors import StoreError
from soclite.store import _common as c
from soclite.store._os_bulk import BulkItem, bulk_write

#: the most buckets (groups) or documents (units) one request asks for
MAX_BUCKETS = 10000


class OpenSearchBase:
    """The client and the index prefix, and the request helpers every index uses."""

    prefix: str

    @property
    def client(self) -> OpenSearch:
        """The client, once the store's templates and indices are set up (see OpenSearchStore)."""
        raise NotImplementedError

    # --- names -------------------------------------------------------------
    def events_index(self, ts: datetime) -> str:
        """The daily index of an event time (UTC day)."""
        return f"{self.prefix}-events-{ts.astimezone(UTC):%Y.%m.%d}"

    @property
    def _events(self) -> str:
        return f"{self.prefix}-events-*"

    def _index(self, name: str) -> str:
        return f"{self.prefix}-{name}"

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
