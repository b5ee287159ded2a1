"""Rules (list with hit counts, enable/disable, test on a pasted event) and exceptions."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from soclite.api import tuning
from soclite.api.deps import AdminDep, AnalystDep, RuntimeDep, ScopeDep, deny
from soclite.api.triage import alert_json
from soclite.control import audit as control_audit
from soclite.errors import RuleError
from soclite.runtime import Runtime

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


def rules_list(runtime: Runtime) -> list[dict[str, Any]]:
    items = [rule_json(i) for i in engine_of(runtime).rules_info()]
    shared = tuning.shared_hits(runtime, "rule_hits")
    if shared is not None:  # the pipeline runs in its own process: its engine counts the hits
        for item in items:
            item["hits"] = shared.get(str(item.get("id")), 0)
    return sorted(items, key=lambda r: (-int(r.get("hits") or 0), str(r.get("title", ""))))


@router.get("/rules")
def list_rules(runtime: RuntimeDep, scope: ScopeDep) -> dict[str, Any]:
    """Loaded rules with enabled state and hit counts (hits are engine-wide, not per unit)."""
    items = rules_list(runtime)
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
