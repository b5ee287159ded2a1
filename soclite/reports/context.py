"""Build the numbers of a report, ONLY through the Store contract.

Every figure comes from ``count_alerts`` / ``alert_histogram`` / ``query_alerts`` /
``query_hosts`` / ``list_audit`` with the period's UTC bounds and the caller's
unit scope, so the same report reconciles on the SQLite and the OpenSearch
store. Counts that the contract can aggregate (severity, status, tags, unit,
rule, host) use ``count_alerts``; figures that need each alert's timestamps
(SLA, mean times, malware) come from one paged pass over ``query_alerts``.
An alert belongs to the period of its ``last_seen`` (the store's semantics for
``AlertQuery.start/end``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from soclite.config import Settings
from soclite.control.isolations import IsolationCommand
from soclite.control.rule_health import RuleHealthRow, rules_needing_tuning
from soclite.correlator.engine import Engine
from soclite.correlator.health import HEALTH_FILE
from soclite.correlator.health import read as read_health
from soclite.models import CLOSED_STATUSES, Alert, AlertStatus, IsolationState, Severity
from soclite.reports.annual import AnnualFigures
from soclite.reports.i18n import TACTICS
from soclite.reports.periods import Period, timezone_of
from soclite.reports.trends import TrendFlag
from soclite.store.base import AlertQuery, HistogramBucket, HostQuery, Store

#: Page size of the pass over alerts; both stores page with an opaque cursor.
PAGE_SIZE = 1000
TOP_N = 10
INCIDENT_ROWS = 30


@dataclass
class AlertRow:
    """One alert as the annex lists it (kept small: a month can hold 70,000)."""

    id: str
    first_seen: datetime
    last_seen: datetime
    severity: str
    level: str
    rule_id: str
    rule_title: str
    host: str
    unit: str
    status: str
    count: int
    late: bool


@dataclass
class Handling:
    handled: int = 0  # resolved
    false_positive: int = 0
    unhandled: int = 0  # new / acknowledged / in progress
    on_time: int = 0
    late: int = 0
    within_sla_open: int = 0  # open, deadline not yet passed
    mtta_minutes: float | None = None
    mttr_minutes: float | None = None


@dataclass
class Scope:
    servers: int = 0
    workstations: int = 0
    with_agent: int = 0
    agents_active: int = 0
    isolated_now: int = 0
    national_enabled: bool = False
    national_state: str | None = None


@dataclass
class Intel:
    """Exchange with the national system; ``None`` = no source of data in this process."""

    #: indicators that arrived from the national system during the period (their receipt times)
    iocs_received: int | None = None
    #: national indicators held now (all lists)
    iocs_held: int | None = None
    #: alerts/incidents delivered to the national system during the period (time of delivery)
    iocs_sent: int | None = None
    #: time the connector was down within the period (up to the report's time), from its recorded history
    downtime_minutes: float | None = None
    outages: int | None = None


@dataclass
class ReportContext:
    period: Period
    previous: Period
    units: frozenset[str] | None
    scope_unit: str | None
    scope_name: str | None
    generated_at: datetime
    store_kind: str
    total: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    by_tactic: list[tuple[str, int]] = field(default_factory=list)
    untagged: int = 0
    by_unit: list[tuple[str, str, int]] = field(default_factory=list)
    top_rules: list[tuple[str, str, int]] = field(default_factory=list)
    top_hosts: list[tuple[str, int]] = field(default_factory=list)
    all_rules: list[tuple[str, str, int]] = field(default_factory=list)
    all_hosts: list[tuple[str, int]] = field(default_factory=list)
    handling: Handling = field(default_factory=Handling)
    incidents: list[AlertRow] = field(default_factory=list)
    malware: int = 0
    malware_rows: list[AlertRow] = field(default_factory=list)
    #: isolations confirmed by the agent (the ruleset it applied) during the period
    isolations: int = 0
    #: distinct hosts behind ``isolations``
    hosts_isolated: int = 0
    #: isolate commands sent to agents during the period (confirmed or not)
    isolation_commands: int = 0
    #: isolation requests recorded in the audit trail (by people or playbooks)
    isolation_requests: int = 0
    scope: Scope = field(default_factory=Scope)
    intel: Intel = field(default_factory=Intel)
    previous_total: int = 0
    previous_by_severity: dict[str, int] = field(default_factory=dict)
    histogram: list[HistogramBucket] = field(default_factory=list)
    histogram_interval: str = "day"
    rows: list[AlertRow] = field(default_factory=list)
    sla_minutes: dict[str, int] = field(default_factory=dict)
    #: noisy and broken rules (soclite.control.rule_health); None when no engine runs in this process
    rules_tuning: list[RuleHealthRow] | None = None
    #: the annual report's (Form 08) own figures; None for a periodic report
    annual: AnnualFigures | None = None
    #: hours whose alert volume rose beyond its seasonal baseline (statistical trend detection); None = off
    trends: list[TrendFlag] | None = None
    #: the detector's k (median + k x MAD), printed with the section
    trends_k: float = 0.0

    @property
    def high(self) -> int:
        return self.by_severity.get(Severity.HIGH.value, 0)

    @property
    def medium_low(self) -> int:
        return self.by_severity.get(Severity.MEDIUM.value, 0) + self.by_severity.get(Severity.LOW.value, 0)

    @property
    def closed(self) -> int:
        return self.handling.handled + self.handling.false_positive

    def query_parameters(self) -> dict[str, Any]:
        """What was asked of the store, archived with the report so anyone can re-run it."""
        return {
            "period": self.period.code,
            "timezone": self.period.tz,
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "previous_start": self.previous.start.isoformat(),
            "previous_end": self.previous.end.isoformat(),
            "units": sorted(self.units) if self.units is not None else None,
            "scope_unit": self.scope_unit,
            "store": self.store_kind,
            "alert_time_field": "last_seen",
            "sla_minutes": self.sla_minutes,
            "as_of": self.generated_at.isoformat(),
        }

    def numbers(self) -> dict[str, Any]:
        """Every figure, flat, for the CSV summary and for tests."""
        out: dict[str, Any] = {
            "total": self.total,
            "high": self.high,
            "medium": self.by_severity.get("medium", 0),
            "low": self.by_severity.get("low", 0),
            "medium_low": self.medium_low,
            "malware": self.malware,
            "isolations": self.isolations,
            "hosts_isolated": self.hosts_isolated,
            "isolation_commands": self.isolation_commands,
            "isolation_requests": self.isolation_requests,
            "previous_total": self.previous_total,
        }
        out.update({f"handling.{k}": v for k, v in asdict(self.handling).items()})
        out.update({f"scope.{k}": v for k, v in asdict(self.scope).items()})
        out.update({f"intel.{k}": v for k, v in asdict(self.intel).items()})
        if self.annual is not None:
            out.update(self.annual.numbers())
        if self.trends is not None:
            out["trends.flags"] = len(self.trends)
        # minutes to two decimals (the document shows one; a short outage of seconds stays visible), not
        # float noise such as 30.463398499999997; a flag as 0/1 so a spreadsheet can sum it
        return {
            k: int(v) if isinstance(v, bool) else round(v, 2) if isinstance(v, float) else v for k, v in out.items()
        }


def iter_alerts(store: Store, query: AlertQuery) -> Iterator[Alert]:
    """Every alert matching ``query``, page by page."""
    cursor: str | None = None
    while True:
        query.cursor = cursor
        page = store.query_alerts(query)
        yield from page.items
        if not page.next or not page.items:
            return
        cursor = page.next


def local_histogram(local: list[HistogramBucket], period: Period, interval: str) -> list[HistogramBucket]:
    """The store's local-day (or month) buckets with every bucket of the period present (empty ones too).

    The store buckets in the site's zone (``alert_histogram(..., tz=)``): a local day in ICT starts
    at 17:00 UTC, so UTC buckets would put seven hours of each day on the previous day's bar.
    """
    zone = timezone_of(period.tz)

    def key(ts: datetime) -> date:
        day = ts.astimezone(zone).date()
        return day if interval == "day" else day.replace(day=1)

    buckets: dict[date, dict[str, int]] = {}
    day = period.first_day
    while day < period.end_day:
        buckets.setdefault(key(datetime(day.year, day.month, day.day, 12, tzinfo=zone)), {})
        day += timedelta(days=1)
    for bucket in local:
        counts = buckets.setdefault(key(bucket.start), {})
        for name, n in bucket.counts.items():
            counts[name] = counts.get(name, 0) + n
    return [
        HistogramBucket(start=datetime(k.year, k.month, k.day, tzinfo=zone), counts=v) for k, v in sorted(buckets.items())
    ]


def _minutes(delta_seconds: float) -> float:
    return delta_seconds / 60.0


def _is_malware(alert: Alert) -> bool:
    category = str(alert.event.get("logsource.category", "")).lower()
    if "eicar" in alert.rule_title.lower() or "eicar" in str(alert.event.get("Signature", "")).lower():
        # The EICAR file is how people test that the antivirus works: a test, not a malware detection.
        return False
    return category == "antivirus" or any("malware" in tag.lower() for tag in alert.tags)


def _sorted_counts(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: (-kv[1], kv[0]))


def build_context(
    store: Store,
    settings: Settings,
    period: Period,
    *,
    units: frozenset[str] | None = None,
    scope_unit: str | None = None,
    now: datetime | None = None,
    outbox: Any = None,
    engine: Any = None,
    isolation_commands: list[IsolationCommand] | None = None,
) -> ReportContext:
    """All the figures of one report for ``period`` within ``units`` (None = the whole province).

    ``isolation_commands``: the period's isolate commands from control.db
    (:func:`soclite.control.isolations.isolation_commands_between`); None = not known here (0 confirmed).
    """
    generated = (now or datetime.now(UTC)).astimezone(UTC)
    unit_names = {u.code: u.name for u in store.list_units()}
    sla = settings.sla_minutes.model_dump()
    ctx = ReportContext(
        period=period,
        previous=period.previous(),
        units=units,
        scope_unit=scope_unit,
        scope_name=unit_names.get(scope_unit, scope_unit) if scope_unit else None,
        generated_at=generated,
        store_kind=store.kind,
        sla_minutes=sla,
    )

    def q(**extra: Any) -> AlertQuery:
        return AlertQuery(start=period.start, end=period.end, units=units, **extra)

    ctx.total = store.count_alerts(q()).get("total", 0)
    by_sev = store.count_alerts(q(), group_by="severity")
    ctx.by_severity = {s.value: by_sev.get(s.value, 0) for s in Severity}
    ctx.by_status = store.count_alerts(q(), group_by="status")
    tags = store.count_alerts(q(), group_by="tags")
    ctx.by_tactic = _sorted_counts({name: tags.get(f"attack.{name}", 0) for name in TACTICS})
    ctx.by_unit = [
        (code, unit_names.get(code, code) if code else "", n)
        for code, n in _sorted_counts(store.count_alerts(q(), group_by="unit"))
    ]
    rule_counts = _sorted_counts(store.count_alerts(q(), group_by="rule_id"))
    ctx.all_hosts = _sorted_counts(store.count_alerts(q(), group_by="host"))
    ctx.top_hosts = ctx.all_hosts[:TOP_N]

    prev = AlertQuery(start=ctx.previous.start, end=ctx.previous.end, units=units)
    ctx.previous_total = store.count_alerts(prev).get("total", 0)
    prev_sev = store.count_alerts(prev, group_by="severity")
    ctx.previous_by_severity = {s.value: prev_sev.get(s.value, 0) for s in Severity}

    ctx.histogram_interval = "day" if period.days <= 92 else "month"
    interval: Literal["day", "month"] = "day" if ctx.histogram_interval == "day" else "month"
    buckets = store.alert_histogram(q(), interval, group_by="severity", tz=timezone_of(period.tz))
    ctx.histogram = local_histogram(buckets, period, ctx.histogram_interval)

    _pass_over_alerts(store, q(sort="first_seen", order="asc", limit=PAGE_SIZE), ctx, sla, generated)
    titles = {row.rule_id: row.rule_title for row in ctx.rows}
    ctx.all_rules = [(rule, titles.get(rule, rule), n) for rule, n in rule_counts]
    ctx.top_rules = ctx.all_rules[:TOP_N]

    host_units = _scope(store, settings, period, units, ctx, generated)
    ctx.isolation_requests = _isolation_requests(store, period, units)
    _isolations(isolation_commands or [], period, units, host_units, ctx)
    ctx.intel = _intel(outbox, engine, period, settings, generated)
    ctx.rules_tuning = _rules_tuning(store, engine, settings, period, units)
    return ctx


def _rules_tuning(
    store: Store, engine: Any, settings: Settings, period: Period, units: frozenset[str] | None
) -> list[RuleHealthRow] | None:
    """The rules needing tuning in the period, when an engine is loaded here (else "no data")."""
    if not isinstance(engine, Engine):
        return None
    # The detection process writes its health beside its state; without the file, this engine's own.
    snapshot = read_health(Path(settings.data_dir) / "correlator" / HEALTH_FILE)
    return rules_needing_tuning(store, engine, snapshot, period.start, period.end, units, limit=TOP_N)


def _pass_over_alerts(
    store: Store, query: AlertQuery, ctx: ReportContext, sla: dict[str, int], now: datetime
) -> None:
    ack_total = 0.0
    ack_n = 0
    res_total = 0.0
    res_n = 0
    tactic_names = {f"attack.{name}" for name in TACTICS}
    h = ctx.handling
    for alert in iter_alerts(store, query):
        deadline_minutes = sla.get(alert.severity.value, sla["low"])
        closed = alert.status in CLOSED_STATUSES
        if alert.status == AlertStatus.RESOLVED:
            h.handled += 1
        elif alert.status == AlertStatus.FALSE_POSITIVE:
            h.false_positive += 1
        else:
            h.unhandled += 1
        late = False
        if closed and alert.closed_at is not None:
            took = _minutes((alert.closed_at - alert.first_seen).total_seconds())
            res_total += took
            res_n += 1
            late = took > deadline_minutes
        elif closed:  # closed without a time: cannot be judged late
            pass
        else:
            late = _minutes((now - alert.first_seen).total_seconds()) > deadline_minutes
        if late:
            h.late += 1
        elif closed:
            h.on_time += 1
        else:
            h.within_sla_open += 1
        responded = [t for t in (alert.acknowledged_at, alert.closed_at) if t is not None]
        if responded:
            ack_total += _minutes((min(responded) - alert.first_seen).total_seconds())
            ack_n += 1
        if not any(tag.lower() in tactic_names for tag in alert.tags):
            ctx.untagged += 1
        row = AlertRow(
            id=alert.id,
            first_seen=alert.first_seen,
            last_seen=alert.last_seen,
            severity=alert.severity.value,
            level=alert.level.value,
            rule_id=alert.rule_id,
            rule_title=alert.rule_title,
            host=alert.host or "",
            unit=alert.unit or "",
            status=alert.status.value,
            count=alert.count,
            late=late,
        )
        ctx.rows.append(row)
        if _is_malware(alert):
            ctx.malware += 1
            ctx.malware_rows.append(row)
        if alert.severity == Severity.HIGH:
            ctx.incidents.append(row)
    h.mtta_minutes = ack_total / ack_n if ack_n else None
    h.mttr_minutes = res_total / res_n if res_n else None


def _scope(
    store: Store, settings: Settings, period: Period, units: frozenset[str] | None, ctx: ReportContext, now: datetime
) -> dict[str, str | None]:
    """Fill ``ctx.scope``; return the unit of every host in scope (id → unit)."""
    s = ctx.scope
    host_units: dict[str, str | None] = {}
    s.servers = store.query_hosts(HostQuery(units=units, type="server", limit=1)).total
    s.workstations = store.query_hosts(HostQuery(units=units, type="workstation", limit=1)).total
    cursor: str | None = None
    while True:
        page = store.query_hosts(HostQuery(units=units, limit=500, cursor=cursor))
        for host in page.items:
            host_units[host.id] = host.unit
            if host.agent_id:
                s.with_agent += 1
                # active in the period: reported at or after the period start
                if host.last_seen is not None and host.last_seen >= period.start:
                    s.agents_active += 1
            if host.isolation == IsolationState.ISOLATED:
                s.isolated_now += 1
        if not page.next or not page.items:
            break
        cursor = page.next
    s.national_enabled = settings.national.enabled
    return host_units


def _isolations(
    commands: list[IsolationCommand], period: Period, units: frozenset[str] | None,
    host_units: dict[str, str | None], ctx: ReportContext,
) -> None:
    """Commands sent in the period vs. isolations the agents confirmed in it, for hosts in scope.

    A unit-scoped report counts the commands of its hosts only; a host unknown to the store counts
    in the province-wide report alone.
    """
    confirmed_hosts: set[str] = set()
    for command in commands:
        if units is not None and host_units.get(command.host_id) not in units:
            continue
        if period.start <= command.created_at < period.end:
            ctx.isolation_commands += 1
        done = command.completed_at
        if command.confirmed and done is not None and period.start <= done < period.end:
            ctx.isolations += 1
            confirmed_hosts.add(command.host_id)
    ctx.hosts_isolated = len(confirmed_hosts)


def _isolation_requests(store: Store, period: Period, units: frozenset[str] | None) -> int:
    """Isolation requests recorded in the hash-chained audit during the period (the audit is in the store contract)."""
    count = 0
    cursor: str | None = None
    while True:
        page = store.list_audit(start=period.start, end=period.end, limit=500, cursor=cursor)
        for entry in page.items:
            action = entry.action.lower()
            if "isolat" in action and "release" not in action and (units is None or entry.unit in units):
                count += 1
        if not page.next or not page.items:
            return count
        cursor = page.next


def _intel(outbox: Any, engine: Any, period: Period, settings: Settings, now: datetime) -> Intel:
    """IoCs received/sent and connector downtime, from the playbook outbox when it runs in this process.

    Probed by duck typing (``playbooks.outbox.Outbox``: ``iocs_received_between``, ``ioc_lists``/
    ``ioc_values``, ``succeeded_between``, ``connector_downtime``): a report rendered from the CLI
    without an outbox says "no data" rather than a made-up zero. Every figure is computed from what
    the outbox recorded at the time (receipt times, delivery times, up/down transitions), so a report
    on a past period does not change as the current state does.
    """
    intel = Intel()
    if outbox is not None and hasattr(outbox, "iocs_received_between"):
        try:
            intel.iocs_received = int(outbox.iocs_received_between(period.start, period.end, "national:"))
        except Exception:  # a broken optional source must not stop the report
            intel.iocs_received = None
    if outbox is not None and hasattr(outbox, "ioc_lists") and hasattr(outbox, "ioc_values"):
        try:
            names = [name for name in outbox.ioc_lists() if str(name).startswith("national:")]
            intel.iocs_held = sum(len(outbox.ioc_values(name)) for name in names)
        except Exception:
            intel.iocs_held = None
    elif engine is not None and hasattr(getattr(engine, "iocs", None), "lists"):
        try:
            lists: dict[str, int] = engine.iocs.lists()
            intel.iocs_held = sum(n for name, n in lists.items() if name.startswith("national:"))
        except Exception:
            intel.iocs_held = None
    if outbox is not None and hasattr(outbox, "succeeded_between"):
        try:
            intel.iocs_sent = int(outbox.succeeded_between("national_sync", period.start, period.end))
        except Exception:
            intel.iocs_sent = None
    if outbox is not None and hasattr(outbox, "connector_downtime"):
        try:
            name = settings.national.kind
            if settings.national.enabled or outbox.connector_events(name):
                seconds, outages = outbox.connector_downtime(name, period.start, period.end, now)
                intel.downtime_minutes = seconds / 60.0
                intel.outages = int(outages)
        except Exception:
            intel.downtime_minutes = None
            intel.outages = None
    return intel
