"""The API's side of the audit trail: who a request's principal is in the trail.

The trail itself (append, verify) is :mod:`soclite.control.audit`.
"""

from __future__ import annotations

from typing import Any

from soclite.control.audit import actor_of, append
from soclite.control.identity import Principal
from soclite.models import AuditEntry
from soclite.runtime import Runtime


def record(
    runtime: Runtime,
    principal: Principal | str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    unit: str | None = None,
) -> AuditEntry:
    """Append one change: who (principal), what (action on target), before/after, the unit concerned."""
    return append(runtime.store, actor_of(principal), action, target, before, after, unit)
