"""Failures people must see: the health checks of ``/health`` and the notification centre of the UI.

A failure that only shows in ``/api/v1/actions`` (seven e-mails dead with "Connection refused") is a
failure nobody sees. Each check here names what is wrong and why, once, and both ``/health`` (as
``checks``) and the UI (the header's badge, the banner and ``/notifications``) read the same.

Checks: ``playbook_actions`` (actions failing or dead-lettered), ``national_connector`` (down: its
last error is newer than its last success), ``journal`` and ``pipeline`` (their own warnings:
journal bound, detection lag, last error), ``rules`` (rules that failed to load), ``store`` (a remote
store's own state: the OpenSearch cluster's green/yellow/red and nodes; degraded unless green). Each is ``ok``,
``degraded`` with a reason, or absent where this process does not run the part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from soclite.api.response import visible
from soclite.control.identity import Principal, Role
from soclite.control.outbox import ActionStatus
from soclite.models import utcnow
from soclite.runtime import Runtime
from soclite.store.base import StoreHealth
from soclite.store.spool import pending_in, spool_path

OK = "ok"
DEGRADED = "degraded"


def _check(reasons: list[str]) -> dict[str, Any]:
    return {"status": DEGRADED, "reason": "; ".join(reasons)} if reasons else {"status": OK, "reason": None}


def _action_failures(groups: list[dict[str, Any]]) -> list[str]:
    out = []
    for group in groups:
        what = "dead-lettered" if group["status"] == ActionStatus.DEAD.value else "failing (retry scheduled)"
        out.append(f"{group['count']} {group['action']} action(s) {what}; last error: {group['last_error']}")
    return out


def _connector_down(runtime: Runtime) -> list[str]:
    national = runtime.settings.national
    if not national.enabled:
        return []
    state = runtime.outbox.connector_status(national.kind)
    if state.last_error and (state.last_success is None or (state.last_error_at or "") > state.last_success):
        return [f"national connector {national.kind} is down since {state.last_error_at}: {state.last_error} "
                f"(backlog {state.backlog})"]  # fmt: skip
    return []


def _rule_failures(runtime: Runtime) -> list[str] | None:
    if runtime.engine is None:
        return None
    failures = runtime.engine.failures
    if not failures:
        return []
    shown = "; ".join(str(f) for f in failures[:5])
    return [f"{len(failures)} rule(s) failed to load: {shown}" + (" …" if len(failures) > 5 else "")]


def health_checks(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """Every check of this process (see the module docstring)."""
    checks: dict[str, dict[str, Any]] = {
        "playbook_actions": _check(_action_failures(runtime.outbox.failures())),
    }
    if runtime.settings.national.enabled:
        checks["national_connector"] = _check(_connector_down(runtime))
    if runtime.journal is not None:
        checks["journal"] = _check(runtime.journal.health_warnings())
    if runtime.pipeline is not None:
        checks["pipeline"] = _check(runtime.pipeline.health_warnings())
    rules = _rule_failures(runtime)
    if rules is not None:
        checks["rules"] = _check(rules)
    store = store_health(runtime)
    if store is not None:
        checks["store"] = {**_check(store.problems), **store.details}
    return checks


def store_health(runtime: Runtime) -> StoreHealth | None:
    """A remote store's own health, and the detection writes waiting for it in the local spool."""
    health = runtime.store.health()
    if health is None:
        return None
    spooled = pending_in(spool_path(runtime.settings.data_dir))
    problems = list(health.problems)
    if spooled:
        problems.append(f"{spooled} alert write(s) kept in the local spool until the store answers")
    return StoreHealth(problems=problems, details={**health.details, "spooled": spooled})


@dataclass(frozen=True)
class Notice:
    """One thing the notification centre lists: ``kind`` is a catalog key (``notice_<kind>``)."""

    kind: str
    severity: str  # "error" | "warning"
    detail: str
    link: str
    count: int = 1


def notices(runtime: Runtime, principal: Principal, scope: frozenset[str] | None) -> list[Notice]:
    """What ``principal`` should see now: failures of actions of its units, approvals waiting for an admin,
    and (province-wide callers) the connector, journal, pipeline and rule failures."""
    out: list[Notice] = []
    failing = runtime.outbox.list_actions(status=[ActionStatus.FAILED.value, ActionStatus.DEAD.value], limit=500)
    groups: dict[tuple[str, str], list[Any]] = {}
    for record in failing:
        if visible(runtime, record, scope):
            groups.setdefault((record.action, record.status.value), []).append(record)
    for (action, status), records in groups.items():
        newest = max(records, key=lambda r: r.updated_at)
        out.append(Notice(kind=f"action_{status}", severity="error",
                          detail=f"{action}: {newest.last_error or ''}", link=f"/actions#section-{'dead' if status == 'dead' else 'failing'}",
                          count=len(records)))  # fmt: skip
    if principal.role is Role.ADMIN:
        waiting = [r for r in runtime.outbox.list_actions(status=ActionStatus.AWAITING_APPROVAL.value, limit=500)
                   if visible(runtime, r, scope)]  # fmt: skip
        if waiting:
            out.append(Notice(kind="awaiting_approval", severity="warning",
                              detail=", ".join(sorted({r.action for r in waiting})), link="/actions#section-awaiting",
                              count=len(waiting)))  # fmt: skip
    out.extend(_review_notices(runtime, scope))
    out.extend(_trend_notices(runtime, scope))
    if scope is None:
        for reason in _connector_down(runtime):
            out.append(Notice(kind="connector_down", severity="error", detail=reason, link="/actions"))
        for name, part in (("journal", runtime.journal), ("pipeline", runtime.pipeline)):
            if part is not None:
                for reason in part.health_warnings():
                    out.append(Notice(kind=name, severity="warning", detail=reason, link="/notifications"))
        for reason in _rule_failures(runtime) or []:
            out.append(Notice(kind="rules", severity="error", detail=reason, link="/rules"))
        store = store_health(runtime)
        for reason in store.problems if store is not None else []:
            # an OpenSearch cluster short of a node (yellow), a primary (red) or reach: in the banner
            out.append(Notice(kind="store", severity="error", detail=reason, link="/notifications"))
    return out


def _review_notices(runtime: Runtime, scope: frozenset[str] | None) -> list[Notice]:
    """Log reviews and threshold tunings of the caller's systems overdue or inside their reminder window."""
    settings = runtime.settings.compliance.reviews
    if not settings.enabled:
        return []
    now = utcnow()
    found: dict[str, list[str]] = {"overdue": [], "due_soon": []}
    for system in runtime.systems.list_systems(scope):
        for task in runtime.reviews.schedule(system, settings, now):
            if task.state in found:
                found[task.state].append(f"{system['name']}: {task.kind} ({task.due_at:%Y-%m-%d})")
    return [Notice(kind=f"review_{state}", severity="error" if state == "overdue" else "warning",
                   detail="; ".join(items), link="/reviews", count=len(items))
            for state, items in found.items() if items]  # fmt: skip


def _trend_notices(runtime: Runtime, scope: frozenset[str] | None) -> list[Notice]:
    """Rises flagged by statistical trend detection in the last 24 hours, of the caller's units."""
    rows = runtime.trend_warnings.since(utcnow() - timedelta(hours=24), scope)
    if not rows:
        return []
    shown = [f"{r['source']} {r['dimension']}={r['key'] or '*'} {r['hour'][:13]}h: {r['observed']} "
             f"(median {r['median']:g})" for r in rows[:10]]
    return [Notice(kind="trend", severity="warning", detail="; ".join(shown) + (" …" if len(rows) > 10 else ""),
                   link="/", count=len(rows))]
