"""Information systems and their security level (cấp độ an toàn hệ thống thông tin, 1 to 5).

An information system has an owner (chủ quản), an operator (đơn vị vận hành), a security level with its
approval (status, decision) and covers hosts — listed one by one, or all hosts of listed units. It belongs
to a unit: a unit-bound admin sees and edits the systems of its units only. Every change is audited.

The level decides how long a host's logs are kept: the highest level of the systems the host belongs to
gives a minimum (``settings.compliance.retention_months_by_level``, from TCVN 14423), never lowered by the
store's own ``retention_days``. :func:`retention_plan` turns the inventory into a per-host plan the stores
enforce (``Store.apply_retention``): everything older than ``retention_days`` goes, except the events and
alerts of hosts (listed by id or name) and units (all their hosts) whose level keeps them longer.
:func:`retention_cutoff` is the single longest cut-off, for display.
"""

from __future__ import annotations

import calendar
import contextlib
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from soclite.config import Settings
from soclite.control import audit
from soclite.db import Database
from soclite.errors import NotFoundError, RequestError
from soclite.models import isoformat, new_id, utcnow
from soclite.store.base import KeepLonger, RetentionPlan, RetentionResult, Store

ApprovalStatus = Literal["not_submitted", "submitted", "approved", "rejected"]
DeploymentState = Literal["planned", "deploying", "operating", "retired"]

_FIELDS = (
    "name", "owner", "operator", "level", "approval_status", "approval_decision", "security_regulation",
    "expected_approval_date", "deployment_state", "expected_completion", "review_done", "unit",
)


class SystemCreate(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=300)
    owner: str = Field(min_length=1, max_length=300)
    operator: str = Field(min_length=1, max_length=300)
    level: int = Field(ge=1, le=5)
    approval_status: ApprovalStatus = "not_submitted"
    #: number and date of the decision approving the level, e.g. "123/QĐ-UBND ngày 01/02/2026"
    approval_decision: str | None = Field(None, max_length=300)
    #: the security regulation (quy chế bảo đảm an toàn) in force for the system, if any
    security_regulation: str | None = Field(None, max_length=300)
    expected_approval_date: str | None = Field(None, max_length=32)
    deployment_state: DeploymentState | None = None
    expected_completion: str | None = Field(None, max_length=32)
    review_done: bool = False
    unit: str | None = Field(None, max_length=64)
    hosts: list[str] = Field(default_factory=list, max_length=10000)
    units: list[str] = Field(default_factory=list, max_length=1000)


class SystemPatch(BaseModel):
    model_config = {"extra": "forbid"}

    name: str | None = Field(None, min_length=1, max_length=300)
    owner: str | None = Field(None, min_length=1, max_length=300)
    operator: str | None = Field(None, min_length=1, max_length=300)
    level: int | None = Field(None, ge=1, le=5)
    approval_status: ApprovalStatus | None = None
    approval_decision: str | None = Field(None, max_length=300)
    security_regulation: str | None = Field(None, max_length=300)
    expected_approval_date: str | None = Field(None, max_length=32)
    deployment_state: DeploymentState | None = None
    expected_completion: str | None = Field(None, max_length=32)
    review_done: bool | None = None
    hosts: list[str] | None = Field(None, max_length=10000)
    units: list[str] | None = Field(None, max_length=1000)


def _visible(system: dict[str, Any], scope: frozenset[str] | None) -> bool:
    return scope is None or system.get("unit") in scope


def months_before(ts: datetime, months: int) -> datetime:
    """The same wall time ``months`` calendar months earlier (the 31st becomes the month's last day)."""
    month_index = ts.year * 12 + ts.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(ts.day, calendar.monthrange(year, month + 1)[1])
    return ts.replace(year=year, month=month + 1, day=day)


class InfoSystems:
    """The ``info_systems`` tables of control.db."""

    def __init__(self, db: Database, store: Store) -> None:
        self.db = db
        self.store = store

    # --- reading -------------------------------------------------------------------------------
    def _load(self, row: Any) -> dict[str, Any]:
        system = dict(row)
        system["review_done"] = bool(system["review_done"])
        reader = self.db.reader()
        system["hosts"] = [r[0] for r in reader.execute(
            "SELECT host_id FROM info_system_hosts WHERE system_id = ? ORDER BY host_id", (system["id"],))]
        system["units"] = [r[0] for r in reader.execute(
            "SELECT unit FROM info_system_units WHERE system_id = ? ORDER BY unit", (system["id"],))]
        return system

    def get(self, system_id: str, scope: frozenset[str] | None) -> dict[str, Any]:
        row = self.db.reader().execute("SELECT * FROM info_systems WHERE id = ?", (system_id,)).fetchone()
        if row is None or not _visible(dict(row), scope):
            raise NotFoundError(f"information system {system_id} not found")
        return self._load(row)

    def list_systems(self, scope: frozenset[str] | None) -> list[dict[str, Any]]:
        rows = self.db.reader().execute("SELECT * FROM info_systems ORDER BY level DESC, name").fetchall()
        return [self._load(r) for r in rows if _visible(dict(r), scope)]

    # --- writing -------------------------------------------------------------------------------
    def _check_scope(self, units: list[str | None], scope: frozenset[str] | None) -> None:
        if scope is None:
            return
        for unit in units:
            if unit not in scope:
                raise NotFoundError(f"unit {unit} not found")

    def _set_members(self, conn: Any, system_id: str, hosts: list[str] | None, units: list[str] | None) -> None:
        if hosts is not None:
            conn.execute("DELETE FROM info_system_hosts WHERE system_id = ?", (system_id,))
            conn.executemany("INSERT INTO info_system_hosts (system_id, host_id) VALUES (?, ?)",
                             [(system_id, h.lower()) for h in dict.fromkeys(hosts)])
        if units is not None:
            conn.execute("DELETE FROM info_system_units WHERE system_id = ?", (system_id,))
            conn.executemany("INSERT INTO info_system_units (system_id, unit) VALUES (?, ?)",
                             [(system_id, u) for u in dict.fromkeys(units)])

    def _check_hosts(self, hosts: list[str], scope: frozenset[str] | None) -> None:
        for host_id in hosts:  # all known and visible, or nothing changes
            self.store.get_host(host_id.lower(), scope)

    def create(self, body: SystemCreate, *, actor: str, unit: str | None,
               scope: frozenset[str] | None) -> dict[str, Any]:
        """A new system in ``body.unit`` or else ``unit`` (the creator's)."""
        owner_unit = body.unit or unit
        self._check_scope([owner_unit, *body.units], scope)
        self._check_hosts(body.hosts, scope)
        system_id = new_id()[:12]
        now = isoformat(utcnow())
        values = body.model_dump(include=set(_FIELDS)) | {"unit": owner_unit}
        values["review_done"] = int(values["review_done"])
        with self.db.write() as conn:
            conn.execute(
                f"INSERT INTO info_systems (id, {', '.join(_FIELDS)}, created_at, updated_at) "
                f"VALUES (?, {', '.join('?' for _ in _FIELDS)}, ?, ?)",
                (system_id, *(values[f] for f in _FIELDS), now, now),
            )
            self._set_members(conn, system_id, body.hosts, body.units)
        system = self.get(system_id, None)
        audit.append(self.store, actor, "system.create", f"system:{system_id}", None, system, owner_unit)
        return system

    def update(self, system_id: str, patch: SystemPatch, *, actor: str,
               scope: frozenset[str] | None) -> dict[str, Any]:
        before = self.get(system_id, scope)
        changes = patch.model_dump(exclude_unset=True, include=set(_FIELDS))
        if "review_done" in changes:
            changes["review_done"] = int(bool(changes["review_done"]))
        for required in ("name", "owner", "operator", "level", "approval_status"):
            if required in changes and changes[required] is None:
                raise RequestError(f"{required} cannot be emptied")
        self._check_scope(list(patch.units or []), scope)
        self._check_hosts(list(patch.hosts or []), scope)
        with self.db.write() as conn:
            if changes:
                sets = ", ".join(f"{name} = ?" for name in changes)
                conn.execute(f"UPDATE info_systems SET {sets}, updated_at = ? WHERE id = ?",
                             (*changes.values(), isoformat(utcnow()), system_id))
            self._set_members(conn, system_id, patch.hosts, patch.units)
        after = self.get(system_id, scope)
        audit.append(self.store, actor, "system.update", f"system:{system_id}", before, after, before.get("unit"))
        return after

    def delete(self, system_id: str, *, actor: str, scope: frozenset[str] | None) -> None:
        before = self.get(system_id, scope)
        with self.db.write() as conn:
            conn.execute("DELETE FROM info_systems WHERE id = ?", (system_id,))
        audit.append(self.store, actor, "system.delete", f"system:{system_id}", before, None, before.get("unit"))

    # --- what the level decides ----------------------------------------------------------------
    def host_level(self, host_id: str, unit: str | None) -> int | None:
        """The highest level of the systems that list the host or its unit; None = in no system."""
        row = self.db.reader().execute(
            "SELECT MAX(s.level) FROM info_systems s WHERE s.id IN ("
            " SELECT system_id FROM info_system_hosts WHERE host_id = ?"
            " UNION SELECT system_id FROM info_system_units WHERE unit = ?)",
            (host_id.lower(), unit if unit is not None else "\x00"),
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def highest_level(self) -> int | None:
        row = self.db.reader().execute(
            "SELECT MAX(level) FROM info_systems s WHERE EXISTS (SELECT 1 FROM info_system_hosts h "
            "WHERE h.system_id = s.id) OR EXISTS (SELECT 1 FROM info_system_units u WHERE u.system_id = s.id)"
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None


def retention_months(level: int | None, settings: Settings) -> int | None:
    """Months a host's logs must be kept for its level; None = no minimum beyond ``store.retention_days``."""
    if level is None:
        return None
    return settings.compliance.retention_months_by_level.get(level)


def host_retention_until(systems: InfoSystems, settings: Settings, host_id: str, unit: str | None,
                         now: datetime) -> datetime:
    """The oldest event time of ``host_id`` that must still be kept at ``now``.

    The later (shorter) of the store's ``retention_days`` and the host's level would allow deletion; the
    level's minimum wins whenever it is longer.
    """
    by_days = now - timedelta(days=settings.store.retention_days)
    months = retention_months(systems.host_level(host_id, unit), settings)
    return min(by_days, months_before(now, months)) if months else by_days


def retention_cutoff(systems: InfoSystems, settings: Settings, now: datetime) -> datetime:
    """The one cut-off for ``Store.delete_events_before``: no host loses logs its level requires.

    The store deletes by time for all hosts at once, so the longest requirement of any host decides.
    """
    by_days = now - timedelta(days=settings.store.retention_days)
    months = retention_months(systems.highest_level(), settings)
    return min(by_days, months_before(now, months)) if months else by_days


def retention_plan(systems: InfoSystems, settings: Settings, now: datetime) -> RetentionPlan:
    """What the stores may delete at ``now``: older than ``retention_days``, except hosts and units whose
    highest level keeps them longer (one keep clause per distinct retention, so a few clauses at most).

    A host listed by id is matched by that id and by its stored name, both lower-cased (events carry
    ``host.name``); a listed unit covers every event and alert of that unit."""
    by_days = now - timedelta(days=settings.store.retention_days)
    host_level: dict[str, int] = {}
    unit_level: dict[str, int] = {}
    reader = systems.db.reader()
    for host_id, level in reader.execute(
        "SELECT h.host_id, MAX(s.level) FROM info_system_hosts h JOIN info_systems s ON s.id = h.system_id "
        "GROUP BY h.host_id"
    ):
        host_level[str(host_id).lower()] = int(level)
    for unit, level in reader.execute(
        "SELECT u.unit, MAX(s.level) FROM info_system_units u JOIN info_systems s ON s.id = u.system_id GROUP BY u.unit"
    ):
        unit_level[str(unit)] = int(level)
    hosts_by_since: dict[datetime, set[str]] = {}
    units_by_since: dict[datetime, set[str]] = {}

    def since_of(level: int) -> datetime | None:
        months = retention_months(level, settings)
        since = months_before(now, months) if months else None
        return since if since is not None and since < by_days else None

    for host_id, level in host_level.items():
        since = since_of(level)
        if since is None:
            continue
        keys = {host_id}
        # a host listed before it was ever seen: its id is all there is to match
        with contextlib.suppress(NotFoundError):
            keys.add(systems.store.get_host(host_id).name.lower())
        hosts_by_since.setdefault(since, set()).update(keys)
    for unit, level in unit_level.items():
        since = since_of(level)
        if since is not None:
            units_by_since.setdefault(since, set()).add(unit)
    keep = tuple(
        KeepLonger(since=since, hosts=frozenset(hosts_by_since.get(since, ())),
                   units=frozenset(units_by_since.get(since, ())))
        for since in sorted(hosts_by_since.keys() | units_by_since.keys())
    )
    return RetentionPlan(before=by_days, keep=keep)


def apply_retention(systems: InfoSystems, store: Store, settings: Settings,
                    now: datetime | None = None) -> RetentionResult:
    """Enforce :func:`retention_plan` on the store (events and alerts); what was deleted."""
    return store.apply_retention(retention_plan(systems, settings, now or utcnow()))


__all__ = [
    "InfoSystems", "SystemCreate", "SystemPatch", "apply_retention", "host_retention_until", "months_before",
    "retention_cutoff", "retention_months", "retention_plan",
]
