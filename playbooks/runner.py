"""The playbook runner: alert in, outbox rows out — fast, no network (the worker does the work).

``on_alert`` is called by the pipeline after an alert is stored. Each matching playbook's steps are
rendered against the alert and submitted with an idempotency key made of the playbook, the step, the alert
and the alert version, so a pipeline that replays an alert after a crash cannot double an action.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from soclite.errors import PlaybookError, TemplateError
from soclite.models import Alert, IsolationState, isoformat
from soclite.playbooks.conditions import all_hold, render
from soclite.playbooks.schema import Playbook, Step, TriggerMatch, load_playbooks

_MARKABLE: dict[str, frozenset[IsolationState]] = {
    "isolate": frozenset({IsolationState.NONE, IsolationState.FAILED, IsolationState.EXPIRED}),
    "release": frozenset({IsolationState.ISOLATED, IsolationState.RELEASE_FAILED, IsolationState.RELEASE_EXPIRED}),
}

if TYPE_CHECKING:
    from soclite.playbooks.outbox import ActionRecord
    from soclite.playbooks.services import ResponseServices

log = logging.getLogger(__name__)
ChangeKind = Literal["created", "updated", "escalated"]
#: host types looked up for playbook triggers: kept this long, this many hosts at most (a province has ~2,600)
HOST_TYPE_TTL = 60.0
HOST_TYPE_CACHE = 10_000


@dataclass
class PlannedStep:
    """What a step would do for an alert (the dry run shows these; on_alert submits them)."""

    playbook_id: str
    step: str
    action: str
    params: dict[str, Any]
    requires_approval: bool
    idempotency_key: str
    skipped: str | None = None


def _glob_any(patterns: list[str], values: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(v.lower(), p.lower()) for p in patterns for v in values)


def _group_holds(match: TriggerMatch, ctx: dict[str, Any]) -> bool:
    event = ctx.get("event") or {}
    checks: list[tuple[list[str], str | None]] = [
        (list(match.severity), ctx.get("severity")),
        (list(match.level), ctx.get("level")),
        (match.unit, ctx.get("unit")),
        (list(match.host_type), ctx.get("host_type")),
        (match.kind, ctx.get("kind")),
        (match.logsource_product, event.get("logsource.product")),
        (match.logsource_category, event.get("logsource.category")),
    ]
    for allowed, actual in checks:
        if allowed and (actual is None or str(actual).lower() not in {a.lower() for a in allowed}):
            return False
    if match.rule_ids and not _glob_any(match.rule_ids, [str(ctx.get("rule_id", ""))]):
        return False
    return not (match.tags and not _glob_any(match.tags, [str(t) for t in ctx.get("tags") or []]))


def triggered(playbook: Playbook, ctx: dict[str, Any], change: str) -> bool:
    trigger = playbook.trigger
    if not playbook.enabled or change not in trigger.on:
        return False
    if not _group_holds(trigger.match, ctx):
        return False
    return not trigger.any or any(_group_holds(group, ctx) for group in trigger.any)


class PlaybookRunner:
    def __init__(self, runtime: ResponseServices, playbooks: list[Playbook] | None = None) -> None:
        self.runtime = runtime
        if playbooks is None:
            playbooks, problems = load_playbooks(list(runtime.settings.playbooks))
            for problem in problems:
                log.error("playbook rejected: %s", problem)
        self.playbooks = playbooks
        #: host name → (monotonic time looked up, type or None): one store search per host a minute, not one
        #: per alert (the soak's 6,000 alerts in 8 minutes were 6,000 searches, and under a loaded OpenSearch
        #: node's memory breaker some failed, leaving the isolate playbook without the host's type)
        self._host_types: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        #: seconds a looked-up host type is trusted (0: look it up for every alert)
        self.host_type_ttl = HOST_TYPE_TTL
        self._host_types_lock = threading.Lock()

    @classmethod
    def from_runtime(cls, runtime: ResponseServices) -> PlaybookRunner:
        """Load the playbooks named in settings.playbooks; rejected ones are logged with file:line."""
        return cls(runtime)

    def context(self, alert: Alert, change: str, host_type: str | None = None) -> dict[str, Any]:
        ctx = alert.model_dump(mode="json")
        ctx["change"] = change
        if host_type is None and alert.host and self.runtime.store is not None:
            host_type = self._host_type(alert.host)
        ctx["host_type"] = host_type
        return ctx

    def _host_type(self, name: str) -> str | None:
        """The inventory's type of a host, from a cache of ``host_type_ttl`` seconds. A failed lookup
        answers what was known before, however old (or None): the store being unavailable must not stop
        alert handling, and a type an admin set rarely changes."""
        now = time.monotonic()
        with self._host_types_lock:
            known = self._host_types.get(name)
        if known is not None and now - known[0] < self.host_type_ttl:
            return known[1]
        store = self.runtime.store
        assert store is not None
        try:
            host = store.find_host(name)
        except Exception as exc:
            log.warning("host lookup for %s failed (%s): %s", name, "using the type known before" if known else
                        "no type known", exc)  # fmt: skip
            return known[1] if known is not None else None
        found = host.type.value if host is not None else None
        with self._host_types_lock:
            self._host_types[name] = (now, found)
            self._host_types.move_to_end(name)
            while len(self._host_types) > HOST_TYPE_CACHE:
                self._host_types.popitem(last=False)
        return found

    @staticmethod
    def idempotency_key(playbook: Playbook, step: Step, alert: Alert, change: str) -> str:
        # A created alert acts once; an update/escalation acts once per alert version.
        version = "" if change == "created" else ":" + isoformat(alert.updated_at)
        return f"pb:{playbook.id}:{step.name}:{alert.id}:{change}{version}"

    def plan(self, alert: Alert, change: str, host_type: str | None = None) -> list[PlannedStep]:
        from soclite.playbooks.actions import get_action

        ctx = self.context(alert, change, host_type)
        planned: list[PlannedStep] = []
        for playbook in self.playbooks:
            if not triggered(playbook, ctx, change):
                continue
            for step in playbook.steps:
                key = self.idempotency_key(playbook, step, alert, change)
                base = {
                    "playbook_id": playbook.id,
                    "step": step.name,
                    "action": step.action,
                    "idempotency_key": key,
                }
                needs_approval = playbook.approval_needed(step)
                if not all_hold(step.when, ctx):
                    planned.append(
                        PlannedStep(
                            params={}, requires_approval=needs_approval, skipped="when: false", **base
                        )
                    )
                    continue
                cls = get_action(step.action)
                try:
                    params = self._params(step, cls.options, ctx)
                except (TemplateError, ValueError) as exc:
                    planned.append(
                        PlannedStep(
                            params={},
                            requires_approval=needs_approval,
                            skipped=f"bad parameters: {exc}",
                            **base,
                        )
                    )
                    continue
                skip = cls.skip_reason(self.runtime)
                planned.append(
                    PlannedStep(params=params, requires_approval=needs_approval, skipped=skip, **base)
                )
        return planned

    @staticmethod
    def _params(step: Step, options: Any, ctx: dict[str, Any]) -> dict[str, Any]:
        raw = render(step.params, ctx)
        # Defaults that are templates (e.g. the mail subject) are rendered too.
        for name, field in options.model_fields.items():
            if name not in raw and isinstance(field.default, str) and "{{" in field.default:
                raw[name] = render(field.default, ctx)
        validated: dict[str, Any] = options.model_validate(raw).model_dump(mode="json")
        return validated

    def on_alert(self, alert: Alert, change: ChangeKind) -> list[ActionRecord]:
        """Submit the matching playbooks' steps to the outbox; errors are logged, never raised to the pipeline."""
        outbox = self.runtime.outbox
        if outbox is None:
            return []
        submitted: list[ActionRecord] = []
        payload = alert.model_dump(mode="json")
        for planned in self.plan(alert, change):
            if planned.skipped:
                log.info(
                    "playbook %s step %s skipped for alert %s: %s",
                    planned.playbook_id,
                    planned.step,
                    alert.id,
                    planned.skipped,
                )
                continue
            step = next(
                s
                for p in self.playbooks
                if p.id == planned.playbook_id
                for s in p.steps
                if s.name == planned.step
            )
            try:
                record = outbox.submit(
                    planned.action,
                    planned.params,
                    idempotency_key=planned.idempotency_key,
                    alert_id=alert.id,
                    requested_by=f"playbook:{planned.playbook_id}",
                    requires_approval=planned.requires_approval,
                    playbook_id=planned.playbook_id,
                    step=planned.step,
                    payload=payload,
                    retry=step.retry,
                    timeout=step.timeout,
                )
            except PlaybookError as exc:
                log.error("playbook %s step %s: %s", planned.playbook_id, planned.step, exc)
                continue
            if planned.action in ("isolate_host", "release_host") and record.status.value == "awaiting_approval":
                self._mark_awaiting(str(planned.params.get("host_id") or alert.host or ""), planned.action)
            submitted.append(record)
        return submitted

    def _mark_awaiting(self, host_id: str, action: str) -> None:
        """Show "awaiting approval" on the host while the request waits for an admin (the agent reports the rest)."""
        commands, store = self.runtime.commands, self.runtime.store
        if not host_id or commands is None or store is None:
            return
        try:
            host = store.find_host(host_id)
            current = host.isolation if host is not None else None
            kind: Literal["isolate", "release"] = "isolate" if action == "isolate_host" else "release"
            # only from a settled state that the request would change: never over a request in flight
            if host is not None and current in _MARKABLE[kind]:
                commands.requested(host.id, kind, awaiting_approval=True)
        except Exception as exc:
            log.warning("could not mark host %s as awaiting approval: %s", host_id, exc)
