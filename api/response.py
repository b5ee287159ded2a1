"""Response actions as people ask for them: isolate/release a host, approve/reject/retry/cancel an action.

The JSON routes (``routes/hosts.py``, ``routes/actions.py``) and the web UI (``ui/response_pages.py``)
both call these functions, so the browser may do exactly what the API allows, with the same checks:

- a host without an enrolled agent cannot be isolated unless the site has a network-level action
  (``response.firewall_webhook``): refused with the reason, nothing queued;
- a second request while one is under way is refused (the host shows the one in flight);
- the requester of an isolation may not approve it under the two-person rule;
- every change is audited and mirrored on the host (``CommandQueue`` moves the isolation states).
"""

from __future__ import annotations

from typing import Any, Literal

from soclite.api import audit
from soclite.control.commands import scan_state, under_way
from soclite.control.identity import Principal
from soclite.control.outbox import ActionRecord, ActionStatus
from soclite.errors import AuthError, ConflictError, NotFoundError
from soclite.models import Host, new_id
from soclite.playbooks.actions.host import unit_conflict
from soclite.runtime import Runtime

Kind = Literal["isolate", "release"]
HOST_ACTIONS = {"isolate_host": "isolate", "release_host": "release"}


class NoAgent(ConflictError):
    """Isolation asked for a host that nothing can isolate (no agent, no firewall webhook)."""


def request_host_action(
    runtime: Runtime, principal: Principal, host: Host, kind: Kind, *, reason: str, alert_id: str | None,
    idempotency_key: str | None, requires_approval: bool,
) -> ActionRecord:
    """Queue an isolate/release for ``host`` (already checked to be in the caller's scope)."""
    action = f"{kind}_host"
    if idempotency_key:  # a double click (same key) is the same request, whatever the host shows now
        existing = runtime.outbox.get_by_key(idempotency_key)
        if existing is not None:
            return existing
    if not host.agent_id and runtime.settings.response.firewall_webhook is None:
        raise NoAgent(
            f"host {host.id} has no enrolled agent, so nothing on it can apply "
            f"{'an isolation' if kind == 'isolate' else 'a release'}, and no network-level "
            "isolation (response.firewall_webhook) is configured: enrol an agent on the host or isolate it "
            "at the network"
        )
    if under_way(host.isolation, kind):
        raise ConflictError(
            f"host {host.id}: a {kind} is already under way ({host.isolation.value} since "
            f"{host.isolation_updated_at.isoformat() if host.isolation_updated_at else 'unknown'}); "
            "approve, reject or cancel it in the response queue"
        )
    record = runtime.outbox.submit(
        action, {"host_id": host.id, "reason": reason},
        idempotency_key=idempotency_key or f"{action}:{host.id}:{new_id()}",
        alert_id=alert_id, requested_by=principal.name, requires_approval=requires_approval,
        payload={"host": host.id, "unit": host.unit},  # the host's unit sees the action (lists are scoped by it)
    )  # fmt: skip
    before = host.model_dump(mode="json", include={"isolation", "isolation_updated_at"})
    runtime.commands.requested(host.id, kind, awaiting_approval=requires_approval)
    after = runtime.store.get_host(host.id)
    audit.record(runtime, principal, f"host.{kind}", f"host:{host.id}", before,
                 {**after.model_dump(mode="json", include={"isolation", "isolation_updated_at"}), "reason": reason,
                  "action_id": record.id, "requires_approval": requires_approval}, host.unit)  # fmt: skip
    return record


def request_scan(runtime: Runtime, principal: Principal, host: Host, paths: list[str], *, reason: str,
                 alert_id: str | None) -> ActionRecord:
    """Queue an on-demand malware scan of ``paths`` on ``host`` (in the caller's scope): it reads, changes
    nothing on the host, so it needs no approval; a host without an agent is refused with the reason."""
    if not host.agent_id:
        raise NoAgent(f"host {host.id} has no enrolled agent, so nothing on it can run a malware scan: "
                      "enrol an agent on the host")  # fmt: skip
    record = runtime.outbox.submit(
        "scan_host", {"host_id": host.id, "paths": paths, "reason": reason},
        idempotency_key=f"scan_host:{host.id}:{new_id()}", alert_id=alert_id, requested_by=principal.name,
        requires_approval=False, payload={"host": host.id, "unit": host.unit},
    )  # fmt: skip
    audit.record(runtime, principal, "host.scan", f"host:{host.id}", None,
                 {"paths": paths, "reason": reason, "action_id": record.id}, host.unit)  # fmt: skip
    return record


def scan_of(runtime: Runtime, record: ActionRecord) -> dict[str, Any] | None:
    """The scan's state for a scan_host action (None for other actions)."""
    if record.action != "scan_host":
        return None
    return scan_state(runtime.commands.by_key(record.idempotency_key))


def unit_of(runtime: Runtime, record: ActionRecord) -> str | None:
    """The unit an action concerns: for isolate/release the TARGET host's unit, else its alert's unit.

    An alert's unit is the sender's; the host it names is only a name it carried, so a host action
    belongs to the host's unit (an alert of unit A naming B's host must not make the action A's).
    Manual actions made before the host's unit was stored in the payload have none;
    their host is looked up so the unit's own users still see their hosts' actions.
    """
    if record.action in HOST_ACTIONS:
        target = str((record.params or {}).get("host_id") or (record.payload or {}).get("host") or "").lower()
        host = runtime.store.find_host(target) if target else None
        if host is not None:
            return host.unit
    unit = (record.payload or {}).get("unit")
    if unit is None:
        host_id = str((record.params or {}).get("host_id") or "")
        host = runtime.store.find_host(host_id) if host_id else None
        unit = host.unit if host is not None else None
    return str(unit) if unit is not None else None


def visible(runtime: Runtime, record: ActionRecord, scope: frozenset[str] | None) -> bool:
    if scope is None:
        return True
    unit = unit_of(runtime, record)
    return unit is not None and unit in scope


def change_action(
    runtime: Runtime, principal: Principal, action_id: str, what: str, scope: frozenset[str] | None,
    reason: str = "",
) -> ActionRecord:
    """approve / reject / retry / cancel; an action outside the caller's units is "not found", as on GET.

    Raises PlaybookError (the action's status does not allow it), TwoPersonRule (AuthError).
    """
    outbox = runtime.outbox
    before = outbox.get(action_id)
    if not visible(runtime, before, scope):
        raise NotFoundError(f"action {action_id} not found")
    if what in ("approve", "retry") and before.action in HOST_ACTIONS and before.alert_id:
        refused = unit_conflict(runtime.store, str((before.params or {}).get("host_id") or ""), before.payload)
        if refused:
            raise AuthError(refused)
    if what == "approve":
        two_person = runtime.settings.response.two_person_rule and before.action in HOST_ACTIONS
        after = outbox.approve(action_id, principal.name, two_person=two_person)
    elif what == "reject":
        after = outbox.reject(action_id, principal.name, reason)
    elif what == "cancel":
        after = outbox.cancel(action_id, principal.name, reason)
    elif what == "retry":
        after = outbox.retry(action_id, principal.name)
    else:
        raise NotFoundError(f"unknown change {what!r}")
    kind = HOST_ACTIONS.get(after.action)
    host_id = str(after.params.get("host_id") or "")
    if kind and host_id:
        if what == "approve":
            runtime.commands.approved(host_id, kind)
        elif what in ("reject", "cancel") and before.status in (
            ActionStatus.AWAITING_APPROVAL, ActionStatus.PENDING, ActionStatus.FAILED  # FAILED: a retry was due
        ):
            runtime.commands.withdrawn(host_id, kind)
    audit.record(
        runtime, principal, f"action.{what}", f"action:{after.id}",
        before.model_dump(mode="json", include={"status", "attempts", "last_error"}),
        {**after.model_dump(mode="json", include={"status", "approved_by", "last_error", "action", "params"}),
         **({"reason": reason} if reason else {})},
        unit_of(runtime, after),
    )  # fmt: skip
    return after


def describe(record: ActionRecord) -> dict[str, Any]:
    """An action as the queue shows it (JSON)."""
    data: dict[str, Any] = record.model_dump(mode="json")
    data["host_id"] = record.params.get("host_id")
    return data
