"""isolate_host / release_host: queue a command for the host's agent, or ask the firewall.

With an enrolled agent the action succeeds once the command is durably queued (``runtime.commands``);
whether the host *is* isolated is what the agent reports back with the ruleset it applied, and that state
lives on the Host, so the UI never shows "isolated" for a command that was only sent.

Without an agent nothing on the host can apply it: the action then uses the network-level action of the
site (``response.firewall_webhook``) when there is one, and otherwise fails permanently with the reason,
shown on the host and in the dead-letter list, instead of "succeeded" for a command nobody will fetch.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

import httpx
from pydantic import Field, model_validator

from soclite.config import FirewallWebhook
from soclite.control.commands import CommandQueue
from soclite.models import Host
from soclite.playbooks.actions.base import Action, ActionContext, Options, PermanentError, RetryableError
from soclite.store import Store

NO_AGENT = "host {host} has no enrolled agent and no network-level isolation (response.firewall_webhook) is set"


class HostOptions(Options):
    #: the host id; defaults to the alert's host
    host_id: str | None = None
    reason: str = ""
    #: seconds an undelivered command stays valid; default settings.agent.command_ttl_seconds
    ttl_seconds: int | None = Field(None, ge=10)


def _firewall(webhook: FirewallWebhook, kind: str, host: Host | None, host_id: str, ctx: ActionContext,
              reason: str) -> str:
    body: dict[str, Any] = {
        "action": kind, "host": host_id, "name": host.name if host else host_id,
        "ips": host.ips if host else [], "macs": host.macs if host else [], "reason": reason,
        "action_id": ctx.record.id,
    }  # fmt: skip
    verify: ssl.SSLContext | bool = True
    if webhook.ca_certs:
        verify = ssl.create_default_context(cafile=webhook.ca_certs)
    headers = {"Idempotency-Key": ctx.record.idempotency_key, **webhook.headers}
    try:
        response = httpx.post(webhook.url, json=body, headers=headers, timeout=webhook.timeout, verify=verify)
    except httpx.HTTPError as exc:
        raise RetryableError(f"firewall webhook {webhook.url}: {exc}") from exc
    if response.status_code in (408, 425, 429) or response.status_code >= 500:
        raise RetryableError(f"firewall webhook {webhook.url}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise PermanentError(f"firewall webhook {webhook.url}: HTTP {response.status_code}: {response.text[:200]}")
    return f"network-level {kind} by the firewall webhook {webhook.url}: HTTP {response.status_code} {response.text[:500]}"


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


def _agent_target(ctx: ActionContext, host_id: str | None) -> tuple[str, CommandQueue, Host | None]:
    """The host an action on an agent targets (``host_id``, else the alert's host; lower case), refused when
    the alert's unit may not act on it or the command queue is not running: (host id, queue, its Host if known)."""
    target = str(host_id or (ctx.alert or {}).get("host") or "").lower()
    if not target:
        raise PermanentError("no host_id given and the alert names no host")
    refused = unit_conflict(ctx.runtime.store, target, ctx.alert)
    if refused:
        raise PermanentError(refused)
    queue = ctx.runtime.commands
    if queue is None:
        raise RetryableError("the agent command queue is not running in this process")
    store = ctx.runtime.store
    return target, queue, store.find_host(target) if store is not None else None


class _HostCommand(Action):
    options = HostOptions
    kind: ClassVar[Literal["isolate", "release"]]

    def execute(self, ctx: ActionContext, options: Options) -> str:
        assert isinstance(options, HostOptions)
        host_id, queue, host = _agent_target(ctx, options.host_id)
        if host is None or not host.agent_id:
            webhook = ctx.runtime.settings.response.firewall_webhook
            if webhook is None:
                why = NO_AGENT.format(host=host_id) if host is not None else f"no host {host_id} in the inventory"
                queue.action_failed(host_id, self.kind, why)
                raise PermanentError(why)
            try:
                detail = _firewall(webhook, self.kind, host, host_id, ctx, options.reason)
            except PermanentError as exc:
                queue.action_failed(host_id, self.kind, str(exc))
                raise
            queue.applied_by_network(host_id, self.kind, detail)
            return detail
        ttl = options.ttl_seconds or ctx.runtime.settings.agent.command_ttl_seconds
        params: dict[str, Any] = {"reason": options.reason, "action_id": ctx.record.id}
        if ctx.record.alert_id:
            params["alert_id"] = ctx.record.alert_id
        command = queue.enqueue(host.id, self.kind, params, ttl, ctx.record.idempotency_key)
        return f"{self.kind} command {command.id} queued for the agent of host {host.id}"


class IsolateHost(_HostCommand):
    name = "isolate_host"
    kind = "isolate"
    destructive = True


class ReleaseHost(_HostCommand):
    name = "release_host"
    kind = "release"


def _scan_path(value: str) -> str:
    if not value or "\x00" in value or len(value) > 4096:
        raise ValueError("a path is 1 to 4096 characters without NUL")
    if not (value.startswith("/") or (len(value) > 2 and value[1] == ":" and value[2] in "\\/")):
        raise ValueError(f"path {value!r} is not absolute (/home or C:\\Users)")
    return value


class ScanOptions(Options):
    #: the host id; defaults to the alert's host
    host_id: str | None = None
    #: absolute paths (files or folders, scanned recursively) on the host
    paths: list[str] = Field(min_length=1, max_length=64)
    reason: str = ""
    ttl_seconds: int | None = Field(None, ge=10)

    @model_validator(mode="after")
    def _check(self) -> Self:
        for path in self.paths:
            _scan_path(path)
        return self


class ScanHost(Action):
    """Ask the host's agent for an on-demand ClamAV scan of ``paths`` (soclite.collectors.agent.scan).

    The action succeeds once the command is queued; the scan's own state (queued, running, clean,
    infected with N findings, not available on the host, error, expired) is the command's, shown beside
    the action in the response queue (:func:`soclite.control.commands.scan_state`), and each finding
    arrives as an antivirus event the Sigma rules turn into an alert. No agent, no scan: a firewall
    cannot look inside a host.
    """

    name = "scan_host"
    options = ScanOptions

    def execute(self, ctx: ActionContext, options: Options) -> str:
        assert isinstance(options, ScanOptions)
        host_id, queue, host = _agent_target(ctx, options.host_id)
        if host is None or not host.agent_id:
            raise PermanentError(f"host {host_id} has no enrolled agent: nothing on it can run a scan")
        ttl = options.ttl_seconds or ctx.runtime.settings.agent.command_ttl_seconds
        params: dict[str, Any] = {"paths": options.paths, "reason": options.reason, "action_id": ctx.record.id}
        command = queue.enqueue(host.id, "scan", params, ttl, ctx.record.idempotency_key)
        return f"scan command {command.id} queued for the agent of host {host.id}: {', '.join(options.paths)}"


EXPORTED: list[type[Action]] = [IsolateHost, ReleaseHost, ScanHost]
