"""Pieces both stores share, so SQLite and OpenSearch answer the same question the same way.

Cursors are opaque to callers (base64url of a small JSON list) but both stores
encode the same thing in them: the sort values of the last row of the page and
a tie-breaker, so paging is keyset-based (``search_after`` / row values) and
never ``OFFSET``: page 1,000 costs what page 1 costs.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

from soclite.errors import InvalidCursor, StoreError
from soclite.models import (
    AGENT_ID,
    EVENT_ID,
    HOST_NAME,
    LOGSOURCE_CATEGORY,
    LOGSOURCE_PRODUCT,
    LOGSOURCE_SERVICE,
    RAW,
    RECEIVED,
    TIMESTAMP,
    UNIT,
    Alert,
    Event,
    Host,
    isoformat,
    parse_timestamp,
)
from soclite.store.base import HOST_FIELDS, HistogramBucket

if TYPE_CHECKING:
    from soclite.store.base import AlertRepeat, FieldChange, HostChange

#: sort rank of a severity bucket (higher sorts first when descending).
SEVERITY_RANK = {"high": 3, "medium": 2, "low": 1}

#: group_by values count_alerts/alert_histogram accept (the Store contract's list).
#: the columns/fields each alert sort orders by (the id breaks ties in each store).
ALERT_SORT: dict[str, tuple[str, ...]] = {
    "last_seen": ("last_seen",),
    "first_seen": ("first_seen",),
    "count": ("count",),
    "severity": ("sev_rank", "last_seen"),
}
ALERT_GROUPS = ("severity", "level", "status", "rule_id", "host", "unit", "assignee", "tags", "user", "source_ip")

#: the matched event's fields that give an alert's ``user`` and ``source_ip`` groups, first present wins
#: (ECS names, then the Windows/Sysmon native ones the Sigma rules match on).
ALERT_EVENT_GROUPS: dict[str, tuple[str, ...]] = {
    "user": ("user.name", "TargetUserName", "User", "SubjectUserName"),
    "source_ip": ("source.ip", "IpAddress", "SourceIp", "src_ip"),
}


def alert_group_value(alert: Alert, group: str) -> str | None:
    """The alert's ``user`` or ``source_ip`` (from its matched event), None when the event has none."""
    for name in ALERT_EVENT_GROUPS[group]:
        value = alert.event.get(name)
        if value not in (None, "", "-"):
            return str(value)
    return None

#: event fields the free-text ``q`` looks into (besides the raw line), in both stores.
EVENT_TEXT_FIELDS = (
    RAW,
    HOST_NAME,
    "message",
    "host.ip",
    "source.ip",
    "destination.ip",
    "user.name",
    "process.command_line",
    "process.executable",
    "CommandLine",
    "Image",
    "ParentImage",
    "TargetFilename",
    "url.original",
    "dns.question.name",
    "file.hash.sha256",
    "event.action",
    "Computer",
    "TargetUserName",
)


def encode_cursor(values: Iterable[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode("ascii").rstrip("=")


#: SQLite binds 64-bit signed integers; a larger one in a cursor would be an OverflowError (a 500).
_INT64 = (-(2**63), 2**63 - 1)


def decode_cursor(cursor: str, length: int, kinds: tuple[type, ...] | None = None) -> list[Any]:
    """Decode a cursor made by :func:`encode_cursor`; a tampered one is a clear error, not a crash.

    Every value must be a scalar a database can bind (a string, a 64-bit integer, a finite
    float or null) and, when ``kinds`` is given, of that position's type: a cursor is
    caller input, and an object or ``1e308`` where a seq belongs must be the caller's error.
    """
    if len(cursor) > 2000:
        raise InvalidCursor("invalid page cursor (too long)")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, TypeError) as exc:
        raise InvalidCursor(f"invalid page cursor {cursor!r}") from exc
    if not isinstance(values, list) or len(values) != length:
        raise InvalidCursor(f"invalid page cursor {cursor!r} (made for another sort order?)")
    for i, value in enumerate(values):
        ok = value is None or isinstance(value, str) or (
            isinstance(value, int) and not isinstance(value, bool) and _INT64[0] <= value <= _INT64[1]
        ) or (isinstance(value, float) and math.isfinite(value))
        if ok and kinds is not None and not isinstance(value, kinds[i]):
            ok = False
        if not ok:
            raise InvalidCursor(f"invalid page cursor {cursor!r} (value out of range or of the wrong type)")
    return values


def check_group(group_by: str | None) -> None:
    if group_by is not None and group_by not in ALERT_GROUPS:
        raise StoreError(f"cannot group alerts by {group_by!r}; known: {', '.join(ALERT_GROUPS)}")


def event_time(event: Event) -> datetime:
    """The event's @timestamp; an event without a usable one is filed at its receive time (or now).

    Refusing it would make the whole batch fail forever on retry, so it is kept, at the best time known.
    """
    for key in (TIMESTAMP, RECEIVED):
        value = event.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, str) and value:
            try:
                return parse_timestamp(value)
            except ValueError:
                continue
    return datetime.now(UTC)


def event_host(event: Event) -> str | None:
    """The host key of an event: host.name (or Windows Computer), lower-cased like Host.id."""
    value = event.get(HOST_NAME) or event.get("Computer")
    return str(value).lower() if value else None


def event_text(event: Event) -> str:
    """The text ``q`` searches: raw line and main fields, case-folded."""
    parts = [str(event[key]) for key in EVENT_TEXT_FIELDS if event.get(key) is not None]
    return "\n".join(parts).casefold()


#: bound of an alert's search text (OpenSearch keeps it as one keyword: 32,766 bytes at most).
ALERT_TEXT_MAX = 8000


def alert_text(alert: Alert) -> str:
    """What ``q`` on alerts searches, case-folded: the alert's own fields, then its matched event's.

    The matched event's fields (IPs, user names, hashes, command lines, paths: :data:`EVENT_TEXT_FIELDS`)
    are indexed with the alert at write time, so ``q=203.0.113.45`` finds the alert without a join
    to the event store (which may lag behind detection, and keeps events for less time than alerts).
    """
    own = "\n".join(
        str(v) for v in (alert.rule_title, alert.rule_id, alert.host, alert.description, alert.id) if v
    ).casefold()
    matched = event_text(alert.event) if alert.event else ""
    return merge_text(own, [matched] if matched else [])


def merge_text(text: str, more: Sequence[str]) -> str:
    """``text`` with each of ``more`` not yet in it appended (a repeat's new matched events), bounded."""
    out = text
    for part in more:
        part = part.casefold()
        if part and part not in out and len(out) < ALERT_TEXT_MAX:
            out = f"{out}\n{part}" if out else part
    return out[:ALERT_TEXT_MAX]


def event_id(event: Event) -> str:
    value = event.get(EVENT_ID)
    if not value:
        raise StoreError("event without event.id cannot be stored idempotently (set at ingest)")
    return str(value)


def iso(ts: datetime | None) -> str | None:
    return isoformat(ts) if ts is not None else None


def bucket_start(key: str, interval: str) -> datetime:
    """The UTC start of a histogram bucket from its ISO prefix (YYYY-MM, YYYY-MM-DD, YYYY-MM-DDTHH or ...THH:MM)."""
    if interval == "minute":
        return datetime.strptime(key[:16], "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    if interval == "month":
        return datetime.strptime(key[:7], "%Y-%m").replace(tzinfo=UTC)
    if interval == "day":
        return datetime.strptime(key[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    return datetime.strptime(key[:13], "%Y-%m-%dT%H").replace(tzinfo=UTC)


def apply_repeat(alert: Alert, repeat: AlertRepeat) -> bool:
    """Apply new matches to ``alert`` in place (detection fields only); False for a replay (no change).

    Both stores call this on the alert they just read inside their atomic section, so the rule is one.
    Replays (a batch re-read after a crash before the journal commit) are recognised by the alert's
    journal watermark when both sides have offsets: exact however many matches the alert has. Without
    offsets the event-id check remains, exact only while the alert holds fewer than max_event_ids.
    """
    if repeat.count < 0:
        raise StoreError(f"alert {alert.id}: a repeat cannot decrease the count ({repeat.count})")
    if len(repeat.offsets) > repeat.count:
        raise StoreError(
            f"alert {alert.id}: a repeat has {len(repeat.offsets)} offsets for {repeat.count} matches"
        )
    mark = alert.last_offset
    added = repeat.count
    if repeat.offsets and mark is not None:
        added -= sum(1 for offset in repeat.offsets if offset <= mark)
        if added == 0:
            return False  # every match is at or below the watermark: already counted
    elif repeat.event_ids and all(e in alert.event_ids for e in repeat.event_ids):
        return False  # already counted: a batch replayed after a crash before the journal commit
    alert.count += added
    if repeat.offsets:
        alert.last_offset = max(mark if mark is not None else 0, max(repeat.offsets))
    alert.last_seen = max(alert.last_seen, repeat.last_seen)
    alert.first_seen = min(alert.first_seen, repeat.first_seen)
    alert.updated_at = max(alert.updated_at, repeat.updated_at)
    for event_id in repeat.event_ids:
        if len(alert.event_ids) >= repeat.max_event_ids:
            break
        if event_id not in alert.event_ids:
            alert.event_ids.append(event_id)
    return True


def apply_fields(alert: Alert, change: FieldChange, allowed: frozenset[str]) -> Alert | None:
    """The alert with the triage ``change`` applied (validated like a new Alert), None if there is none.

    The input is untouched.
    """
    fields: Mapping[str, Any] = change(alert.model_copy(deep=True)) if callable(change) else change
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise StoreError(
            f"alert {alert.id}: update_alert_fields cannot change {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    if not fields:
        return None
    data = alert.model_dump()
    data.update(fields)
    try:
        return Alert.model_validate(data)
    except ValueError as exc:
        raise StoreError(f"alert {alert.id}: invalid field values {dict(fields)!r}: {exc}") from exc


def apply_host_changes(host: Host, change: HostChange) -> Host | None:
    """The host with ``change`` applied (validated like a new Host), None if nothing changes.

    The input is untouched. Only the fields named in the change are taken from it: whatever else the
    host holds is the caller's fresh copy, read in the same atomic section.
    """
    fields: Mapping[str, Any] = change(host.model_copy(deep=True)) if callable(change) else change
    unknown = sorted(set(fields) - HOST_FIELDS)
    if unknown:
        raise StoreError(
            f"host {host.id}: update_host cannot change {', '.join(unknown)}; allowed: {', '.join(sorted(HOST_FIELDS))}"
        )
    if not fields:
        return None
    data = host.model_dump()
    data.update(fields)
    try:
        new = Host.model_validate(data)
    except ValueError as exc:
        raise StoreError(f"host {host.id}: invalid field values {dict(fields)!r}: {exc}") from exc
    return None if new == host else new


def touch_host(host: Host, seen: datetime) -> Host | None:
    """The host with ``last_seen`` raised to ``seen``, None when it already is that recent."""
    if host.last_seen is not None and host.last_seen >= seen:
        return None
    return host.model_copy(update={"last_seen": seen})


#: the width of the ISO prefix that names a bucket of each interval.
BUCKET_PREFIX = {"hour": 13, "day": 10, "month": 7}
#: the ISO prefix of UTC minute buckets (regrouped into local days in zones with half-hour offsets).
MINUTE_PREFIX = 16


def local_bucket(start_utc: datetime, interval: str, tz: ZoneInfo) -> datetime:
    """The local bucket (a midnight of ``tz``, aware; an hour stays itself) that ``start_utc`` falls in."""
    if interval == "hour":
        return start_utc.astimezone(tz)
    day = start_utc.astimezone(tz).date()
    if interval == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def regroup_local(
    rows: Iterable[tuple[datetime, str, int]], interval: str, tz: ZoneInfo
) -> list[HistogramBucket]:
    """Counts of fine UTC buckets (hour or minute starts) summed into local days or months of ``tz``.

    A fine bucket never straddles a local midnight when the zone's offsets are whole hours (hour
    buckets) or whole minutes (minute buckets): see :func:`soclite.sitetime.whole_hour_offsets`.
    """
    buckets: dict[datetime, dict[str, int]] = {}
    for start, key, n in rows:
        counts = buckets.setdefault(local_bucket(start, interval, tz), {})
        counts[key] = counts.get(key, 0) + n
    return [HistogramBucket(start=k, counts=v) for k, v in sorted(buckets.items())]

__all__ = [
    "AGENT_ID",
    "ALERT_EVENT_GROUPS",
    "ALERT_GROUPS",
    "ALERT_TEXT_MAX",
    "BUCKET_PREFIX",
    "EVENT_TEXT_FIELDS",
    "LOGSOURCE_CATEGORY",
    "LOGSOURCE_PRODUCT",
    "LOGSOURCE_SERVICE",
    "MINUTE_PREFIX",
    "SEVERITY_RANK",
    "UNIT",
    "alert_group_value",
    "alert_text",
    "apply_fields",
    "apply_host_changes",
    "apply_repeat",
    "bucket_start",
    "check_group",
    "decode_cursor",
    "encode_cursor",
    "event_host",
    "event_id",
    "event_text",
    "event_time",
    "iso",
    "local_bucket",
    "merge_text",
    "regroup_local",
    "touch_host",
]
