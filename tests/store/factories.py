"""Sample events and alerts for the store contract tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from soclite.models import Alert, Level, fingerprint, isoformat, new_id, severity_of

T0 = datetime(2024, 8, 1, 0, 0, tzinfo=UTC)


def event(
    i: int, *, unit: str = "u1", host: str = "PC-01", when: datetime | None = None, **extra: Any
) -> dict[str, Any]:
    ts = when or T0 + timedelta(minutes=i)
    doc: dict[str, Any] = {
        "@timestamp": isoformat(ts),
        "event.id": f"ev{i:06d}",
        "host.name": host,
        "event.original": f"<13>Aug  1 00:00:00 {host} sshd[1]: Failed password for root from 10.0.0.{i % 250} line {i}",
        "logsource.product": "linux",
        "logsource.category": "auth" if i % 2 else "process_creation",
        "soclite.unit": unit,
        "EventID": 4688 + (i % 3),
        "user.name": "root",
    }
    doc.update(extra)
    return doc


def alert(
    i: int,
    *,
    unit: str = "u1",
    level: str = "high",
    status: str = "new",
    host: str = "pc-01",
    rule_id: str = "rule-a",
    when: datetime | None = None,
    tags: list[str] | None = None,
    assignee: str | None = None,
    count: int = 1,
) -> Alert:
    seen = when or T0 + timedelta(hours=i)
    return Alert(
        id=f"al{i:06d}-{new_id()[:6]}",
        fingerprint=fingerprint(rule_id, host, {"i": i}),
        rule_id=rule_id,
        rule_title=f"Title of {rule_id}",
        level=Level(level),
        severity=severity_of(level),
        status=status,
        assignee=assignee,
        host=host,
        unit=unit,
        first_seen=seen - timedelta(minutes=5),
        last_seen=seen,
        count=count,
        event_ids=[f"ev{i:06d}"],
        event={"host.name": host, "event.id": f"ev{i:06d}"},
        tags=tags if tags is not None else ["attack.execution", "attack.t1059.001"],
        created_at=seen,
        updated_at=seen,
    )
