"""The runtime: every service a route, an action or a report needs, as typed fields.

It sits between the API and the response layer: routes (through ``api.deps``)
and the application module see this class; playbooks and reports see only the
narrower :class:`soclite.playbooks.services.ResponseServices` protocol it
satisfies. The services every process of a server needs are built in
:meth:`Runtime.build`; the parts only one process runs (the journal's
consumers, the report scheduler) are attached by :mod:`soclite.application`,
which is the one place that wires a process. Nothing is looked up by string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from soclite.api.identity import MIGRATIONS, IdentityStore
from soclite.collectors.agent.enrollment import AgentRegistry
from soclite.collectors.commands import CommandQueue
from soclite.collectors.journal import Journal
from soclite.config import Settings
from soclite.correlator.engine import Engine
from soclite.db import Database
from soclite.errors import ServiceUnavailable
from soclite.playbooks.connectors.base import Connector
from soclite.playbooks.outbox import Outbox
from soclite.playbooks.runner import PlaybookRunner
from soclite.reports.archive import ReportArchive
from soclite.reports.scheduler import ReportScheduler
from soclite.store import Store, open_store

HitKind = Literal["rule_hits", "exception_hits"]


class PipelineHandle(Protocol):
    """The detection pipeline as the API sees it: in this process or a supervised child."""

    def start(self) -> None: ...

    def stop(self) -> object: ...

    def health_warnings(self) -> list[str]: ...

    def shared_hits(self, kind: HitKind) -> dict[str, int] | None:
        """Hit counts kept by a pipeline in another process; None when this process's engine counts."""
        ...


@dataclass(eq=False)
class Runtime:
    settings: Settings
    store: Store
    #: the control-plane database (identity, triage state, cases, exceptions, agents, commands)
    control: Database
    identity: IdentityStore
    #: enrolled agents and their host bindings
    agents: AgentRegistry
    #: commands for agents (isolate/release), polled by agents
    commands: CommandQueue
    #: the durable outbox of playbook actions, and the IoC lists
    outbox: Outbox
    #: numbered, hashed reports
    reports: ReportArchive
    #: ingest journal: set where this process ingests or consumes
    journal: Journal | None = None
    #: the Sigma engine: in the server for the API (rule list, rule test), in the detection process for events
    engine: Engine | None = None
    playbooks: PlaybookRunner | None = None
    pipeline: PipelineHandle | None = None
    scheduler: ReportScheduler | None = None
    #: the national connector, built on first use (its options are checked then)
    national_connector: Connector | None = None
    #: last Windows event log channel state reported per (agent, channel), to log changes only
    wineventlog_states: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Open the stores and repositories of one server process (no threads, no listeners)."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(settings)
        control = Database(settings.data_dir / "control.db", MIGRATIONS, name="control")
        return cls(
            settings=settings,
            store=store,
            control=control,
            identity=IdentityStore(control),
            agents=AgentRegistry.open(settings.data_dir),
            commands=CommandQueue.from_settings(settings, store),
            outbox=Outbox.from_settings(settings),
            reports=ReportArchive(settings.data_dir),
        )

    def require_engine(self) -> Engine:
        if self.engine is None:
            raise ServiceUnavailable("the Sigma engine is not loaded in this process")
        return self.engine

    def require_journal(self) -> Journal:
        if self.journal is None:
            raise ServiceUnavailable("the ingest journal is not open in this process")
        return self.journal

    def close(self) -> None:
        for part in (self.engine, self.journal):
            if part is not None:
                part.close()
        self.reports.close()
        self.outbox.close()
        self.commands.close()
        self.agents.close()
        self.store.close()
        self.control.close()
