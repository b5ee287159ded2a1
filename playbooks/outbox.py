"""The durable outbox: every action a playbook (or an admin) asks for, kept in control.db.

The rows, their life cycle and the connector's state are :mod:`soclite.control.outbox` (see its
docstring for why a table, the statuses and lanes). This class adds what needs the playbook
machinery: a submitted action's parameters are validated against the action's options and its lane
is the action's, and the worker (:mod:`playbooks.worker`) is woken after every change instead of polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soclite.config import Settings
from soclite.control.connectors import ConnectorEvent
from soclite.control.outbox import (
    ActionRecord,
    ActionStatus,
    ConnectorStatus,
    HistoryEntry,
    OutboxStore,
    RetryPolicy,
)
from soclite.db import Database
from soclite.errors import PlaybookError

__all__ = ["ActionRecord", "ActionStatus", "ConnectorEvent", "ConnectorStatus", "HistoryEntry", "Outbox",
           "RetryPolicy"]


class Outbox(OutboxStore):
    """See the module docstring. Thread-safe: writes go through :meth:`Database.write`."""

    def __init__(
        self, db: Database | Path | str, *, clock: Callable[[], float] = time.time, connector: str | None = None
    ) -> None:
        super().__init__(db, clock=clock, connector=connector)
        self._listeners: list[Callable[[], None]] = []

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> Outbox:
        """The server's outbox over the shared control database ``db``."""
        national = settings.national
        return cls(db, connector=national.kind if national.enabled else None)

    def on_submit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each new row (the worker wakes up instead of polling)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    def submit(
        self,
        action: str,
        params: dict[str, Any],
        *,
        idempotency_key: str,
        alert_id: str | None = None,
        requested_by: str,
        requires_approval: bool = False,
        playbook_id: str | None = None,
        step: str | None = None,
        payload: dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
    ) -> ActionRecord:
        """Add an action; the same idempotency key returns the existing row unchanged."""
        from soclite.playbooks.actions import get_action

        cls = get_action(action)
        try:
            options = cls.options.model_validate(params)
        except ValueError as exc:
            raise PlaybookError(f"invalid parameters for {action}: {exc}") from exc
        return self.insert(
            action, options.model_dump(mode="json"), idempotency_key=idempotency_key, lane=cls.lane,
            alert_id=alert_id, requested_by=requested_by, requires_approval=requires_approval,
            playbook_id=playbook_id, step=step, payload=payload, retry=retry, timeout=timeout,
        )
