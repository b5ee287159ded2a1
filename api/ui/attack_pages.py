"""The ATT&CK matrix of a period's alerts: tactic columns, one cell per technique seen, with counts.

Counts are alerts (not matches) whose ``last_seen`` falls in the period (local days of the site),
scoped by the viewer's units and an optional unit filter. A technique sits in the tactic columns its
rule names (see :meth:`soclite.attack.Mapping.columns`), so a rule tagged ``persistence`` and T1053
counts under Persistence only. The names come from :mod:`soclite.attack` (the bundled STIX data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from soclite import attack, sitetime
from soclite.api.deps import get_runtime, narrow
from soclite.api.ui.web import login_user, render, scope
from soclite.models import utcnow
from soclite.runtime import Runtime
from soclite.store.base import AlertQuery

router = APIRouter(include_in_schema=False)

DEFAULT_DAYS = 30


@dataclass
class Cell:
    technique: attack.Technique
    count: int = 0
    rules: dict[str, tuple[str, int]] = field(default_factory=dict)  # rule id → (title, alerts)


@dataclass
class Column:
    tactic: attack.Tactic
    cells: list[Cell]

    @property
    def total(self) -> int:
        return sum(c.count for c in self.cells)


def matrix(runtime: Runtime, query: AlertQuery) -> tuple[list[Column], int]:
    """Every Enterprise tactic as a column of the techniques the alerts of ``query`` carry, busiest first;
    and the number of alerts whose rule has no ATT&CK technique."""
    by_rule = runtime.store.count_alerts(query, group_by="rule_id")
    cat = attack.catalog()
    cells: dict[tuple[str, str], Cell] = {}
    untagged = 0
    for rule_id, count in by_rule.items():
        if rule_id == "total" or not count:
            continue
        sample = runtime.store.query_alerts(AlertQuery(rule_id=rule_id, units=query.units, start=query.start,
                                                       end=query.end, limit=1)).items
        if not sample:
            continue
        mapping = attack.from_tags(sample[0].tags)
        if not mapping.techniques:
            untagged += count
            continue
        for tech in mapping.techniques:
            for column in mapping.columns(tech) or ("",):
                cell = cells.setdefault((column, tech.id), Cell(tech))
                cell.count += count
                cell.rules[rule_id] = (sample[0].rule_title, count)
    columns = [Column(t, sorted((c for (col, _), c in cells.items() if col == t.shortname),
                                key=lambda c: (-c.count, c.technique.id))) for t in cat.tactics]
    return columns, untagged


@router.get("/attack")
def attack_matrix(request: Request) -> Response:
    me = login_user(request)
    runtime = get_runtime(request)
    tz = sitetime.zone(runtime.settings.timezone)
    params = request.query_params
    today = utcnow().astimezone(tz).date()
    start = sitetime.parse_bound(params.get("from"), tz, name="from") or \
        sitetime.local_midnight(today - timedelta(days=DEFAULT_DAYS - 1), tz)
    end = sitetime.parse_bound(params.get("to"), tz, end=True, name="to") or \
        sitetime.local_midnight(today + timedelta(days=1), tz)
    unit = params.get("unit", "").strip()
    units = narrow(scope(request, me), unit or None, runtime)
    columns, untagged = matrix(runtime, AlertQuery(start=start, end=end, units=units))
    visible = [u for u in runtime.store.list_units() if scope(request, me) is None or u.code in (scope(request, me) or ())]
    first_day = sitetime.local(start, tz).date()
    last_day = sitetime.local(end - timedelta(milliseconds=1), tz).date()
    return render(request, "attack.html", me=me, columns=columns, untagged=untagged, units=visible, unit=unit,
                  first_day=first_day, last_day=last_day, version=attack.catalog().version,
                  filters={"from": params.get("from", "") or first_day.isoformat(),
                           "to": params.get("to", "") or last_day.isoformat()})
