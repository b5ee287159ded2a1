"""The store contract: one interface, two implementations (SQLite, OpenSearch).

Events and alerts (the data that grows) live behind :class:`Store`. Every
query takes a ``units`` scope: ``None`` means everything, a set means only
rows whose unit is in it (the caller expands a unit to its subtree). Pages are
sorted newest first and carry an opaque ``next`` cursor.

Writes are all-or-nothing per call and raise :class:`~soclite.errors.StoreError`
on failure so the caller can retry; ``write_events`` is idempotent on
``event.id`` and ``put_alert`` on ``Alert.id``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypedDict, TypeVar
from zoneinfo import ZoneInfo

from soclite.models import Alert, AuditEntry, Event, Host, HostType, IsolationState, Unit

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    total: int
    items: list[T]
    next: str | None = None


@dataclass(frozen=True)
class Match:
    """One term of a search: ``field:value`` (the flat field's value, whole and case-insensitive; ``*``
    and ``?`` as wildcards when ``wildcard``) or, with ``field`` None, text anywhere in the event (as ``q``)."""

    field: str | None
    value: str
    wildcard: bool = False


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    part: Expr


#: a parsed event search (``soclite.api.search`` reads the Lucene-like text people type into it).
Expr = Match | AllOf | AnyOf | Not


@dataclass
class EventQuery:
    host: str | None = None
    #: full text over the raw line and main fields (case-insensitive substring)
    q: str | None = None
    start: datetime | None = None  # inclusive, on @timestamp
    end: datetime | None = None  # exclusive
    units: frozenset[str] | None = None
    ids: Sequence[str] | None = None
    #: exact matches on flat event fields, e.g. {"logsource.category": "process_creation"}
    fields: dict[str, str] = field(default_factory=dict)
    #: a boolean search over fields and text (AND with the other filters)
    expr: Expr | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass
class AlertQuery:
    host: str | None = None
    q: str | None = None
    #: on last_seen
    start: datetime | None = None
    end: datetime | None = None
    units: frozenset[str] | None = None
    severity: Sequence[str] | None = None
    level: Sequence[str] | None = None
    status: Sequence[str] | None = None
    rule_id: str | None = None
    assignee: str | None = None
    fingerprint: str | None = None
    ids: Sequence[str] | None = None
    sort: Literal["last_seen", "first_seen", "severity", "count"] = "last_seen"
    order: Literal["desc", "asc"] = "desc"
    limit: int = 50
    cursor: str | None = None


@dataclass
class HostQuery:
    units: frozenset[str] | None = None
    type: str | None = None
    q: str | None = None
    limit: int = 500
    cursor: str | None = None


@dataclass
class AlertRepeat:
    """New matches of an existing alert: only the detection-owned fields change (see ``record_repeats``).

    The pipeline sends this instead of the whole alert so an analyst's concurrent status or assignee
    change is never reverted by a count increment (and an increment never lost to a triage write).
    """

    id: str
    last_seen: datetime
    first_seen: datetime
    updated_at: datetime
    #: added to the stored count (the number of new matches)
    count: int = 1
    #: matched event ids to append (those not yet on the alert), while it holds fewer than ``max_event_ids``
    event_ids: Sequence[str] = ()
    max_event_ids: int = 20
    #: journal offsets of the matches in ``count`` (one per match that has one; at most ``count``).
    #: Those at or below the alert's stored ``last_offset`` are already counted and are skipped.
    offsets: Sequence[int] = ()
    #: the search text (``_common.event_text``) of the new matched events: ``q`` on alerts finds an
    #: alert by the fields of any of its matched events, not only the first one's.
    texts: Sequence[str] = ()

    @property
    def last_offset(self) -> int | None:
        """The highest journal offset of these matches (the alert's new watermark), None without offsets."""
        return max(self.offsets) if self.offsets else None


#: the fields only detection (the pipeline) changes on an existing alert.
DETECTION_FIELDS = frozenset({"count", "last_seen", "first_seen", "event_ids", "updated_at", "last_offset"})
# (and the alert's search text, which is not a field of Alert: see AlertRepeat.texts)
#: the fields triage (an analyst) changes; ``update_alert_fields`` accepts nothing else.
TRIAGE_FIELDS = frozenset({"status", "assignee", "close_reason", "acknowledged_at", "closed_at", "updated_at"})

#: what ``update_alert_fields`` takes: the new values, or a function of the current alert that returns them
#: (run inside the atomic section, maybe more than once; it may raise to abort without writing).
FieldChange = Mapping[str, Any] | Callable[[Alert], Mapping[str, Any]]


class HostChanges(TypedDict, total=False):
    """The fields of a host ``update_host`` can change (every field but ``id``), each optional."""

    name: str
    type: HostType
    unit: str | None
    os: str | None
    ips: list[str]
    macs: list[str]
    agent_id: str | None
    agent_version: str | None
    last_seen: datetime | None
    isolation: IsolationState
    isolation_detail: str | None
    isolation_updated_at: datetime | None


#: the fields ``update_host`` accepts: all but the id.
HOST_FIELDS = frozenset(HostChanges.__annotations__)

#: what ``update_host`` takes: the new values, or a function of the current host that returns them
#: (run inside the atomic section, maybe more than once; it may raise to abort without writing).
HostChange = HostChanges | Mapping[str, Any] | Callable[[Host], Mapping[str, Any]]


@dataclass
class HistogramBucket:
    start: datetime
    counts: dict[str, int]


@dataclass(frozen=True)
class KeepLonger:
    """Events and alerts of these hosts (host keys: lower-cased ``host.name``) or units are kept back to
    ``since`` (older than the plan's ``before``): a security level's retention (issue 17)."""

    since: datetime
    hosts: frozenset[str] = frozenset()
    units: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RetentionPlan:
    """What retention deletes: everything older than ``before`` that no :class:`KeepLonger` protects.

    An event (or alert, by ``last_seen``) older than ``before`` stays while it is younger than the
    ``since`` of a clause naming its host or unit; with several clauses the longest wins.
    """

    before: datetime
    keep: tuple[KeepLonger, ...] = ()

    def protects(self, host: str | None, unit: str | None, ts: datetime) -> bool:
        key = host.lower() if host else None
        return any(ts >= k.since and ((key is not None and key in k.hosts) or (unit is not None and unit in k.units))
                   for k in self.keep)

    @property
    def oldest_kept(self) -> datetime:
        """The oldest time any clause can keep: nothing older survives."""
        return min([self.before, *(k.since for k in self.keep)])


@dataclass
class RetentionResult:
    events: int = 0
    alerts: int = 0
    #: whole day partitions (files or daily indices) dropped, rather than trimmed row by row
    days_dropped: int = 0
    #: days kept whole or trimmed because a long-retention host or unit has events in them
    days_trimmed: int = 0


@dataclass(frozen=True)
class StoreHealth:
    """The store's own check in /health: ``problems`` (empty = ok) and what to show beside them."""

    problems: list[str]
    details: dict[str, Any] = field(default_factory=dict)


class Store(abc.ABC):
    """What every store implementation provides."""

    kind: str = "abstract"
    #: a store on other machines (it can be away while this process runs: detection spools for it)
    remote: bool = False

    # --- lifecycle -------------------------------------------------------
    @abc.abstractmethod
    def open(self) -> None:
        """Connect and create/migrate the schema; raise SchemaError on a corrupt or newer schema."""

    def open_when_reachable(self) -> None:
        """Open for a long-running process: a remote store whose cluster cannot be reached yet starts
        anyway and finishes opening on first use (OpenSearchStore); a local store simply opens."""
        self.open()

    @abc.abstractmethod
    def close(self) -> None: ...

    def health(self) -> StoreHealth | None:
        """The state of a remote store (e.g. an OpenSearch cluster); None for an embedded one."""
        return None

    # --- events ----------------------------------------------------------
    @abc.abstractmethod
    def write_events(self, events: Sequence[Event]) -> int:
        """Store a batch (idempotent on ``event.id``); return how many were stored."""

    def write_matched_events(self, events: Sequence[Event]) -> int:
        """The events alerts matched, written by detection ahead of bulk storage (idempotent on ``event.id``).

        They must be readable by id (``EventQuery.ids``) at once, whatever bulk storage is doing; the same
        events reach :meth:`write_events` later through the storage consumer. A store whose bulk writes
        can hold them up keeps them apart (SQLite); by default they are simply written.
        """
        return self.write_events(events)

    @abc.abstractmethod
    def query_events(self, query: EventQuery) -> Page[Event]: ...

    @abc.abstractmethod
    def count_events(self, query: EventQuery) -> int: ...

    # --- alerts ----------------------------------------------------------
    @abc.abstractmethod
    def put_alert(self, alert: Alert) -> Alert:
        """Insert or replace an alert by id."""

    @abc.abstractmethod
    def put_alerts(self, alerts: Sequence[Alert]) -> int:
        """Insert or replace many alerts by id in one write."""

    @abc.abstractmethod
    def record_repeats(self, repeats: Sequence[AlertRepeat]) -> list[Alert]:
        """Add new matches to existing alerts, atomically per alert, touching only DETECTION_FIELDS.

        count += repeat.count, last_seen = max, first_seen = min, updated_at = max, new event ids
        appended up to ``max_event_ids``, ``last_offset`` = max. With ``repeat.offsets`` and a stored
        ``last_offset``, matches at or below that watermark are a replay and are not counted again;
        otherwise a repeat whose event ids are all already on the alert is a replay and changes nothing. Status, assignee and the other triage fields keep whatever value
        is stored at the time of the write. Returns the alerts as stored afterwards (ids that do not
        exist are skipped: alerts are never deleted, so that is logged, not raised).
        """

    @abc.abstractmethod
    def update_alert_fields(
        self, alert_id: str, fields: FieldChange, units: frozenset[str] | None = None
    ) -> Alert:
        """Change only TRIAGE_FIELDS of one alert, atomically (a concurrent repeat is never lost).

        ``fields`` is a mapping or a function of the current alert returning one (so a caller can
        validate a transition against the state it writes over). An unknown field raises StoreError;
        a missing alert or one outside ``units`` raises NotFoundError. Returns the alert as stored.
        """

    @abc.abstractmethod
    def get_alert(self, alert_id: str, units: frozenset[str] | None = None) -> Alert:
        """Raise NotFoundError when missing or outside ``units``."""

    @abc.abstractmethod
    def find_open_alert(self, fingerprint: str, since: datetime) -> Alert | None:
        """The newest not-closed alert with this fingerprint whose last_seen >= since (for grouping)."""

    @abc.abstractmethod
    def query_alerts(self, query: AlertQuery) -> Page[Alert]: ...

    def alerts_version(self) -> int | None:
        """A number that moves whenever any process changes an alert or its tags, read cheaply; None when
        the store has no such number (then nothing is cached by it: see soclite.api.viewcache)."""
        return None

    @abc.abstractmethod
    def count_alerts(self, query: AlertQuery, group_by: str | None = None) -> dict[str, int]:
        """Counts of the alerts matching ``query``: ``{"total": N}`` or one key per value of
        ``group_by`` (severity, level, status, rule_id, host, unit, assignee, tags, and ``user`` and
        ``source_ip`` of the alert's matched event: see ``_common.ALERT_EVENT_GROUPS``)."""

    @abc.abstractmethod
    def alert_histogram(
        self,
        query: AlertQuery,
        interval: Literal["hour", "day", "month"],
        group_by: str = "severity",
        tz: ZoneInfo | None = None,
    ) -> list[HistogramBucket]:
        """Alerts per hour/day/month of ``last_seen``, one count per value of ``group_by``.

        Days and months are those of ``tz`` (the site's zone; None = UTC): each bucket's ``start`` is
        the local midnight that opens it (an aware datetime in ``tz``), so an alert at 00:30 local
        time is on its local day, not on the previous UTC one. Empty buckets are left out.
        """

    # --- hosts and units -----------------------------------------------------
    @abc.abstractmethod
    def put_host(self, host: Host) -> Host:
        """Insert or replace a whole host (creation, import). Changes of a stored host go through
        ``update_host``/``touch_hosts``: a whole-document write would revert a concurrent one."""

    @abc.abstractmethod
    def update_host(
        self,
        host_id: str,
        changes: HostChange,
        *,
        units: frozenset[str] | None = None,
        create: Host | None = None,
    ) -> Host:
        """Change only the given fields of one host, atomically: the other fields keep whatever value is
        stored at the time of the write (a concurrent ``touch_hosts`` or isolation change is never lost).

        ``changes`` is a mapping (see :class:`HostChanges`) or a function of the current host returning
        one (so a caller can decide on the state it writes over; it may run more than once and may raise
        to abort). A host outside ``units`` raises NotFoundError; so does a missing one, unless
        ``create`` is given: then ``create`` (whose id must be ``host_id``) with the changes applied is
        inserted, if no other writer inserted the host first (else the changes apply to that one).
        An unknown field or an invalid value raises StoreError. Returns the host as stored.
        """

    @abc.abstractmethod
    def touch_hosts(self, seen: Mapping[str, datetime], *, create: Mapping[str, Host] | None = None) -> list[Host]:
        """Raise ``last_seen`` of each host id in ``seen`` to the given time (never lower it) and write
        nothing else, atomically per host, so a concurrent isolation or binding change always survives.

        A missing id with a host in ``create`` is inserted as that host (``last_seen`` raised to the
        seen time) unless another writer inserted it first; a missing id without one is skipped.
        Returns the hosts as stored afterwards, in the order of ``seen``.
        """

    @abc.abstractmethod
    def get_host(self, host_id: str, units: frozenset[str] | None = None) -> Host: ...

    @abc.abstractmethod
    def find_host(self, name: str) -> Host | None:
        """By host name (case-insensitive) or agent id."""

    def find_hosts(self, names: Sequence[str]) -> dict[str, Host]:
        """:meth:`find_host` of many names at once: the names found (as given) with their hosts.

        Detection refreshes every host it hears of once a minute; a remote store overrides this with
        one request for all of them instead of one (or three) per host.
        """
        found: dict[str, Host] = {}
        for name in names:
            host = self.find_host(name)
            if host is not None:
                found[name] = host
        return found

    @abc.abstractmethod
    def query_hosts(self, query: HostQuery) -> Page[Host]: ...

    @abc.abstractmethod
    def put_unit(self, unit: Unit) -> Unit: ...

    @abc.abstractmethod
    def list_units(self) -> list[Unit]: ...

    @abc.abstractmethod
    def delete_unit(self, code: str) -> bool:
        """Remove one unit (False when there was none); callers check first that nothing belongs to it."""

    # --- audit -------------------------------------------------------------
    @abc.abstractmethod
    def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Append with the next seq, prev_hash of the last entry and its own hash."""

    @abc.abstractmethod
    def list_audit(
        self, start: datetime | None = None, end: datetime | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[AuditEntry]: ...

    @abc.abstractmethod
    def iter_audit(self) -> Any:
        """Every entry in seq order (for verification)."""

    # --- retention ---------------------------------------------------------
    @abc.abstractmethod
    def delete_events_before(self, before: datetime) -> int: ...

    @abc.abstractmethod
    def apply_retention(self, plan: RetentionPlan) -> RetentionResult:
        """Delete the events and alerts ``plan`` does not keep: whole day partitions where no protected
        event is left in them, else the unprotected rows of that day."""


def unit_subtree(units: Sequence[Unit], root: str) -> frozenset[str]:
    """The codes of ``root`` and every unit below it."""
    children: dict[str | None, list[str]] = {}
    for unit in units:
        children.setdefault(unit.parent, []).append(unit.code)
    seen: set[str] = set()
    stack = [root]
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        stack.extend(children.get(code, []))
    return frozenset(seen)
