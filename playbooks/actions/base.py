"""The action plugin interface: a name, a pydantic options model, and ``execute``.

An action must be safe to run more than once for the same outbox row (the worker is at-least-once):
it passes ``ctx.record.idempotency_key`` on to whatever it calls, or the peer's own deduplication
(deterministic STIX ids) makes a repeat harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from soclite.errors import PlaybookError

if TYPE_CHECKING:
    from soclite.playbooks.outbox import ActionRecord
    from soclite.playbooks.services import ResponseServices


class RetryableError(PlaybookError):
    """The peer is unavailable (network, 5xx, 429, a part not running): try again later."""


class PermanentError(PlaybookError):
    """The peer refused this object (4xx, bad parameters): retrying cannot help; dead-letter it."""


class Options(BaseModel):
    """Base of every action's options: unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class ActionContext:
    runtime: ResponseServices
    record: ActionRecord
    #: the alert as it was when the action was submitted (JSON form), if any
    alert: dict[str, Any] | None


class Action:
    """Base class; subclasses set ``name`` and ``options`` and implement :meth:`execute`."""

    name: ClassVar[str]
    options: ClassVar[type[Options]]
    #: destructive actions wait for an admin's approval unless the playbook is ``automatic: true``
    destructive: ClassVar[bool] = False
    #: rows of the same lane are delivered strictly in order (the national connector); None = independent
    lane: ClassVar[str | None] = None

    @classmethod
    def skip_reason(cls, runtime: ResponseServices) -> str | None:
        """Why the runner should not submit this action in this deployment (None = submit it)."""
        return None

    def execute(self, ctx: ActionContext, options: Options) -> str:
        """Do the action; return a short result text. Raise RetryableError or PermanentError."""
        raise NotImplementedError
