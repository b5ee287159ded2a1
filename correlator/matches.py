"""Detections as the engine reports them (:class:`Match`) and as alerts (:func:`to_alert`).

The host an alert names is the event's ``host.name`` (else the Windows ``Computer``), lower-cased;
its time is the event's ``@timestamp``; an IoC hit becomes a match of a rule made for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from soclite.correlator.correlation import Correlation
from soclite.correlator.ioc import IocHit
from soclite.correlator.loader import CompiledRule
from soclite.models import (
    EVENT_ID,
    HOST_NAME,
    TIMESTAMP,
    UNIT,
    Alert,
    Event,
    Level,
    fingerprint,
    parse_timestamp,
    severity_of,
    system_field,
    utcnow,
)


@dataclass
class Match:
    """A detection before it becomes an Alert (what ``soclite hunt`` prints)."""

    rule: CompiledRule | Correlation
    event: Event
    key_fields: dict[str, Any]
    kind: str = "sigma"


def event_time(event: Event) -> datetime:
    value = event.get(TIMESTAMP)
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            pass
    return utcnow()


@dataclass
class IocRule:
    id: str
    title: str
    level: str
    tags: list[str]
    references: list[str]
    falsepositives: list[str]
    description: str | None


def ioc_rule(hit: IocHit) -> Any:
    return IocRule(
        id=f"ioc:{hit.list_name}",
        title=f"IoC match ({hit.kind}) in list {hit.list_name}: {hit.value}",
        level=hit.level,
        tags=[],
        references=[],
        falsepositives=[],
        description=f"{hit.field} = {hit.value}",
    )


def host_of(event: Event) -> str | None:
    host = event.get(HOST_NAME) or system_field(event, "Computer") or event.get("Hostname")
    return str(host).lower() if host else None


def to_alert(m: Match) -> Alert:
    rule = m.rule
    event = m.event
    when = event_time(event)
    host = host_of(event)
    level = rule.level if rule.level in Level.__members__.values() else "medium"
    eid = event.get(EVENT_ID)
    return Alert(
        fingerprint=fingerprint(rule.id, host, m.key_fields),
        rule_id=rule.id,
        rule_title=rule.title,
        level=Level(level),
        severity=severity_of(level),
        host=host,
        unit=event.get(UNIT),
        first_seen=when,
        last_seen=when,
        event_ids=[str(eid)] if eid else [],
        event=dict(event),
        tags=list(rule.tags),
        references=list(rule.references),
        falsepositives=list(rule.falsepositives),
        description=rule.description,
        kind=m.kind,
    )
