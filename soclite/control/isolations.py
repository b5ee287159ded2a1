"""What the isolation commands of a period came to, for reports: sent vs. confirmed by the agent.

Read-only over the ``commands`` table that :mod:`soclite.control.commands` owns (it is not
changed here). A report must not call a command that was only *sent* an isolation: a host is
isolated when its agent reported the ruleset it applied (``status = 'done'`` and ``ok = 1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from soclite.db import Database
from soclite.models import isoformat, parse_timestamp


@dataclass(frozen=True)
class IsolationCommand:
    id: str
    host_id: str
    status: str  # pending | delivered | done | failed | expired
    ok: bool | None
    created_at: datetime
    completed_at: datetime | None

    @property
    def confirmed(self) -> bool:
        return self.status == "done" and bool(self.ok)


def isolation_commands_between(db: Database, start: datetime, end: datetime) -> list[IsolationCommand]:
    """Isolate commands created in ``[start, end)`` or completed in it (timestamps are stored as ``isoformat``)."""
    lo, hi = isoformat(start), isoformat(end)
    rows = db.reader().execute(
        "SELECT id, host_id, status, ok, created_at, completed_at FROM commands WHERE kind = 'isolate' AND "
        "((created_at >= ? AND created_at < ?) OR (completed_at >= ? AND completed_at < ?)) ORDER BY created_at, id",
        (lo, hi, lo, hi),
    ).fetchall()
    return [
        IsolationCommand(
            id=r["id"], host_id=r["host_id"], status=r["status"], ok=None if r["ok"] is None else bool(r["ok"]),
            created_at=parse_timestamp(r["created_at"]),
            completed_at=parse_timestamp(r["completed_at"]) if r["completed_at"] else None,
        )
        for r in rows
    ]


__all__ = ["IsolationCommand", "isolation_commands_between"]
