"""The audit trail: every change appended to the store's hash-chained log.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's
canonical JSON (:meth:`soclite.models.AuditEntry.compute_hash`), so editing,
deleting or reordering a stored row breaks the chain from that row on.
:func:`verify` recomputes the chain; ``soclite audit verify`` reports the
first broken ``seq``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from soclite.control.identity import Principal
from soclite.models import AuditEntry, utcnow
from soclite.store.base import Store

log = logging.getLogger(__name__)


def actor_of(principal: Principal | str) -> str:
    """How the trail names who acted: ``<kind>:<name>`` of a principal, or an explicit actor string."""
    return principal if isinstance(principal, str) else f"{principal.kind}:{principal.name}"


def append(
    store: Store,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    unit: str | None = None,
) -> AuditEntry:
    """Append one change: who (``actor``, see :func:`actor_of`), what (action on target), before/after, the unit."""
    now = utcnow()
    # Millisecond precision: the stored timestamp form, so the hash recomputes from what is stored.
    at = now.replace(microsecond=(now.microsecond // 1000) * 1000)
    entry = AuditEntry(
        at=at, actor=actor, action=action, target=target, unit=unit,
        before=jsonable(before), after=jsonable(after),
    )
    return store.append_audit(entry)


def cli_actor() -> str:
    """``cli:<os user>``: who ran a command on the server (issuing credentials is audited too)."""
    import getpass
    import os

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry / no login name in a container
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"cli:{user}"


def jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    import orjson

    loaded: dict[str, Any] = orjson.loads(orjson.dumps(value, default=str))
    return loaded


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None


def verify(entries: Iterable[AuditEntry]) -> VerifyResult:
    """Recompute the chain; stop at the first entry whose link or hash does not match."""
    prev_hash = ""
    expected_seq: int | None = None
    checked = 0
    for entry in entries:
        if expected_seq is not None and entry.seq != expected_seq:
            return VerifyResult(False, checked, entry.seq, f"sequence gap: expected seq {expected_seq}, found {entry.seq}")
        if entry.prev_hash != prev_hash:
            return VerifyResult(False, checked, entry.seq, "prev_hash does not match the previous entry's hash")
        if entry.compute_hash() != entry.hash:
            return VerifyResult(False, checked, entry.seq, "hash does not match the entry's content")
        prev_hash = entry.hash
        expected_seq = entry.seq + 1
        checked += 1
    return VerifyResult(True, checked)
