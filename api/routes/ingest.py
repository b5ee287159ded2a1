"""HTTP bulk ingest: ``POST /api/v1/ingest`` — NDJSON (optionally gzip), answered only once durable.

The sender (an agent key, or an admin token for one-off loads) posts one JSON record per
line with an ``X-Batch-Id``. In order, each step bounded so one sender cannot exhaust the server:

1. a resend of a stored ``X-Batch-Id`` is answered as a duplicate before the body is read;
2. at most ``server.max_concurrent_batches`` batches of one sender are in progress (429 + Retry-After);
3. the body is decompressed and parsed as a stream: past ``server.max_batch_bytes`` decompressed
   bytes or ``server.max_batch_lines`` lines the batch is refused (413 naming the limit), so a gzip
   bomb costs at most the limit; events are serialised chunk by chunk, so the batch is held as
   bytes, never as all its dicts at once;
4. every line is normalized (collectors.normalize); lines that cannot be (invalid JSON, nested
   deeper than the journal can store, unrecognised) become dead letters with the reason, counted
   as ``rejected``, and the rest of the batch is accepted;
5. events and dead letters are committed in one journal transaction, and only then does the sender
   get 200: a crash before the answer means a resend, which the batch id makes a no-op.

Who the events belong to comes from the sender, not the body (:mod:`soclite.collectors.sources`):
an agent key's unit and id are stamped on every event and an enrolled agent's events are its
enrolled host's; an admin's load is mapped by its address through the source map when it matches. A full journal or a
full disk answers 503 with Retry-After.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from soclite.api.deps import PrincipalDep, RuntimeDep
from soclite.collectors import memory
from soclite.collectors.normalize import normalize_batch
from soclite.collectors.sources import SourceMap, bind_host
from soclite.config import ServerSettings
from soclite.control.identity import Principal, Role
from soclite.errors import JournalError, ParseError
from soclite.models import utcnow
from soclite.runtime import Runtime
from soclite.store.journal import DeadLetter, encode

router = APIRouter(prefix="/api/v1", tags=["ingest"])

RETRY_AFTER_SECONDS = 30
#: a sender over its concurrent batches retries soon: its other batch is being stored
BUSY_RETRY_AFTER_SECONDS = 2
_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
#: records normalized and serialised together (bounds the dicts alive at once)
CHUNK_LINES = 2000
#: orjson serialises at most 254 levels of nesting; deeper records are dead letters, not a failed batch
MAX_DEPTH = 128
_READ_BYTES = 1024 * 1024

#: batches in progress per sender (principal id); only touched on the event loop, so no lock
_in_progress: dict[str, int] = {}


def _too_large(what: str, limit: int) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"batch has more than {limit} {what} (the limit)")


def _decoded_chunks(body: bytes, encoding: str, limit: int) -> Iterator[bytes]:
    """The body, decompressed a piece at a time; 413 as soon as it passes ``limit`` bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise _too_large("bytes", limit)
        yield body
        return
    if encoding not in ("gzip", "x-gzip"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"unsupported Content-Encoding {encoding!r}")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total = 0
    pending = body
    try:
        while True:
            piece = inflater.decompress(pending, _READ_BYTES)
            pending = inflater.unconsumed_tail
            total += len(piece)
            if total > limit:
                raise _too_large("bytes after decompression", limit)
            if piece:
                yield piece
            if inflater.eof or (not pending and not piece):
                break
    except zlib.error as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body is not valid gzip: {exc}") from exc
    if not inflater.eof:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body is truncated gzip")


def _measure(body: bytes, encoding: str, limits: ServerSettings) -> None:
    """A first pass that only counts decompressed bytes and lines: 413 before any parsing.

    Decompressing twice costs ~0.1 s per 60 MB at constant memory; parsing a gzip bomb up to the
    limit before refusing it cost seconds and hundreds of MB.
    """
    lines = 0
    last = b"\n"
    for chunk in _decoded_chunks(body, encoding, limits.max_batch_bytes):
        lines += chunk.count(b"\n")
        last = chunk[-1:]
        if lines > limits.max_batch_lines:
            raise _too_large("lines", limits.max_batch_lines)
    if last != b"\n" and lines + 1 > limits.max_batch_lines:
        raise _too_large("lines", limits.max_batch_lines)


def _lines(chunks: Iterator[bytes], max_lines: int) -> Iterator[tuple[int, bytes]]:
    """Numbered non-empty lines across chunk boundaries; 413 past ``max_lines`` lines."""
    tail = b""
    number = 0
    for chunk in chunks:
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        for line in parts:
            number += 1
            if number > max_lines:
                raise _too_large("lines", max_lines)
            if line.strip():
                yield number, line
    if tail.strip():
        number += 1
        if number > max_lines:
            raise _too_large("lines", max_lines)
        yield number, tail


def _depth_over(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return False


def _agent_host(runtime: Runtime, principal: Principal) -> str | None:
    """The host an enrolled agent speaks for: the name it enrolled as.

    A key made by hand (``soclite token create --role agent --unit U``) is a unit's collector key (a
    log shipper forwarding many hosts): its events keep their host names, stamped with its unit;
    the host actions' unit check (playbooks.actions.host) keeps them from reaching another unit's hosts.
    """
    return runtime.agents.hostname(principal.id)


def _ingest(
    runtime: Runtime, principal: Principal, batch_id: str | None, body: bytes, encoding: str, client: str | None
) -> dict[str, Any]:
    settings = runtime.settings
    limits = settings.server
    source = f"http:{principal.name}"
    is_agent = principal.role is Role.AGENT
    host = _agent_host(runtime, principal) if is_agent else None
    _measure(body, encoding, limits)
    mapping = None if is_agent else SourceMap.from_settings(limits).lookup(client)
    unit = mapping.unit if mapping is not None and principal.unit is None else principal.unit
    if mapping is not None and mapping.host is not None:
        host = mapping.host
    received = utcnow()
    bodies: list[bytes] = []
    dead: list[DeadLetter] = []
    records: list[Any] = []

    def flush() -> None:
        results = normalize_batch(
            records, received=received, input="http", unit=unit, agent_id=principal.id if is_agent else None,
            default_tz=settings.timezone, max_bytes=limits.max_message_bytes,
            max_future_skew_seconds=limits.max_future_skew_seconds, max_past_skew_days=limits.max_past_skew_days,
        )  # fmt: skip
        for item in results:
            if isinstance(item, ParseError):
                raw = getattr(item, "record", None)
                dead.append((source, str(item), orjson.dumps(raw, default=str)))
                continue
            if host is not None:
                bind_host(item, host)
            bodies.append(encode(item))  # exact-size bytes: see soclite.store.journal.encode
        records.clear()

    for number, line in _lines(_decoded_chunks(body, encoding, limits.max_batch_bytes), limits.max_batch_lines):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            dead.append((source, f"line {number}: invalid JSON: {exc}", line[:65536]))
            continue
        if _depth_over(record, MAX_DEPTH):
            dead.append((source, f"line {number}: nested deeper than {MAX_DEPTH} levels", line[:65536]))
            continue
        records.append(record)
        if len(records) >= CHUNK_LINES:
            flush()
    flush()
    del body
    try:
        accepted, duplicate = runtime.require_journal().append_bodies(batch_id, bodies, dead, unit=principal.unit)
    finally:
        bodies.clear()
        memory.release()
    if duplicate:
        return {"accepted": 0, "duplicate": True}
    return {"accepted": accepted, "duplicate": False, "rejected": len(dead)}


@router.post("/ingest")
async def ingest(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> JSONResponse:
    """Store an NDJSON batch durably → {"accepted": N, "duplicate": false, "rejected": M}."""
    if principal.role not in (Role.AGENT, Role.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role.value} may not ingest")
    journal = runtime.journal
    if journal is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "ingest journal is not running",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )  # fmt: skip
    batch_id = request.headers.get("x-batch-id")
    if batch_id is not None and not _BATCH_ID.match(batch_id):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "X-Batch-Id must be 1-128 characters of [A-Za-z0-9_.:-]")
    # Batch ids are per sender: two agents choosing the same id do not swallow each other's batch.
    scoped_id = f"{principal.id}:{batch_id}" if batch_id else None
    limit = runtime.settings.server.max_batch_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large("bytes", limit)
    # Counted before the first await: two requests of one sender cannot both pass the check.
    if _in_progress.get(principal.id, 0) >= runtime.settings.server.max_concurrent_batches:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{runtime.settings.server.max_concurrent_batches} batches of this sender are already in progress",
            headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
        )
    _in_progress[principal.id] = _in_progress.get(principal.id, 0) + 1
    try:
        if scoped_id is not None and await run_in_threadpool(journal.seen, scoped_id):
            return JSONResponse({"accepted": 0, "duplicate": True})  # a resend costs no reading, no parsing
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:  # compressed data is never larger than its limit allows decompressed
                raise _too_large("bytes", limit)
        data = bytes(body)
        del body
        client = request.client.host if request.client else None
        try:
            result = await run_in_threadpool(
                _ingest, runtime, principal, scoped_id, data, request.headers.get("content-encoding", ""), client
            )
        except JournalError as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from exc
    finally:
        left = _in_progress.get(principal.id, 1) - 1
        if left <= 0:
            _in_progress.pop(principal.id, None)
        else:
            _in_progress[principal.id] = left
    return JSONResponse(result)
