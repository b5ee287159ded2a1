"""Tuning from triage: exceptions (Sigma filters) stored in the control database, pushed to the engine.

An exception suppresses one rule's matches whose fields equal given values,
written as a Sigma *filter* (``filter: {rules: [...], selection: ...,
condition: not selection}``) so the correlator applies it like any site
filter, without restart. Expired or disabled exceptions are not pushed;
:func:`sync` runs at start, on every change and periodically (expiry).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import yaml
from pydantic import BaseModel, Field, model_validator

from soclite.api import audit
from soclite.api.identity import Principal
from soclite.errors import NotFoundError, RuleError
from soclite.models import isoformat, new_id, parse_timestamp, utcnow
from soclite.runtime import Runtime

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


def _logsource(runtime: Runtime, rule_id: str, event: dict[str, Any]) -> dict[str, str]:
    engine = runtime.engine
    if engine is not None:
        for info in engine.rules_info():
            if str(getattr(info, "id", "")) == rule_id:
                source = getattr(info, "logsource", None) or {}
                return {k: str(v) for k, v in dict(source).items() if v}
    return {key: str(event[f"logsource.{key}"]) for key in ("product", "category", "service")
            if event.get(f"logsource.{key}")}


def create(runtime: Runtime, principal: Principal, body: ExceptionCreate, scope: frozenset[str] | None) -> dict[str, Any]:
    event: dict[str, Any] = {}
    rule_id = body.rule_id
    unit = principal.unit
    if body.alert_id:
        alert = runtime.store.get_alert(body.alert_id, scope)
        event = alert.event
        rule_id = rule_id or alert.rule_id
        unit = alert.unit or unit
    assert rule_id is not None
    match = dict(body.match) or suggest_match(event)
    if not match:
        raise ValueError("the alert's event has no field to build an exception from; give match explicitly")
    exception_id = new_id()
    title = body.title or f"Exception for {rule_id}"
    # A unit-bound author's exception only suppresses events of its own subtree.
    units = None if principal.unit is None else sorted(scope or {principal.unit})
    text = filter_yaml(exception_id, title, rule_id, _logsource(runtime, rule_id, event), match, units)
    row = {
        "id": exception_id, "rule_id": rule_id, "alert_id": body.alert_id, "title": title, "filter_yaml": text,
        "owner": body.owner, "reason": body.reason, "unit": unit,
        "expires_at": isoformat(body.expires_at) if body.expires_at else None, "enabled": 1,
        "created_by": principal.name, "created_at": isoformat(utcnow()),
    }
    # Compile it in the engine first: a filter the engine refuses is a 422 and is not stored.
    sync(runtime, extra=[(exception_id, text)])
    with runtime.control.write() as conn:
        conn.execute(
            f"INSERT INTO rule_exceptions ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            tuple(row.values()),
        )
    audit.record(runtime, principal, "exception.create", f"exception:{exception_id}", None, row, unit)
    sync(runtime)
    return get(runtime, exception_id, scope)


def _rows(runtime: Runtime) -> list[dict[str, Any]]:
    return [dict(r) for r in runtime.control.reader().execute(
        "SELECT * FROM rule_exceptions ORDER BY created_at DESC").fetchall()]


def _expired(row: dict[str, Any], now: datetime) -> bool:
    return bool(row.get("expires_at")) and parse_timestamp(str(row["expires_at"])) <= now


def shared_hits(runtime: Runtime, kind: str) -> dict[str, int] | None:
    """Hit counts (``kind``: "rule_hits" or "exception_hits") of a pipeline running in another process.

    None when the pipeline runs in this process: the engine here is the one that counts.
    """
    reader = getattr(runtime.pipeline, kind, None)
    if not callable(reader):
        return None
    try:
        return {str(k): int(v) for k, v in dict(reader()).items()}
    except Exception:  # the list must render even if the hit table is busy
        log.exception("reading %s of the pipeline process failed", kind)
        return {}


def list_all(runtime: Runtime, scope: frozenset[str] | None) -> list[dict[str, Any]]:
    shared = shared_hits(runtime, "exception_hits")
    hits: dict[str, int] = shared or {}
    if runtime.engine is not None and shared is None:
        try:
            hits = dict(runtime.engine.exception_hits())
        except Exception:  # the list must render even if the engine is busy reloading
            log.exception("exception_hits failed")
    now = utcnow()
    out = []
    for row in _rows(runtime):
        if scope is not None and row.get("unit") not in scope:
            continue
        row["enabled"] = bool(row["enabled"])
        row["expired"] = _expired(row, now)
        row["active"] = row["enabled"] and not row["expired"]
        row["suppressed"] = int(hits.get(row["id"], 0))
        out.append(row)
    return out


def get(runtime: Runtime, exception_id: str, scope: frozenset[str] | None) -> dict[str, Any]:
    for row in list_all(runtime, scope):
        if row["id"] == exception_id:
            return row
    raise NotFoundError(f"exception {exception_id} not found")


def set_enabled(runtime: Runtime, principal: Principal, exception_id: str, enabled: bool,
                scope: frozenset[str] | None) -> dict[str, Any]:
    before = get(runtime, exception_id, scope)
    with runtime.control.write() as conn:
        conn.execute("UPDATE rule_exceptions SET enabled = ? WHERE id = ?", (1 if enabled else 0, exception_id))
    audit.record(runtime, principal, "exception.enable" if enabled else "exception.disable",
                 f"exception:{exception_id}", {"enabled": before["enabled"]}, {"enabled": enabled}, before["unit"])
    sync(runtime)
    return get(runtime, exception_id, scope)


def active_exceptions(runtime: Runtime) -> list[tuple[str, str]]:
    """(id, filter YAML) of the enabled, unexpired exceptions: what :func:`sync` pushes."""
    now = utcnow()
    return [(r["id"], r["filter_yaml"]) for r in _rows(runtime) if r["enabled"] and not _expired(r, now)]


def sync(runtime: Runtime, extra: list[tuple[str, str]] | None = None) -> int:
    """Push the active exceptions (plus ``extra``) to the engine, replacing its set; return how many.

    A stored exception the engine no longer accepts (e.g. after an upgrade) is
    skipped and logged rather than blocking every other one; ``extra`` must compile.
    """
    active = active_exceptions(runtime)
    engine = runtime.engine
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


# --- rule enable/disable -------------------------------------------------------------------------
# The engine holds the enabled flag in memory; the control DB holds what admins chose, and
# :func:`apply_rule_states` re-applies it at every start. Only a province-wide admin may change
# it: a rule is shared by every unit, so a unit-bound user disabling it would blind the others.


def may_toggle_rules(principal: Principal) -> bool:
    return principal.role.value == "admin" and principal.unit is None


def set_rule_enabled(runtime: Runtime, principal: Principal, rule_id: str, enabled: bool, before: bool | None) -> None:
    """Apply to the engine (NotFoundError for an unknown rule), persist, audit."""
    engine = runtime.engine
    if engine is None:
        raise NotFoundError("the correlator is not running in this process")
    engine.set_rule_enabled(rule_id, enabled)
    with runtime.control.write() as conn:
        conn.execute(
            "INSERT INTO rule_state (rule_id, enabled, changed_by, changed_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(rule_id) DO UPDATE SET enabled = excluded.enabled, changed_by = excluded.changed_by, "
            "changed_at = excluded.changed_at",
            (rule_id, 1 if enabled else 0, principal.name, isoformat(utcnow())),
        )
    audit.record(runtime, principal, "rule.enable" if enabled else "rule.disable", f"rule:{rule_id}",
                 {"enabled": before}, {"enabled": enabled}, None)


def apply_rule_states(runtime: Runtime) -> int:
    """Re-apply the stored enabled/disabled choices to the engine; return how many were applied.

    A stored rule the engine no longer has (removed from the rule files) is skipped and logged.
    """
    engine = runtime.engine
    if engine is None:
        return 0
    applied = 0
    for rule_id, enabled in rule_states(runtime).items():
        try:
            engine.set_rule_enabled(rule_id, enabled)
            applied += 1
        except NotFoundError:
            log.warning("stored state of rule %s not applied: the rule is no longer loaded", rule_id)
    return applied


def rule_states(runtime: Runtime) -> dict[str, bool]:
    """What admins chose: rule id → enabled (rules never toggled are absent)."""
    rows = runtime.control.reader().execute("SELECT rule_id, enabled FROM rule_state ORDER BY rule_id")
    return {str(row[0]): bool(row[1]) for row in rows.fetchall()}
