"""isolate_host / release_host: queue a command for the host's agent.

The action succeeds once the command is durably queued (``runtime.commands``, the agent command queue).
Whether the host *is* isolated is what the agent reports back with the ruleset it applied; that state lives
on the Host, so the UI never shows "isolated" for a command that was only sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from soclite.playbooks.actions.base import Action, ActionContext, Options, PermanentError, RetryableError
from soclite.store import Store


class HostOptions(Options):
    #: the host id; defaults to the alert's host
    host_id: str | None = None
    reason: str = ""
    #: seconds an undelivered command stays valid; default settings.agent.command_ttl_seconds
    ttl_seconds: int | None = Field(None, ge=10)


def unit_conflict(store: Store | None, host_id: str, alert: Mapping[str, Any] | None) -> str | None:
    """Why an action on ``host_id`` for ``alert`` must not run (None when it may).

    The action is authorised against the TARGET host's unit: an alert stamped with one unit must
    never isolate another unit's host, whatever host name its events carried (the host a sender
    names is not proof of anything; see soclite.collectors.sources).
    """
    if alert is None or store is None:
        return None
    host = store.find_host(host_id)
    if host is None:
        return None  # not in the inventory: no agent to command either (the queue refuses it)
    alert_unit = alert.get("unit")
    if host.unit != alert_unit:
        return (
            f"host {host.id} belongs to unit {host.unit or '(none)'} but the alert is of unit "
            f"{alert_unit or '(none)'}: a response action is refused across units"
        )
    return None


class _HostCommand(Action):
    options = HostOptions
    kind: ClassVar[Literal["isolate", "release"]]

    def execute(self, ctx: ActionContext, options: Options) -> str:
        assert isinstance(options, HostOptions)
        host_id = options.host_id or (ctx.alert or {}).get("host")
        if not host_id:
            raise PermanentError("no host_id given and the alert names no host")
        host_id = str(host_id).lower()
        refused = unit_conflict(ctx.runtime.store, host_id, ctx.alert)
        if refused:
            raise PermanentError(refused)
        queue = ctx.runtime.commands
        if queue is None:
            raise RetryableError("the agent command queue is not running in this process")
        ttl = options.ttl_seconds or ctx.runtime.settings.agent.command_ttl_seconds
        params: dict[str, Any] = {"reason": options.reason, "action_id": ctx.record.id}
        if ctx.record.alert_id:
            params["alert_id"] = ctx.record.alert_id
        command = queue.enqueue(host_id, self.kind, params, ttl, ctx.record.idempotency_key)
        command_id = getattr(command, "id", command)
        return f"{self.kind} command {command_id} queued for host {host_id}"


class IsolateHost(_HostCommand):
    name = "isolate_host"
    kind = "isolate"
    destructive = True


class ReleaseHost(_HostCommand):
    name = "release_host"
    kind = "release"


EXPORTED: list[type[Action]] = [IsolateHost, ReleaseHost]
