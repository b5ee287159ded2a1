"""Detection health per rule, for the rules page, ``/api/v1/rules`` and the monthly report.

It joins two sources, which is why it sits above both stages rather than in either:

* the engine's health (:mod:`soclite.correlator.health`): hits, suppressed matches and evaluation
  errors since the detection process started, when a rule last fired, the fields it names that no
  event of its log source carried, and the rules that failed to load;
* the store's alerts in a period (``count_alerts`` only, so it reconciles on both stores): how many
  alerts each rule raised, how many analysts closed, and how many of those as false positives.

A rule is in zero or more of these states:

* ``never_fired`` — no alert of it in the store at all and no hit since the engine started;
* ``noisy`` — at least :data:`NOISY_ALERTS` alerts in the period, or analysts closed at least
  :data:`FP_MIN_CLOSED` of its alerts in the period and :data:`FP_RATIO` or more of those as false
  positives;
* ``broken`` — it did not load, it raised on events, or it names a field that no event of its log
  source carried (as written it cannot match).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from soclite.correlator.engine import Engine
from soclite.correlator.health import HealthSnapshot
from soclite.models import AlertStatus
from soclite.store.base import AlertQuery, Store

HealthState = Literal["never_fired", "noisy", "broken"]
STATES: tuple[HealthState, ...] = ("never_fired", "noisy", "broken")
#: alerts in the period from which a rule is noisy
NOISY_ALERTS = 100
#: false-positive share of the closed alerts from which a rule is noisy, and the closed alerts it needs
FP_RATIO = 0.5
FP_MIN_CLOSED = 5


@dataclass
class RuleHealthRow:
    id: str
    title: str
    level: str
    kind: str
    enabled: bool
    logsource: dict[str, str]
    source: str
    #: since the detection process started
    hits: int = 0
    suppressed: int = 0
    errors: int = 0
    #: the later of the engine's last hit and the newest alert's last_seen
    last_fired: datetime | None = None
    #: in the period
    alerts: int = 0
    closed: int = 0
    false_positives: int = 0
    false_positive_ratio: float | None = None
    #: fields the detection names that no event of its log source carried (None: not known yet)
    unseen_fields: list[str] | None = None
    source_seen: bool = False
    load_error: str | None = None
    states: list[HealthState] = field(default_factory=list)


def _epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def assess(
    store: Store,
    engine: Engine,
    snapshot: HealthSnapshot | None,
    start: datetime,
    end: datetime,
    units: frozenset[str] | None = None,
) -> list[RuleHealthRow]:
    """Every rule's health for the period [start, end) within ``units`` (None: the whole province).

    ``snapshot``: the detection process's health file when it runs apart (None: ``engine`` is the
    one that sees the events).
    """
    health = engine.assess(snapshot)
    period = AlertQuery(start=start, end=end, units=units)
    alerts = store.count_alerts(period, group_by="rule_id")
    closed_query = AlertQuery(start=start, end=end, units=units,
                              status=[AlertStatus.RESOLVED.value, AlertStatus.FALSE_POSITIVE.value])  # fmt: skip
    closed = store.count_alerts(closed_query, group_by="rule_id")
    false_positives = store.count_alerts(
        AlertQuery(start=start, end=end, units=units, status=[AlertStatus.FALSE_POSITIVE.value]), group_by="rule_id"
    )
    ever = store.count_alerts(AlertQuery(units=units), group_by="rule_id")
    rows: list[RuleHealthRow] = []
    for info in engine.rules_info():
        h = health.get(info.id)
        row = RuleHealthRow(info.id, info.title, info.level, info.kind, info.enabled, dict(info.logsource), info.source)
        if h is not None:
            row.hits, row.suppressed, row.errors = h.hits, h.suppressed, h.errors
            row.last_fired, row.unseen_fields, row.source_seen = _epoch(h.last_fired), h.unseen_fields, h.source_seen
        row.alerts, row.closed, row.false_positives = alerts.get(info.id, 0), closed.get(info.id, 0), false_positives.get(info.id, 0)
        if row.closed:
            row.false_positive_ratio = round(row.false_positives / row.closed, 3)
        if ever.get(info.id):
            newest = store.query_alerts(AlertQuery(units=units, rule_id=info.id, limit=1)).items
            if newest and (row.last_fired is None or newest[0].last_seen > row.last_fired):
                row.last_fired = newest[0].last_seen
        if not ever.get(info.id) and not row.hits:
            row.states.append("never_fired")
        if row.alerts >= NOISY_ALERTS or (
            row.closed >= FP_MIN_CLOSED and (row.false_positive_ratio or 0.0) >= FP_RATIO
        ):
            row.states.append("noisy")
        if row.errors or row.unseen_fields:
            row.states.append("broken")
        rows.append(row)
    for failure in engine.failures:
        rows.append(RuleHealthRow(
            failure.rule_id or failure.source, failure.title or failure.source, "", "failed", False, {},
            failure.source, load_error=failure.reason, states=["never_fired", "broken"],
        ))  # fmt: skip
    return rows


def rules_needing_tuning(
    store: Store,
    engine: Engine,
    snapshot: HealthSnapshot | None,
    start: datetime,
    end: datetime,
    units: frozenset[str] | None = None,
    limit: int = 20,
) -> list[RuleHealthRow]:
    """The noisy and broken rules of the period, worst first (false-positive share, then alerts)."""
    rows = [r for r in assess(store, engine, snapshot, start, end, units) if "noisy" in r.states or "broken" in r.states]
    rows.sort(key=lambda r: ("noisy" not in r.states, -(r.false_positive_ratio or 0.0), -r.alerts, r.title))
    return rows[:limit]
