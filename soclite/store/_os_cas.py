"""Compare-and-set updates of whole documents: read with ``_seq_no``, write with ``if_seq_no``.

Why not ``_update`` with a script: painless is not on every cluster this must run against (the
in-memory test server has none), and a partial ``doc`` update cannot add to a count. Optimistic
concurrency works everywhere: ``mget`` returns each document's ``_seq_no``/``_primary_term``, the
caller's function computes the new document, and the bulk ``index`` carries ``if_seq_no`` and
``if_primary_term``, so a document another writer changed in between answers 409 and is read and
recomputed again, never overwritten blind. Each document is atomic on its own, not the batch.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError

from soclite.errors import StoreError

#: the new document for an id from its current source, or None to leave it as it is
Modify = Callable[[str, dict[str, Any]], dict[str, Any] | None]


def cas_update(
    client: OpenSearch,
    index: str,
    ids: Sequence[str],
    modify: Modify,
    *,
    refresh: bool | str = "wait_for",
    attempts: int = 20,
) -> dict[str, dict[str, Any]]:
    """Apply ``modify`` to each existing document of ``ids``; return id → source as stored.

    Ids that do not exist are left out of the result. ``modify`` may run several times for one id
    (once per conflict) and may raise to abort: documents already written stay written.
    """
    done: dict[str, dict[str, Any]] = {}
    pending = list(dict.fromkeys(ids))
    for attempt in range(attempts):
        if not pending:
            return done
        if attempt:
            # Writers that collided and retry at once tend to collide again: a random, growing pause
            # (full jitter) lets one of them through.
            time.sleep(random.uniform(0, min(0.2, 0.002 * 2**attempt)))
        try:
            docs = client.mget(index=index, body={"ids": pending})["docs"]
        except (TransportError, OSConnectionError) as exc:
            raise StoreError(f"reading {len(pending)} documents of {index} failed: {exc}") from exc
        body: list[dict[str, Any]] = []
        writes: list[tuple[str, dict[str, Any]]] = []
        for doc in docs:
            if not doc.get("found"):
                continue
            new = modify(str(doc["_id"]), doc["_source"])
            if new is None:
                done[str(doc["_id"])] = doc["_source"]
                continue
            meta = {"_index": index, "_id": doc["_id"], "if_seq_no": doc["_seq_no"],
                    "if_primary_term": doc["_primary_term"]}
            body += [{"index": meta}, new]
            writes.append((str(doc["_id"]), new))
        pending = []
        if not body:
            continue
        try:
            response = client.bulk(body=body, refresh=refresh)
        except (TransportError, OSConnectionError) as exc:
            raise StoreError(f"conditional write of {len(writes)} documents to {index} failed: {exc}") from exc
        failures = []
        for (doc_id, new), answer in zip(writes, response.get("items", []), strict=True):
            (outcome,) = answer.values()
            status = int(outcome.get("status", 500))
            if status < 300:
                done[doc_id] = new
            elif status in (409, 429):  # changed by another writer since our read (or busy): read again
                pending.append(doc_id)
            else:
                failures.append(f"{doc_id}: {status} {outcome.get('error')}")
        if failures:
            raise StoreError(
                f"conditional write to {index}: {len(failures)} documents failed (the others were "
                f"stored; retrying is safe): " + "; ".join(failures[:10])
            )
    if pending:
        raise StoreError(
            f"{index}: {len(pending)} documents kept changing under {attempts} attempts "
            f"({', '.join(pending[:5])}); try again"
        )
    return done


def cas_create(
    client: OpenSearch, index: str, docs: dict[str, dict[str, Any]], *, refresh: bool | str = "wait_for"
) -> set[str]:
    """Write each id → document only if no document has that id; return the ids this call created.

    An id another writer created first (409) is left out, so the caller applies its change to that one.
    """
    if not docs:
        return set()
    body: list[dict[str, Any]] = []
    for doc_id, doc in docs.items():
        body += [{"create": {"_index": index, "_id": doc_id}}, doc]
    try:
        response = client.bulk(body=body, refresh=refresh)
    except (TransportError, OSConnectionError) as exc:
        raise StoreError(f"creating {len(docs)} documents in {index} failed: {exc}") from exc
    created: set[str] = set()
    failures = []
    for doc_id, answer in zip(docs, response.get("items", []), strict=True):
        (outcome,) = answer.values()
        status = int(outcome.get("status", 500))
        if status < 300:
            created.add(doc_id)
        elif status != 409:
            failures.append(f"{doc_id}: {status} {outcome.get('error')}")
    if failures:
        raise StoreError(
            f"creating documents in {index}: {len(failures)} failed (the others were stored; retrying is "
            f"safe): " + "; ".join(failures[:10])
        )
    return created
