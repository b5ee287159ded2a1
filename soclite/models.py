"""The data model: Event, Alert, Host, Unit, AuditEntry and their vocabularies.

An :data:`Event` is a flat mapping, not a class: normalized ECS-style names
(``@timestamp``, ``host.name``, ``source.ip``, ``process.command_line`` ...)
sit beside the source's native field names (``EventID``, ``Image``,
``CommandLine`` ...) so SigmaHQ rules match without rewriting. A plain dict is
what the correlator's hot loop can afford at 50,000 events/s; the keys below
are the conventions every stage agrees on.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

#: A flat event mapping (see module docstring).
Event = dict[str, Any]

# --- keys of an Event -------------------------------------------------------
TIMESTAMP = "@timestamp"  # ISO 8601 UTC, e.g. "2024-08-01T03:04:05.123Z"
EVENT_ID = "event.id"  # unique id given by soclite at ingest (uuid4 hex)
HOST_NAME = "host.name"
HOST_IP = "host.ip"
RAW = "event.original"  # the raw line / record as received
LOGSOURCE_PRODUCT = "logsource.product"
LOGSOURCE_CATEGORY = "logsource.category"
LOGSOURCE_SERVICE = "logsource.service"
# Collector metadata lives under one prefix.
META_PREFIX = "soclite."
AGENT_ID = "soclite.agent_id"
UNIT = "soclite.unit"
RECEIVED = "soclite.received"
INPUT = "soclite.input"  # which input produced it: syslog-udp, http, agent, file, sensor
TRUNCATED = "soclite.truncated"
# Windows events: a ``System`` field shadowed by an EventData/UserData field of the same name (event
# 104's UserData ``Channel`` names the cleared log while it is logged to the System channel) keeps
# its value under ``System_<name>``; the plain name holds the data field, as SigmaHQ rules read it.
# Routing, host and time read the System value (see collectors.windows).
SYSTEM_PREFIX = "System_"
SYSTEM_CHANNEL = "System_Channel"
SYSTEM_EVENT_ID = "System_EventID"


def system_field(event: Event, name: str) -> Any:
    """A Windows event's ``System`` value of ``name``, whether or not a data field of that name shadows it."""
    value = event.get(SYSTEM_PREFIX + name)
    return event.get(name) if value is None else value


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(ts: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, the one timestamp form stored."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z`` or offset); naive values are taken as UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Severity(StrEnum):
    """The report bucket: critical/high → high (cao), medium → medium, low/informational → low."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Level(StrEnum):
    """The Sigma rule level, kept as the rule says."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFORMATIONAL = "informational"


def severity_of(level: str | Level | None) -> Severity:
    """Map a Sigma level to its report bucket (DESIGN.md, 'Severity')."""
    value = str(level or "").lower()
    if value in ("critical", "high"):
        return Severity.HIGH
    if value == "medium":
        return Severity.MEDIUM
    return Severity.LOW


class AlertStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"


#: Status transitions an analyst may make. Closing needs a close reason.
ALERT_TRANSITIONS: dict[AlertStatus, frozenset[AlertStatus]] = {
    AlertStatus.NEW: frozenset(
        {AlertStatus.ACKNOWLEDGED, AlertStatus.IN_PROGRESS, AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE}
    ),
    AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.IN_PROGRESS, AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE}),
    AlertStatus.IN_PROGRESS: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE}),
    AlertStatus.RESOLVED: frozenset({AlertStatus.IN_PROGRESS}),
    AlertStatus.FALSE_POSITIVE: frozenset({AlertStatus.IN_PROGRESS}),
}
CLOSED_STATUSES = frozenset({AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE})


def fingerprint(rule_id: str, host: str | None, key_fields: dict[str, Any] | None = None) -> str:
    """Group key of an alert: the rule, the host and the rule's key fields (sorted)."""
    parts = [rule_id, host or ""]
    for name in sorted(key_fields or {}):
        parts.append(f"{name}={key_fields[name] if key_fields else ''}")
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


class Alert(BaseModel):
    """A detection, grouped by fingerprint: a repeat increments ``count`` and ``last_seen``."""

    id: str = Field(default_factory=new_id)
    fingerprint: str
    rule_id: str
    rule_title: str
    level: Level
    severity: Severity
    status: AlertStatus = AlertStatus.NEW
    assignee: str | None = None
    close_reason: str | None = None
    host: str | None = None
    unit: str | None = None
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    #: ids (``event.id``) of the matched events, the first few kept.
    event_ids: list[str] = Field(default_factory=list)
    #: a copy of the first matched event, so the alert reads on its own.
    event: dict[str, Any] = Field(default_factory=dict)
    #: detection-owned watermark: the highest ingest-journal offset whose match is counted in ``count``.
    #: A batch replayed after a crash re-reads matches at or below it and must not count them again
    #: (``event_ids`` cannot tell: only the first few are kept). None: not from the journal / older alert.
    last_offset: int | None = None
    tags: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    falsepositives: list[str] = Field(default_factory=list)
    description: str | None = None
    #: "sigma", "correlation", "ioc"
    kind: str = "sigma"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    acknowledged_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def attack_techniques(self) -> list[str]:
        return [t.split(".", 1)[1].upper() for t in self.tags if t.lower().startswith("attack.t")]


class HostType(StrEnum):
    SERVER = "server"
    WORKSTATION = "workstation"


class IsolationState(StrEnum):
    """Where an isolation (or its release) stands, as the console may honestly claim it.

    isolate: ``awaiting_approval`` → ``requested`` (approved or no approval needed; the outbox has it)
    → ``pending`` (sent: a command queued for the host's agent) → ``isolated`` (the agent read the
    ruleset back from the kernel) | ``failed`` (the agent's, or the action's, reason) | ``expired``
    (the agent did not fetch the command in time). release: the same with the ``release_`` prefix,
    ending in ``none`` (confirmed), ``release_failed`` or ``release_expired`` (the host is still
    isolated as far as anyone knows). A rejected or cancelled request goes back where it came from.
    """

    NONE = "none"
    AWAITING_APPROVAL = "awaiting_approval"
    REQUESTED = "requested"  # approved (or no approval needed), not yet sent to the agent
    PENDING = "pending"  # sent to the agent, not yet confirmed
    ISOLATED = "isolated"  # the agent reported the ruleset it applied
    FAILED = "failed"  # the agent (or the action) reported it could not apply it
    EXPIRED = "expired"  # the agent did not fetch the command before it expired
    RELEASE_AWAITING_APPROVAL = "release_awaiting_approval"
    RELEASE_REQUESTED = "release_requested"
    RELEASE_PENDING = "release_pending"
    RELEASE_FAILED = "release_failed"
    RELEASE_EXPIRED = "release_expired"


#: states in which a request is under way: a heartbeat's report must not overwrite them
ISOLATION_IN_FLIGHT = frozenset({
    IsolationState.AWAITING_APPROVAL, IsolationState.REQUESTED, IsolationState.PENDING,
    IsolationState.RELEASE_AWAITING_APPROVAL, IsolationState.RELEASE_REQUESTED, IsolationState.RELEASE_PENDING,
})  # fmt: skip


class Host(BaseModel):
    id: str
    name: str
    type: HostType = HostType.WORKSTATION
    unit: str | None = None
    os: str | None = None
    ips: list[str] = Field(default_factory=list)
    macs: list[str] = Field(default_factory=list)
    agent_id: str | None = None
    agent_version: str | None = None
    last_seen: datetime | None = None
    isolation: IsolationState = IsolationState.NONE
    #: what the agent reported it applied (e.g. the nftables ruleset), for "verified".
    isolation_detail: str | None = None
    isolation_updated_at: datetime | None = None


class Unit(BaseModel):
    """A node of the unit tree: province → department/district → unit."""

    code: str
    #: the Vietnamese name (the official one); ``name_en`` is shown in the English UI where set
    name: str
    parent: str | None = None
    name_en: str | None = None


class AuditEntry(BaseModel):
    """One append-only, hash-chained record of a change."""

    seq: int = 0
    at: datetime = Field(default_factory=utcnow)
    actor: str
    action: str
    target: str
    unit: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    prev_hash: str = ""
    hash: str = ""

    def compute_hash(self) -> str:
        """SHA-256 over the previous hash and this entry's canonical JSON (without ``hash``)."""
        import orjson

        body = self.model_dump(mode="json", exclude={"hash"})
        payload = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(self.prev_hash.encode("ascii") + payload).hexdigest()
