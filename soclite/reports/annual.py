"""The annual report (Form 08): the information systems' security-level table and the year's figures.

Its year runs 15/12 to 14/12 (``2026-Y`` in :mod:`soclite.reports.periods`). The alert figures are the
periodic report's (:func:`soclite.reports.context.build_context` over that year, from the store); this
module adds what only the annual form has: one row per information system of the inventory (name,
owner, operator, proposed level, approval status and decision, security regulation, expected approval
date, deployment state, expected completion, review done) and the year's incidents with how their legal
deadlines were met (from control.db). The columns follow the issue's summary of Decree 331/2026 Art. 35-36
and Form 08 (docs/LEGAL.md: the official form was not found, so its exact layout is not verified).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from soclite.control.incidents import Incidents, deadlines
from soclite.control.systems import InfoSystems
from soclite.db import Database
from soclite.reports.i18n import t
from soclite.reports.periods import Period
from soclite.store.base import Store

#: the columns of the per-system table, in the form's order (each a key of an inventory record)
SYSTEM_COLUMNS: tuple[str, ...] = (
    "name", "owner", "operator", "level", "approval_status", "approval_decision", "security_regulation",
    "expected_approval_date", "deployment_state", "expected_completion", "review_done",
)


@dataclass
class SystemRow:
    """One information system as the form lists it (already in words, not codes)."""

    id: str
    cells: dict[str, str]
    level: int


@dataclass
class AnnualFigures:
    systems: list[SystemRow] = field(default_factory=list)
    #: systems by proposed level, 1..5 (levels with none are 0)
    systems_by_level: dict[int, int] = field(default_factory=dict)
    systems_approved: int = 0
    incidents: int = 0
    incidents_by_severity: dict[str, int] = field(default_factory=dict)
    incidents_national_security: int = 0
    incidents_personal_data: int = 0
    #: initial notices (24 h, or at once where national security is at stake) recorded by their deadline
    initial_notice_on_time: int = 0
    #: 72-hour reports recorded by their deadline
    report_72h_on_time: int = 0
    final_reports: int = 0

    def numbers(self) -> dict[str, int]:
        """Every figure, flat (CSV and tests)."""
        out = {
            "annual.systems": len(self.systems),
            "annual.systems_approved": self.systems_approved,
            "annual.incidents": self.incidents,
            "annual.incidents_national_security": self.incidents_national_security,
            "annual.incidents_personal_data": self.incidents_personal_data,
            "annual.initial_notice_on_time": self.initial_notice_on_time,
            "annual.report_72h_on_time": self.report_72h_on_time,
            "annual.final_reports": self.final_reports,
        }
        out.update({f"annual.systems_level_{level}": n for level, n in sorted(self.systems_by_level.items())})
        out.update({f"annual.incidents_{sev}": n for sev, n in sorted(self.incidents_by_severity.items())})
        return out


def _cell(system: dict[str, Any], key: str, lang: str) -> str:
    value = system.get(key)
    if key == "review_done":
        return t("yes" if value else "no", lang)
    if key in ("approval_status", "deployment_state"):
        return t(f"{key}.{value}", lang) if value else "–"
    if value is None or value == "":
        return "–"
    return str(value)


def build_annual(
    control: Database, store: Store, period: Period, units: frozenset[str] | None, lang: str, now: datetime
) -> AnnualFigures:
    """The Form 08 figures for ``period`` (a ``year``) within ``units`` (None = the whole province)."""
    figures = AnnualFigures(systems_by_level={level: 0 for level in range(1, 6)})
    for system in InfoSystems(control, store).list_systems(units):
        if system.get("deployment_state") == "retired":
            continue  # a system taken out of service before the year is not reported on
        cells = {key: _cell(system, key, lang) for key in SYSTEM_COLUMNS}
        figures.systems.append(SystemRow(system["id"], cells, int(system["level"])))
        figures.systems_by_level[int(system["level"])] += 1
        figures.systems_approved += system.get("approval_status") == "approved"
    incidents = Incidents(control, store).detected_between(period.start, period.end, units)
    figures.incidents = len(incidents)
    severities: Counter[str] = Counter()
    for incident in incidents:
        severities[incident["severity"]] += 1
        figures.incidents_national_security += bool(incident["national_security"])
        figures.incidents_personal_data += bool(incident["personal_data"])
        for deadline in deadlines(incident, now, timedelta(0)):
            if deadline.state != "done":
                continue
            if deadline.name == "initial_notice":
                figures.initial_notice_on_time += 1
            elif deadline.name == "report_72h":
                figures.report_72h_on_time += 1
            elif deadline.name == "final_report":
                figures.final_reports += 1
    figures.incidents_by_severity = {sev: severities.get(sev, 0) for sev in ("serious", "high", "medium", "low")}
    return figures


__all__ = ["SYSTEM_COLUMNS", "AnnualFigures", "SystemRow", "build_annual"]
