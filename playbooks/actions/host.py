"""isolate_host / release_host: queue a command for the host's agent.

The action succeeds once the command is durably queued (``runtime.commands``, the agent command queue).
Whether the host *is* isolated is what the agent reports back with the ruleset it applied; that state lives
on the Host, so the UI never shows "isolated" for a command that was only sent.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from soclite.playbooks.actions.base import Action, ActionContext, Options, PermanentError, RetryableError


class HostOptions(Options):
    #: the host id; defaults to the alert's host
    host_id: str | None = None
    reason: str = ""
    #: seconds an undelivered command stays valid; default settings.agent.command_ttl_seconds
    ttl_seconds: int | None = Field(None, ge=10)


class _HostCommand(Action):
    options = HostOptions
    kind: ClassVar[Literal["isolate", "release"]]

    def execute(self, ctx: ActionContext, options: Options) -> str:
        assert isinstance(options, HostOptions)
        host_id = options.host_id or (ctx.alert or {}).get("host")
        if not host_id:
            raise PermanentError("no host_id given and the alert names no host")
        host_id = str(host_id).lower()
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
