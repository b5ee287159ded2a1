"""Bulk writes to OpenSearch with per-item error handling and backoff on 429.

A bulk request can half-succeed: each item has its own status. Items that were
stored stay stored (every write carries a deterministic ``_id``, so a retry of
the whole batch is harmless), items refused with 429 (queue full) are resent
with exponential backoff, ``create`` items that answer 409 were already stored
(idempotent writes), and anything else is collected and raised as one
:class:`~soclite.errors.StoreError` naming the items, so the caller can retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError

from soclite.errors import StoreError

log = logging.getLogger(__name__)


@dataclass
class BulkItem:
    op: str  # "index" (replace) or "create" (write once)
    index: str
    id: str
    doc: dict[str, Any]


@dataclass
class BulkResult:
    created: int = 0
    existing: int = 0
    #: items refused for their content (mapping), with the reason; the caller may rewrite and resend them.
    rejected: list[tuple[BulkItem, str]] | None = None


def _is_mapping_error(error: Any) -> bool:
    kind = str(error.get("type", "")) if isinstance(error, dict) else ""
    return kind in {"mapper_parsing_exception", "document_parsing_exception", "illegal_argument_exception"}


def bulk_write(
    client: OpenSearch,
    items: Sequence[BulkItem],
    *,
    refresh: bool | str = False,
    attempts: int = 6,
    base_delay: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> BulkResult:
    """Write ``items``; raise StoreError for items that still fail after backoff (others stay written)."""
    result = BulkResult(rejected=[])
    pending = list(items)
    failures: list[str] = []
    for attempt in range(attempts):
        if not pending:
            break
        body: list[dict[str, Any]] = []
        for item in pending:
            body.append({item.op: {"_index": item.index, "_id": item.id}})
            body.append(item.doc)
        try:
            response = client.bulk(body=body, refresh=refresh)
        except TransportError as exc:
            if exc.status_code == 429 and attempt + 1 < attempts:
                sleep(base_delay * 2**attempt)
                continue
            raise StoreError(
                f"bulk write of {len(pending)} documents failed ({exc}); retry the batch"
            ) from exc
        except OSConnectionError as exc:
            raise StoreError(
                f"OpenSearch unreachable during bulk write of {len(pending)} documents: {exc}"
            ) from exc
        retry: list[BulkItem] = []
        failures = []
        for item, answer in zip(pending, response.get("items", []), strict=False):
            (outcome,) = answer.values()
            status = int(outcome.get("status", 500))
            if status < 300:
                result.created += 1
            elif status == 409 and item.op == "create":
                result.existing += 1
            elif status == 429:
                retry.append(item)
            elif status == 400 and _is_mapping_error(outcome.get("error")):
                assert result.rejected is not None
                result.rejected.append((item, _reason(outcome.get("error"))))
            else:
                failures.append(f"{item.index}/{item.id}: {status} {_reason(outcome.get('error'))}")
        if failures:
            raise StoreError(
                f"bulk write: {len(failures)} of {len(pending)} documents failed, the rest were stored "
                f"(retrying the batch is safe): " + "; ".join(failures[:10])
            )
        if retry and attempt + 1 < attempts:
            log.warning("OpenSearch refused %d documents with 429; backing off", len(retry))
            sleep(base_delay * 2**attempt)
        pending = retry
    if pending:
        raise StoreError(
            f"bulk write: {len(pending)} documents still refused with 429 after {attempts} attempts"
        )
    return result


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"
    return str(error)
