"""Rules (list with hit counts and detection health, enable/disable, test on a pasted event) and exceptions."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from soclite.api import tuning
from soclite.api.deps import AdminDep, AnalystDep, RuntimeDep, ScopeDep, deny
from soclite.api.routes.alerts import TimeRangeDep
from soclite.api.triage import alert_json
from soclite.control import audit as control_audit
from soclite.control import rule_health
from soclite.correlator import health as engine_health
from soclite.errors import RuleError
from soclite.models import utcnow
from soclite.runtime import Runtime

#: the period of the health figures when the request names none
HEALTH_DAYS = 30

router = APIRouter(prefix="/api/v1", tags=["rules"])


def engine_of(runtime: Runtime) -> Any:
    if runtime.engine is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the correlator is not running in this process")
    return runtime.engine


def rule_json(info: Any) -> dict[str, Any]:
    if isinstance(info, BaseModel):
        data = info.model_dump(mode="json")
    elif dataclasses.is_dataclass(info) and not isinstance(info, type):
        data = dataclasses.asdict(info)
    else:
        data = dict(vars(info))
    return dict(control_audit.jsonable(data) or {})


def rules_list(
    runtime: Runtime,
    scope: frozenset[str] | None = None,
    *,
    state: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every rule (and every rule that failed to load) with its health; ``state`` keeps one state's rules."""
    engine = engine_of(runtime)
    end = end or utcnow()
    start = start or end - timedelta(days=HEALTH_DAYS)
    shared = tuning.shared_hits(runtime, "rule_hits")
    # The pipeline runs in its own process: its engine sees the events and writes its health file.
    snapshot = None
    if shared is not None:
        snapshot = engine_health.read(runtime.settings.data_dir / "correlator" / engine_health.HEALTH_FILE)
        snapshot = snapshot or engine_health.HealthSnapshot(since=0.0)
    rows = rule_health.assess(runtime.store, engine, snapshot, start, end, scope)
    items = []
    for row in rows:
        if state is not None and state not in row.states:
            continue
        item = rule_json(row)
        if shared is not None and row.kind != "failed":
            item["hits"] = shared.get(row.id, 0)  # since the server started (pipeline.db), as before
        item["period"] = {"from": start.isoformat(), "to": end.isoformat()}
        items.append(item)
    return sorted(items, key=lambda r: (-int(r.get("hits") or 0), str(r.get("title", ""))))


@router.get("/rules")
def list_rules(
    runtime: RuntimeDep,
    scope: ScopeDep,
    period: TimeRangeDep,
    state: Annotated[Literal["never_fired", "noisy", "broken"] | None, Query(description="only rules in this state")] = None,
) -> dict[str, Any]:
    """Loaded rules with enabled state, hit counts (engine-wide, not per unit) and detection health:
    suppressed, errors, last_fired, alerts/closed/false_positives in the period (within the caller's
    units), false_positive_ratio, unseen_fields, load_error and states (never_fired, noisy, broken).
    ``from``/``to`` (default: the last 30 days) are read in the site's zone like every other filter."""
    items = rules_list(runtime, scope, state=state, start=period.start, end=period.end)
    return {"total": len(items), "items": items, "next": None}


class RulePatch(BaseModel):
    model_config = {"extra": "forbid"}

    enabled: bool


@router.patch("/rules/{rule_id}")
def patch_rule(
    rule_id: str, body: RulePatch, request: Request, runtime: RuntimeDep, principal: AdminDep
) -> dict[str, Any]:
    """Enable/disable a rule for the whole province: province-wide admins only; kept across restarts."""
    if not tuning.may_toggle_rules(principal):
        raise deny(runtime, principal, request, "only a province-wide admin may enable or disable rules")
    engine_of(runtime)
    current = next((r for r in rules_list(runtime) if str(r.get("id")) == rule_id), None)
    if current is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"rule {rule_id} not found")
    tuning.set_rule_enabled(runtime, principal, rule_id, body.enabled, current.get("enabled"))
    return {**current, "enabled": body.enabled}


class RuleTest(BaseModel):
    model_config = {"extra": "forbid"}

    rule: str = Field(min_length=1, max_length=200_000, description="Sigma rule YAML")
    event: dict[str, Any]


@router.post("/rules/test")
def test_rule(body: RuleTest, runtime: RuntimeDep, principal: AnalystDep) -> dict[str, Any]:
    """Compile one rule and run it on one event → {"matched", "alerts"}; a bad rule is a 422 saying why."""
    engine = engine_of(runtime)
    try:
        alerts = engine.test_rule(body.rule, body.event)
    except RuleError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"rule does not compile: {exc}") from exc
    return {"matched": bool(alerts), "alerts": [alert_json(a, runtime.settings) for a in alerts]}


@router.get("/exceptions")
def list_exceptions(runtime: RuntimeDep, scope: ScopeDep) -> dict[str, Any]:
    """Exceptions with owner, reason, expiry and how many events each suppressed."""
    items = tuning.list_all(runtime, scope)
    return {"total": len(items), "items": items, "next": None}


@router.post("/exceptions", status_code=status.HTTP_201_CREATED)
def create_exception(
    body: tuning.ExceptionCreate, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    try:
        return tuning.create(runtime, principal, body, scope)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


class ExceptionPatch(BaseModel):
    model_config = {"extra": "forbid"}

    enabled: bool


@router.patch("/exceptions/{exception_id}")
def patch_exception(
    exception_id: str, body: ExceptionPatch, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return tuning.set_enabled(runtime, principal, exception_id, body.enabled, scope)
