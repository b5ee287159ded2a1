"""What the response layer may use of a running process.

Playbook actions, connectors and the report scheduler receive an object with
these typed attributes. :class:`soclite.runtime.Runtime` satisfies the protocol
(mypy checks it where the application passes one in); the command line builds
a :class:`StandaloneServices` with only what a command needs. The protocol lives
here, below the runtime, so that the response layer never imports the layers
above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from soclite.config import Settings
from soclite.errors import ServiceUnavailable
from soclite.store import Store

if TYPE_CHECKING:
    from soclite.control.cases import Cases
    from soclite.control.commands import CommandQueue
    from soclite.control.notify_rules import NotificationRules
    from soclite.correlator.engine import Engine
    from soclite.playbooks.connectors.base import Connector
    from soclite.playbooks.outbox import Outbox
    from soclite.reports.archive import ReportArchive

T = TypeVar("T")


def need(part: T | None, what: str) -> T:
    """``part``, or a clear error when this process does not run it."""
    if part is None:
        raise ServiceUnavailable(f"{what} is not available in this process")
    return part


class ResponseServices(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store | None: ...

    @property
    def outbox(self) -> Outbox | None: ...

    @property
    def engine(self) -> Engine | None: ...

    @property
    def commands(self) -> CommandQueue | None: ...

    @property
    def cases(self) -> Cases | None: ...

    @property
    def reports(self) -> ReportArchive | None: ...

    @property
    def notification_rules(self) -> NotificationRules | None: ...

    #: built on first use by :func:`soclite.playbooks.connectors.connector_for`
    national_connector: Connector | None


@dataclass(eq=False)
class StandaloneServices:
    """The services of a command-line run: no engine, no agents; a store and an outbox only if given."""

    settings: Settings
    store: Store | None = None
    outbox: Outbox | None = None
    engine: Engine | None = None
    commands: CommandQueue | None = None
    cases: Cases | None = None
    reports: ReportArchive | None = None
    notification_rules: NotificationRules | None = None
    national_connector: Connector | None = None
