"""HTTP bulk ingest: ``POST /api/v1/ingest`` — NDJSON (optionally gzip), answered only once durable.

The sender (an agent key, or an admin token for one-off loads) posts one JSON record per
line with an ``X-Batch-Id``. Every line is normalized (collectors.normalize); lines that
cannot be become dead letters with the reason, counted as ``rejected``. The events and the
dead letters are committed in one journal transaction, and only then does the sender get
200 — so a crash before the answer means a resend, and the batch id makes that resend a
no-op if the first attempt did commit. An agent key's unit and id are stamped on every
event (whatever the body claims). A full journal answers 503 with Retry-After.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from soclite.api.deps import PrincipalDep, RuntimeDep
from soclite.collectors.normalize import normalize_batch
from soclite.control.identity import Principal, Role
from soclite.errors import JournalError, ParseError
from soclite.models import utcnow
from soclite.store.journal import DeadLetter

router = APIRouter(prefix="/api/v1", tags=["ingest"])

#: Largest request body accepted, before and after gzip (a gzip bomb stops here).
MAX_BODY_BYTES = 64 * 1024 * 1024
RETRY_AFTER_SECONDS = 30
_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _decode_body(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"unsupported Content-Encoding {encoding!r}")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body is not valid gzip: {exc}") from exc
    if len(data) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"body larger than {MAX_BODY_BYTES} bytes")
    if not inflater.eof:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body is truncated gzip")
    return data


def _ingest(runtime: Any, principal: Principal, batch_id: str | None, data: bytes) -> dict[str, Any]:
    settings = runtime.settings
    source = f"http:{principal.name}"
    records: list[Any] = []
    dead: list[DeadLetter] = []
    line_of: list[int] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
            line_of.append(number)
        except orjson.JSONDecodeError as exc:
            dead.append((source, f"line {number}: invalid JSON: {exc}", line))
    is_agent = principal.role is Role.AGENT
    results = normalize_batch(
        records, received=utcnow(), input="http", unit=principal.unit, agent_id=principal.id if is_agent else None,
        default_tz=settings.timezone, max_bytes=settings.server.max_message_bytes,
    )  # fmt: skip
    events = []
    for item in results:
        if isinstance(item, ParseError):
            raw = getattr(item, "record", None)
            dead.append((source, str(item), orjson.dumps(raw, default=str)))
        else:
            events.append(item)
    accepted, duplicate = runtime.journal.append(batch_id, events, dead, unit=principal.unit)
    if duplicate:
        return {"accepted": 0, "duplicate": True}
    return {"accepted": accepted, "duplicate": False, "rejected": len(dead)}


@router.post("/ingest")
async def ingest(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> JSONResponse:
    """Store an NDJSON batch durably → {"accepted": N, "duplicate": false, "rejected": M}."""
    if principal.role not in (Role.AGENT, Role.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role.value} may not ingest")
    if runtime.journal is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "ingest journal is not running",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )  # fmt: skip
    batch_id = request.headers.get("x-batch-id")
    if batch_id is not None and not _BATCH_ID.match(batch_id):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "X-Batch-Id must be 1-128 characters of [A-Za-z0-9_.:-]")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"body larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"body larger than {MAX_BODY_BYTES} bytes")
    data = _decode_body(bytes(body), request.headers.get("content-encoding", ""))
    # Batch ids are per sender: two agents choosing the same id do not swallow each other's batch.
    scoped_id = f"{principal.id}:{batch_id}" if batch_id else None
    try:
        result = await run_in_threadpool(_ingest, runtime, principal, scoped_id, data)
    except JournalError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        ) from exc
    return JSONResponse(result)
