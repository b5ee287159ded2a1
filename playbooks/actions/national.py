"""national_sync: deliver the alert to the national monitoring system through the configured connector.

Rows of this action share the ``national`` lane: the worker delivers them strictly in order and holds the
later ones while an earlier one fails with a retryable error (an outage of hours is held in the outbox).
A 4xx for one object dead-letters that object with the reason and the lane goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from playbooks.actions.base import Action, ActionContext, Options, PermanentError

if TYPE_CHECKING:
    from soclite.runtime import Runtime


class NationalOptions(Options):
    #: send the alert's event copy (pseudonymized when configured); off = the alert summary only
    include_event: bool = True


class NationalSync(Action):
    name = "national_sync"
    options = NationalOptions
    lane = "national"

    @classmethod
    def skip_reason(cls, runtime: Runtime) -> str | None:
        return None if runtime.settings.national.enabled else "the national connector is disabled"

    def execute(self, ctx: ActionContext, options: Options) -> str:
        from playbooks.connectors import NationalItem, connector_for

        assert isinstance(options, NationalOptions)
        if ctx.alert is None:
            raise PermanentError("national_sync needs an alert")
        alert = dict(ctx.alert)
        if not options.include_event:
            alert["event"] = {}
        connector = connector_for(ctx.runtime)
        item = NationalItem(action_id=ctx.record.id, key=ctx.record.idempotency_key, alert=alert)
        return connector.deliver(item)


EXPORTED: list[type[Action]] = [NationalSync]
