"""The caller's own alert notifications: rules (severity, units, rule patterns → e-mail or webhook),
quiet hours and rate limit (:mod:`soclite.playbooks.user_notify`; the webhook body: docs/notifications.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel

from soclite.api import notify_settings
from soclite.api.deps import ReaderDep, RuntimeDep
from soclite.control.notify_rules import Prefs, RuleIn

router = APIRouter(prefix="/api/v1/me/notifications", tags=["notifications"])


@router.get("")
def overview(runtime: RuntimeDep, principal: ReaderDep) -> dict[str, Any]:
    return notify_settings.overview(runtime, principal)


@router.put("/settings")
def put_settings(body: Prefs, runtime: RuntimeDep, principal: ReaderDep) -> dict[str, Any]:
    """Quiet hours (HH:MM in the site's zone, hold or drop) and the messages-per-hour limit."""
    return notify_settings.set_prefs(runtime, principal, body).model_dump()


@router.post("/rules", status_code=status.HTTP_201_CREATED)
def add_rule(body: RuleIn, runtime: RuntimeDep, principal: ReaderDep) -> dict[str, Any]:
    """A webhook rule's answer carries its ``signing_secret``, this once: no later answer shows it."""
    rule = notify_settings.add_rule(runtime, principal, body)
    return {**rule.model_dump(), "signing_secret": runtime.notification_rules.signing_secret(rule.id)}


class RulePatch(BaseModel):
    model_config = {"extra": "forbid"}

    enabled: bool


@router.patch("/rules/{rule_id}")
def patch_rule(rule_id: str, body: RulePatch, runtime: RuntimeDep, principal: ReaderDep) -> dict[str, Any]:
    return notify_settings.set_enabled(runtime, principal, rule_id, body.enabled).model_dump()


@router.delete("/rules/{rule_id}")
def delete_rule(rule_id: str, runtime: RuntimeDep, principal: ReaderDep) -> dict[str, Any]:
    return notify_settings.delete_rule(runtime, principal, rule_id).model_dump()
