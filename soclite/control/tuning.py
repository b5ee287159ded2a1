"""Tuning from triage: exceptions (Sigma filters) stored in the control database, pushed to the engine.

An exception suppresses one rule's matches whose fields equal given values,
written as a Sigma *filter* (``filter: {rules: [...], selection: ...,
condition: not selection}``) so the correlator applies it like any site
filter, without restart. Expired or disabled exceptions are not pushed;
:meth:`Tuning.sync` runs at start, on every change and periodically (expiry).

Rule enable/disable: the engine holds the enabled flag in memory; the control DB holds what admins
chose, and :meth:`Tuning.apply_rule_states` re-applies it at every start. Only a province-wide admin
may change it: a rule is shared by every unit, so a unit-bound user disabling it would blind the others.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, Field, model_validator

from soclite.control import audit
from soclite.db import Database
from soclite.errors import NotFoundError, RuleError
from soclite.models import isoformat, new_id, parse_timestamp, utcnow
from soclite.store.base import Store

if TYPE_CHECKING:
    from soclite.correlator.engine import Engine

log = logging.getLogger(__name__)


class ExceptionCreate(BaseModel):
    model_config = {"extra": "forbid"}

    rule_id: str | None = Field(None, min_length=1, max_length=255)
    alert_id: str | None = Field(None, min_length=1, max_length=64)
    #: exact field values that identify the benign activity, e.g. {"Image": "C:\\\\Tools\\\\backup.exe"}
    match: dict[str, str] = Field(default_factory=dict, max_length=20)
    owner: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)
    expires_at: datetime | None = None
    title: str | None = Field(None, max_length=300)

    @model_validator(mode="after")
    def _check(self) -> ExceptionCreate:
        if not self.rule_id and not self.alert_id:
            raise ValueError("give rule_id or alert_id")
        if not self.match and not self.alert_id:
            raise ValueError("give match (field: value) or alert_id to take them from")
        for name in self.match:
            if not name.strip() or "|" in name:
                raise ValueError(f"invalid field name {name!r} (no modifiers here; exact match only)")
        if self.expires_at is not None:
            expiry = self.expires_at if self.expires_at.tzinfo else self.expires_at.replace(tzinfo=UTC)
            if expiry <= utcnow():
                raise ValueError("expires_at must be in the future")
            self.expires_at = expiry
        return self


#: event fields worth proposing for an exception, most specific first
SUGGESTED_FIELDS = (
    "Image", "process.executable", "ParentImage", "CommandLine", "process.command_line", "TargetFilename",
    "User", "user.name", "QueryName", "dns.question.name", "DestinationIp", "destination.ip", "source.ip",
    "ServiceName", "TargetObject", "url.original", "file.hash.sha256", "host.name",
)


def suggest_match(event: dict[str, Any]) -> dict[str, str]:
    return {name: str(event[name]) for name in SUGGESTED_FIELDS if event.get(name) not in (None, "")}


def filter_yaml(exception_id: str, title: str, rule_id: str, logsource: dict[str, str], match: dict[str, str],
                units: list[str] | None = None) -> str:
    """The Sigma filter text; ``units`` (a unit-bound author's subtree) limits it to those units' events.

    The engine applies filters to every event of the rule, so without the
    ``unit_scope`` selection an analyst of one commune could silence a rule for
    the whole province; province-wide authors (``units`` None) write global filters.
    """
    body: dict[str, Any] = {"rules": [rule_id], "selection": dict(match), "condition": "not selection"}
    if units is not None:
        body = {"rules": [rule_id], "selection": dict(match), "unit_scope": {"soclite.unit": sorted(units)},
                "condition": "not (selection and unit_scope)"}
    doc = {
        "title": title,
        "id": exception_id,
        "description": "soclite exception created from triage",
        "logsource": logsource or {"product": "any"},
        "filter": body,
    }
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def _logsource(engine: Engine | None, rule_id: str, event: dict[str, Any]) -> dict[str, str]:
    if engine is not None:
        for info in engine.rules_info():
            if str(getattr(info, "id", "")) == rule_id:
                source = getattr(info, "logsource", None) or {}
                return {k: str(v) for k, v in dict(source).items() if v}
    return {key: str(event[f"logsource.{key}"]) for key in ("product", "category", "service")
            if event.get(f"logsource.{key}")}


def _expired(row: dict[str, Any], now: datetime) -> bool:
    return bool(row.get("expires_at")) and parse_timestamp(str(row["expires_at"])) <= now


def may_toggle_rules(role: str, unit: str | None) -> bool:
    """Only a province-wide admin may enable or disable a rule (it is shared by every unit)."""
    return role == "admin" and unit is None


class Tuning:
    """Exceptions and rule states in the control database, pushed to an engine (``engine`` None: none runs here)."""

    def __init__(self, db: Database, store: Store) -> None:
        self.db = db
        self.store = store

    # --- exceptions -----------------------------------------------------------------------------
    def create(self, body: ExceptionCreate, *, name: str, actor: str, unit: str | None,
               scope: frozenset[str] | None, engine: Engine | None) -> str:
        """Store a new exception (compiled by ``engine`` first); return its id.

        ``unit`` is the author's unit: a unit-bound author's exception only suppresses events of its
        own subtree (``scope``). ValueError when nothing identifies the activity; RuleError when the
        engine refuses the filter (then nothing is stored).
        """
        event: dict[str, Any] = {}
        rule_id = body.rule_id
        exception_unit = unit
        if body.alert_id:
            alert = self.store.get_alert(body.alert_id, scope)
            event = alert.event
            rule_id = rule_id or alert.rule_id
            exception_unit = alert.unit or exception_unit
        assert rule_id is not None
        if engine is not None and rule_id not in {str(info.id) for info in engine.rules_info()}:
            # An exception for a rule that is not loaded suppresses nothing, and would start
            # suppressing a later rule that happens to take that id: refuse it, naming the id.
            raise RuleError(f"unknown rule id {rule_id!r}: no loaded rule has it (see GET /api/v1/rules)")
        match = dict(body.match) or suggest_match(event)
        if not match:
            raise ValueError("the alert's event has no field to build an exception from; give match explicitly")
        exception_id = new_id()
        title = body.title or f"Exception for {rule_id}"
        units = None if unit is None else sorted(scope or {unit})
        text = filter_yaml(exception_id, title, rule_id, _logsource(engine, rule_id, event), match, units)
        row = {
            "id": exception_id, "rule_id": rule_id, "alert_id": body.alert_id, "title": title, "filter_yaml": text,
            "owner": body.owner, "reason": body.reason, "unit": exception_unit,
            "expires_at": isoformat(body.expires_at) if body.expires_at else None, "enabled": 1,
            "created_by": name, "created_at": isoformat(utcnow()),
        }
        # Compile it in the engine first: a filter the engine refuses is a 422 and is not stored.
        self.sync(engine, extra=[(exception_id, text)])
        with self.db.write() as conn:
            conn.execute(
                f"INSERT INTO rule_exceptions ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                tuple(row.values()),
            )
        audit.append(self.store, actor, "exception.create", f"exception:{exception_id}", None, row, exception_unit)
        self.sync(engine)
        return exception_id

    def rows(self) -> list[dict[str, Any]]:
        """Every stored exception, newest first, as stored."""
        return [dict(r) for r in self.db.reader().execute(
            "SELECT * FROM rule_exceptions ORDER BY created_at DESC").fetchall()]

    def list_exceptions(self, scope: frozenset[str] | None, hits: dict[str, int]) -> list[dict[str, Any]]:
        """The exceptions in ``scope`` with their state (enabled, expired, active) and suppressed counts."""
        now = utcnow()
        out = []
        for row in self.rows():
            if scope is not None and row.get("unit") not in scope:
                continue
            row["enabled"] = bool(row["enabled"])
            row["expired"] = _expired(row, now)
            row["active"] = row["enabled"] and not row["expired"]
            row["suppressed"] = int(hits.get(row["id"], 0))
            out.append(row)
        return out

    def get(self, exception_id: str, scope: frozenset[str] | None, hits: dict[str, int]) -> dict[str, Any]:
        for row in self.list_exceptions(scope, hits):
            if row["id"] == exception_id:
                return row
        raise NotFoundError(f"exception {exception_id} not found")

    def set_enabled(self, exception_id: str, enabled: bool, *, actor: str, scope: frozenset[str] | None,
                    engine: Engine | None) -> None:
        before = self.get(exception_id, scope, {})
        with self.db.write() as conn:
            conn.execute("UPDATE rule_exceptions SET enabled = ? WHERE id = ?", (1 if enabled else 0, exception_id))
        audit.append(self.store, actor, "exception.enable" if enabled else "exception.disable",
                     f"exception:{exception_id}", {"enabled": before["enabled"]}, {"enabled": enabled},
                     before["unit"])
        self.sync(engine)

    def active_exceptions(self) -> list[tuple[str, str]]:
        """(id, filter YAML) of the enabled, unexpired exceptions: what :meth:`sync` pushes."""
        now = utcnow()
        return [(r["id"], r["filter_yaml"]) for r in self.rows() if r["enabled"] and not _expired(r, now)]

    def sync(self, engine: Engine | None, extra: list[tuple[str, str]] | None = None) -> int:
        """Push the active exceptions (plus ``extra``) to the engine, replacing its set; return how many.

        A stored exception the engine no longer accepts (e.g. after an upgrade) is
        skipped and logged rather than blocking every other one; ``extra`` must compile.
        """
        active = self.active_exceptions()
        if engine is None:
            return len(active) + len(extra or [])
        try:
            engine.set_exceptions(active + list(extra or []))
        except RuleError:
            good = []
            for item in active:
                try:
                    engine.set_exceptions([item])
                    good.append(item)
                except RuleError as exc:
                    log.error("exception %s is not applied: %s", item[0], exc)
            try:
                engine.set_exceptions(good + list(extra or []))
            except RuleError:
                engine.set_exceptions(good)
                raise
            active = good
        return len(active) + len(extra or [])

    # --- rule enable/disable ------------------------------------------------------------------------
    def set_rule_enabled(self, rule_id: str, enabled: bool, before: bool | None, *, name: str, actor: str,
                         engine: Engine | None) -> None:
        """Apply to the engine (NotFoundError for an unknown rule), persist, audit."""
        if engine is None:
            raise NotFoundError("the correlator is not running in this process")
        engine.set_rule_enabled(rule_id, enabled)
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO rule_state (rule_id, enabled, changed_by, changed_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(rule_id) DO UPDATE SET enabled = excluded.enabled, changed_by = excluded.changed_by, "
                "changed_at = excluded.changed_at",
                (rule_id, 1 if enabled else 0, name, isoformat(utcnow())),
            )
        audit.append(self.store, actor, "rule.enable" if enabled else "rule.disable", f"rule:{rule_id}",
                     {"enabled": before}, {"enabled": enabled}, None)

    def apply_rule_states(self, engine: Engine | None) -> int:
        """Re-apply the stored enabled/disabled choices to the engine; return how many were applied.

        A stored rule the engine no longer has (removed from the rule files) is skipped and logged.
        """
        if engine is None:
            return 0
        applied = 0
        for rule_id, enabled in self.rule_states().items():
            try:
                engine.set_rule_enabled(rule_id, enabled)
                applied += 1
            except NotFoundError:
                log.warning("stored state of rule %s not applied: the rule is no longer loaded", rule_id)
        return applied

    def rule_states(self) -> dict[str, bool]:
        """What admins chose: rule id → enabled (rules never toggled are absent)."""
        rows = self.db.reader().execute("SELECT rule_id, enabled FROM rule_state ORDER BY rule_id")
        return {str(row[0]): bool(row[1]) for row in rows.fetchall()}
