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

from soclite.collectors.inputs import RunningInput
from soclite.config import Settings
from soclite.control.agents import AgentRegistry
from soclite.control.attachments import CaseAttachments
from soclite.control.cases import Cases
from soclite.control.commands import CommandQueue
from soclite.control.hunts import HuntJobs
from soclite.control.identity import IdentityStore, UserStore
from soclite.control.incidents import Incidents
from soclite.control.iocs import IocLists
from soclite.control.notify_rules import NotificationRules
from soclite.control.report_schedules import ReportSchedules
from soclite.control.reviews import Reviews
from soclite.control.saved_searches import SavedSearches
from soclite.control.schema import open_control_db
from soclite.control.systems import InfoSystems
from soclite.control.trend_warnings import TrendWarnings
from soclite.control.triage import Triage
from soclite.control.tuning import Tuning
from soclite.correlator.engine import Engine
from soclite.db import Database
from soclite.errors import ServiceUnavailable
from soclite.playbooks.connectors.base import Connector
from soclite.playbooks.outbox import Outbox
from soclite.playbooks.runner import PlaybookRunner
from soclite.playbooks.user_notify import UserNotifier
from soclite.reports.archive import ReportArchive
from soclite.reports.scheduler import ReportScheduler
from soclite.store import Store, open_store
from soclite.store.journal import Journal

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
    #: control.db: the one database of every control repository below (soclite.control.schema)
    control: Database
    #: the durable outbox of playbook actions (its rows live in control.db)
    outbox: Outbox
    #: ingest journal: set where this process ingests or consumes
    journal: Journal | None = None
    #: the Sigma engine: in the server for the API (rule list, rule test), in the detection process for events
    engine: Engine | None = None
    playbooks: PlaybookRunner | None = None
    #: per-user alert notifications (where alerts are made, and the digests in the playbook worker)
    notifier: UserNotifier | None = None
    pipeline: PipelineHandle | None = None
    scheduler: ReportScheduler | None = None
    #: the syslog listeners of this process (their counters feed /metrics, /health and the overview)
    inputs: list[RunningInput] = field(default_factory=list)
    #: the national connector, built on first use (its options are checked then)
    national_connector: Connector | None = None
    #: last Windows event log channel state reported per (agent, channel), to log changes only
    wineventlog_states: dict[tuple[str, str], str] = field(default_factory=dict)
    # --- the control repositories, all over ``control`` (built in __post_init__) ---
    identity: IdentityStore = field(init=False)
    users: UserStore = field(init=False)
    cases: Cases = field(init=False)
    #: files attached to cases (under data_dir/attachments)
    attachments: CaseAttachments = field(init=False)
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
    #: numbered, hashed reports: files under data_dir/reports, their index in control.db
    reports: ReportArchive = field(init=False)
    #: information systems, their security level and the hosts/units they cover
    systems: InfoSystems = field(init=False)
    #: log reviews and alert-threshold tunings owed by each system's level, recorded when done
    reviews: Reviews = field(init=False)
    #: rises flagged by statistical trend detection (the notification centre lists the last day's)
    trend_warnings: TrendWarnings = field(init=False)
    #: incidents with their legal clock
    incidents: Incidents = field(init=False)
    #: retro-hunt jobs (a Sigma rule over stored events) and their hits
    hunts: HuntJobs = field(init=False)
    #: Discover's saved searches (per user, shared within a unit)
    saved_searches: SavedSearches = field(init=False)
    #: each user's alert notification rules, quiet hours, rate limit and deliveries
    notification_rules: NotificationRules = field(init=False)
    #: report schedules made in the web UI (the settings file's are in settings.reports.schedules)
    report_schedules: ReportSchedules = field(init=False)

    def __post_init__(self) -> None:
        control, store = self.control, self.store
        self.identity = IdentityStore(control)
        self.users = UserStore(control, min_password_score=self.settings.auth.min_password_score)
        self.cases = Cases(control, store)
        self.attachments = CaseAttachments(control, self.settings.data_dir, self.settings.cases, self.cases)
        self.triage = Triage(control, store)
        self.tuning = Tuning(control, store)
        self.commands = CommandQueue(control, store)
        self.agents = AgentRegistry(control)
        self.iocs = IocLists(control)
        self.reports = ReportArchive(self.settings.data_dir, control)
        self.systems = InfoSystems(control, store)
        self.reviews = Reviews(control, self.systems)
        self.trend_warnings = TrendWarnings(control)
        self.incidents = Incidents(control, store)
        self.hunts = HuntJobs(
            control, store, archive_dir=self.settings.data_dir / "archive",
            placeholders={k: list(v) for k, v in self.settings.correlator.placeholders.items()},
        )
        self.saved_searches = SavedSearches(control)
        self.notification_rules = NotificationRules(control)
        self.report_schedules = ReportSchedules(control)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Open the stores and repositories of one server process (no threads, no listeners)."""
        control = open_control_db(settings.data_dir)
        try:
            store = open_store(settings, wait_for_remote=True)
        except BaseException:
            control.close()
            raise
        return cls(settings=settings, store=store, control=control, outbox=Outbox.from_settings(settings, control))

    def degraded(self) -> list[str]:
        """Reasons the server is losing or refusing data right now; /health then says "degraded"."""
        reasons: list[str] = []
        if self.journal is not None:
            reasons.extend(self.journal.degraded())
        for running in self.inputs:
            reasons.extend(running.degraded())
        return reasons

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
        # The repositories share control.db: closing it (last) closes them all.
        self.reports.close()
        self.outbox.close()
        self.store.close()
        self.control.close()
