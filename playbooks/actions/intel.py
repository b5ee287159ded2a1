"""create_case and add_ioc: actions that stay inside soclite."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from soclite.errors import NotFoundError
from soclite.playbooks.actions.base import Action, ActionContext, Options, PermanentError, RetryableError
from soclite.playbooks.services import need


class CaseOptions(Options):
    title: str = "{{ rule_title }} — {{ host }}"
    description: str = ""
    assignee: str | None = None


class CreateCase(Action):
    """Open a case for the alert in the API's case store (:class:`soclite.control.cases.Cases`, control database).

    Idempotent by content: a retry finds the case it already opened for this alert (same title) instead of
    opening a second one. Without the API package the outbox row is the only record and its result says so.
    """

    name = "create_case"
    options = CaseOptions

    def execute(self, ctx: ActionContext, options: Options) -> str:
        assert isinstance(options, CaseOptions)
        from soclite.control.cases import CaseCreate

        repository = need(ctx.runtime.cases, "the case repository")
        alert_ids = [ctx.record.alert_id] if ctx.record.alert_id else []
        for alert_id in alert_ids:
            for case in repository.of_alert(alert_id, None):  # playbooks act province-wide
                if case.get("title") == options.title:
                    return f"case {case['id']} already open for this alert"
        unit = (ctx.alert or {}).get("unit")
        severity = (ctx.alert or {}).get("severity")
        body = CaseCreate(
            title=options.title[:300],
            description=options.description or None,
            severity=severity if severity in ("high", "medium", "low") else None,
            unit=unit,
            owner=options.assignee,
            alert_ids=alert_ids,
        )
        try:
            # A system actor: the trail names the playbook that asked, no user's rights are borrowed.
            case = repository.create(body, actor=f"playbook:{ctx.record.requested_by}",
                                     created_by=ctx.record.requested_by, unit=None, scope=None)
        except NotFoundError as exc:
            raise PermanentError(f"cannot open the case: {exc}") from exc
        return f"case {case['id']} opened"


class IocOptions(Options):
    #: list name; stored as "playbook:<list>" in the correlator
    list_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: Literal["ip", "domain", "url", "hash"]
    values: list[str] = Field(min_length=1)
    level: Literal["informational", "low", "medium", "high", "critical"] = "high"


class AddIoc(Action):
    """Add values to a playbook-managed IoC list; the list is kept in the outbox db and pushed whole
    (``IocStore.set_list`` replaces atomically), so a restart or a repeat does not lose or double values."""

    name = "add_ioc"
    options = IocOptions

    def execute(self, ctx: ActionContext, options: Options) -> str:
        assert isinstance(options, IocOptions)
        engine = ctx.runtime.engine
        if engine is None or getattr(engine, "iocs", None) is None:
            raise RetryableError("the correlator is not running in this process")
        outbox = need(ctx.runtime.outbox, "the outbox")
        name = f"playbook:{options.list_name}"
        values = outbox.add_ioc_values(name, options.kind, [v for v in options.values if v], level=options.level)
        count = engine.iocs.set_list(name, options.kind, values, level=options.level)
        return f"IoC list {name}: {count} value(s)"


EXPORTED: list[type[Action]] = [CreateCase, AddIoc]
