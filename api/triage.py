"""Alert triage as the JSON API and the web UI call it: the request's principal becomes the actor.

The rules, comments and history are :mod:`soclite.control.triage` (``runtime.triage``).
"""

from __future__ import annotations

from typing import Any

from soclite.control.audit import actor_of
from soclite.control.identity import Principal
from soclite.control.triage import AlertPatch, alert_json, apply_patch, sla
from soclite.models import Alert
from soclite.runtime import Runtime

__all__ = ["AlertPatch", "add_comment", "alert_json", "apply_patch", "comments", "get_in_scope", "history", "sla",
           "timeline", "update_alert"]


def update_alert(
    runtime: Runtime, principal: Principal, alert_id: str, patch: AlertPatch, scope: frozenset[str] | None
) -> Alert:
    """Patch one alert in the caller's scope, record its history and audit. NotFoundError/ConflictError."""
    return runtime.triage.update_alert(alert_id, patch, scope, name=principal.name, actor=actor_of(principal))


def add_comment(runtime: Runtime, principal: Principal, alert: Alert, body: str) -> dict[str, Any]:
    return runtime.triage.add_comment(alert, body, name=principal.name, actor=actor_of(principal))


def comments(runtime: Runtime, alert_id: str) -> list[dict[str, Any]]:
    return runtime.triage.comments(alert_id)


def _hidden_case(runtime: Runtime, alert_id: str, scope: frozenset[str] | None) -> Any:
    """A predicate: is this history/timeline entry a "added to case" of a case the caller may not see?

    An alert of the caller's unit may sit in a case of a wider scope; its title must not leak.
    """
    visible = {c["id"] for c in runtime.cases.of_alert(alert_id, scope)}

    def hidden(added: Any) -> bool:
        return isinstance(added, dict) and added.get("id") not in visible

    return hidden


def history(runtime: Runtime, alert_id: str, scope: frozenset[str] | None) -> list[dict[str, Any]]:
    hidden = _hidden_case(runtime, alert_id, scope)
    return [e for e in runtime.triage.history(alert_id)
            if not (isinstance(e["changes"], dict) and hidden(e["changes"].get("case_added")))]  # fmt: skip


def timeline(alert: Alert, runtime: Runtime, scope: frozenset[str] | None) -> list[dict[str, Any]]:
    hidden = _hidden_case(runtime, alert.id, scope)
    return [i for i in runtime.triage.timeline(alert) if not (i["kind"] == "case" and hidden(i["case"]))]


def get_in_scope(runtime: Runtime, alert_id: str, scope: frozenset[str] | None) -> Alert:
    """The alert, or NotFoundError when missing or outside scope (the two look the same on purpose)."""
    return runtime.triage.get_in_scope(alert_id, scope)
