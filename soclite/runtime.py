"""The runtime: every long-lived part of one soclite process, built once from Settings.

The API, the pipeline, the playbook worker and the scheduler receive this
object (FastAPI reads it from ``app.state.runtime`` through ``api.deps``);
nothing reaches for a global.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from soclite.config import Settings
from soclite.db import Database
from soclite.store import Store, open_store


@dataclass
class Runtime:
    settings: Settings
    store: Store
    #: the control-plane database: identity, triage state (comments, cases, exceptions)
    control: Database
    identity: Any
    #: set by the server wiring when those parts run in this process
    journal: Any = None
    engine: Any = None
    pipeline: Any = None
    outbox: Any = None
    #: collectors.commands.CommandQueue: commands for agents (isolate/release), polled by agents
    commands: Any = None
    scheduler: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        from soclite.api.identity import MIGRATIONS, IdentityStore

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        control = Database(settings.data_dir / "control.db", MIGRATIONS, name="control")
        store = open_store(settings)
        return cls(settings=settings, store=store, control=control, identity=IdentityStore(control))

    def close(self) -> None:
        self.store.close()
        self.control.close()
