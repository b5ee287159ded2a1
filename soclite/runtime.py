"""The runtime: every long-lived part of one soclite process, built once from Settings.

The API, the pipeline, the playbook worker and the scheduler receive this
object (FastAPI reads it from ``app.state.runtime`` through ``api.deps``);
nothing reaches for a global.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from soclite.config import Settings
from soclite.control.agents import AgentRegistry
from soclite.control.cases import Cases
from soclite.control.commands import CommandQueue
from soclite.control.identity import IdentityStore, UserStore
from soclite.control.iocs import IocLists
from soclite.control.reports import ReportIndex
from soclite.control.schema import open_control_db
from soclite.control.triage import Triage
from soclite.control.tuning import Tuning
from soclite.db import Database
from soclite.store import Store, open_store


@dataclass
class Runtime:
    settings: Settings
    store: Store
    #: control.db: the one database of every control repository below (soclite.control.schema)
    control: Database
    #: set by the server wiring when those parts run in this process
    journal: Any = None
    engine: Any = None
    pipeline: Any = None
    outbox: Any = None
    scheduler: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    # --- the control repositories, all over ``control`` (built in __post_init__) ---
    identity: IdentityStore = field(init=False)
    users: UserStore = field(init=False)
    cases: Cases = field(init=False)
    #: alert lifecycle, comments and history
    triage: Triage = field(init=False)
    #: exceptions and rule enable/disable
    tuning: Tuning = field(init=False)
    #: commands for agents (isolate/release), polled by agents; mirrored on the store's hosts
    commands: CommandQueue = field(init=False)
    #: enrollment tokens and enrolled agents
    agents: AgentRegistry = field(init=False)
    #: stored IoC lists
    iocs: IocLists = field(init=False)
    #: the report archive's index and deliveries
    reports: ReportIndex = field(init=False)

    def __post_init__(self) -> None:
        control, store = self.control, self.store
        self.identity = IdentityStore(control)
        self.users = UserStore(control)
        self.cases = Cases(control, store)
        self.triage = Triage(control, store)
        self.tuning = Tuning(control, store)
        self.commands = CommandQueue(control, store)
        self.agents = AgentRegistry(control)
        self.iocs = IocLists(control)
        self.reports = ReportIndex(control)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        control = open_control_db(settings.data_dir)
        try:
            store = open_store(settings)
        except BaseException:
            control.close()
            raise
        return cls(settings=settings, store=store, control=control)

    def close(self) -> None:
        self.store.close()
        self.control.close()
