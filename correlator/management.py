"""The engine's management side: what the API and the rules page ask of a running engine.

Rules listed and switched on or off, analysts' exceptions, detection health (counters, last fired,
fields never seen: :mod:`soclite.correlator.health`), "try this rule on this event". Mixed into
:class:`soclite.correlator.engine.Engine`; every change takes the engine's lock and replaces whole
structures, so the detection thread never sees half an update.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soclite.correlator import health
from soclite.correlator.correlation import Correlation
from soclite.correlator.loader import CompiledFilter, CompiledRule, RuleSet, load_text
from soclite.correlator.logsource import LogKey, is_produced
from soclite.errors import NotFoundError, RuleError
from soclite.models import Alert


@dataclass
class RuleInfo:
    id: str
    title: str
    level: str
    status: str
    logsource: dict[str, str]
    tags: list[str]
    source: str
    enabled: bool
    hits: int
    kind: str = "sigma"



class EngineManagement:
    """Management methods of :class:`~soclite.correlator.engine.Engine` (the attributes are the engine's)."""

    rules: list[CompiledRule]
    correlations: list[Correlation]
    filters: list[CompiledFilter]
    placeholders: dict[str, list[str]]
    _lock: Any
    _started: float
    _seen: dict[LogKey, set[str]]
    _indexes: dict[LogKey, Any]
    _fast: dict[Any, Any]
    _scanner_cache: dict[Any, Any]
    _explorers: dict[LogKey, Any]
    _exceptions: list[tuple[str, CompiledFilter]]
    _exception_hits: dict[str, int]
    _filters_for: dict[str, list[CompiledFilter]]

    def rules_info(self) -> list[RuleInfo]:
        out = [
            RuleInfo(r.id, r.title, r.level, r.status, r.logsource, list(r.tags), r.source, r.enabled, r.hits)
            for r in self.rules
        ]
        out += [
            RuleInfo(
                c.id,
                c.title,
                c.level,
                "correlation",
                {},
                list(c.tags),
                c.source,
                c.enabled,
                c.hits,
                "correlation",
            )
            for c in self.correlations
        ]
        return out

    # -- detection health (see correlator.health) -----------------------------------
    def health_snapshot(self) -> health.HealthSnapshot:
        """This engine's counters and seen field names, as the health file holds them."""
        snapshot = health.HealthSnapshot(since=self._started)
        for rule in self.rules:
            snapshot.rules[rule.id] = health.RuleCounters(rule.hits, rule.suppressed, rule.errors, rule.last_fired)
        for corr in self.correlations:
            snapshot.rules[corr.id] = health.RuleCounters(corr.hits, 0, 0, corr.last_fired)
        snapshot.seen = {key: frozenset(fields) for key, fields in list(self._seen.items()) if fields}
        return snapshot

    def _restore_health(self, path: Path) -> None:
        """Keep what a previous run learnt that is not a counter: last fired, and the fields seen."""
        previous = health.read(path)
        if previous is None:
            return
        last = {rid: c.last_fired for rid, c in previous.rules.items() if c.last_fired is not None}
        for rule in self.rules:
            rule.last_fired = last.get(rule.id, rule.last_fired)
        for corr in self.correlations:
            corr.last_fired = last.get(corr.id, corr.last_fired)
        for key, fields in previous.seen.items():
            self._seen.setdefault(key, set()).update(fields)

    def assess(self, snapshot: health.HealthSnapshot | None = None) -> dict[str, health.RuleHealth]:
        """Health of every loaded rule and correlation from ``snapshot`` (default: this engine's own)."""
        snap = snapshot if snapshot is not None else self.health_snapshot()
        out: dict[str, health.RuleHealth] = {}
        by_source: dict[tuple[str | None, str | None, str | None], tuple[bool, set[str] | None]] = {}
        for rule in self.rules:
            counters = snap.rules.get(rule.id, health.RuleCounters())
            where = (rule.product, rule.category, rule.service)
            if where not in by_source:
                by_source[where] = health.source_fields(*where, snap.seen)
            source_seen, union = by_source[where]
            unseen = None if union is None else [f for f in rule.fields if f not in union]
            out[rule.id] = health.RuleHealth(counters.hits, counters.suppressed, counters.errors,
                                             counters.last_fired, source_seen, unseen)  # fmt: skip
        for corr in self.correlations:
            counters = snap.rules.get(corr.id, health.RuleCounters())
            out[corr.id] = health.RuleHealth(counters.hits, 0, 0, counters.last_fired, True, [])
        return out

    def set_rule_enabled(self, rule_id: str, enabled: bool) -> None:
        with self._lock:
            found = False
            for rule in self.rules:
                if rule.id == rule_id:
                    rule.enabled = enabled
                    found = True
            for corr in self.correlations:
                if corr.id == rule_id:
                    corr.enabled = enabled
                    found = True
            if not found:
                raise NotFoundError(f"no rule {rule_id}")
            self._indexes = {}
            self._fast = {}
            self._scanner_cache = {}
            self._explorers = {}  # probe positions refer to the old rule lists: learn again

    def set_exceptions(self, exceptions: list[tuple[str, str]]) -> None:
        """Replace the analysts' exceptions (Sigma filter YAML each); an invalid one raises RuleError, nothing changes."""
        compiled: list[tuple[str, CompiledFilter]] = []
        for exc_id, text in exceptions:
            rs = RuleSet()
            load_text(text, f"exception:{exc_id}", rs, self.placeholders)
            if rs.failures:
                raise RuleError(rs.failures[0].reason, source=f"exception {exc_id}")
            if len(rs.filters) != 1:
                raise RuleError(
                    "an exception must be exactly one Sigma filter document", source=f"exception {exc_id}"
                )
            compiled.append((exc_id, rs.filters[0]))
        with self._lock:
            self._exceptions = compiled
            self._exception_hits = {exc_id: self._exception_hits.get(exc_id, 0) for exc_id, _ in compiled}

    def exception_hits(self) -> dict[str, int]:
        return dict(self._exception_hits)

    def test_rule(self, rule_yaml: str, event: dict[str, Any]) -> list[Alert]:
        """Compile one rule and run it on one event (the rule editor's "try it")."""
        rs = RuleSet()
        load_text(rule_yaml, "test", rs, self.placeholders)
        if rs.failures:
            raise RuleError(rs.failures[0].reason, source=rs.failures[0].source)
        from soclite.correlator.engine import Engine  # the class that mixes this in

        probe = Engine(rs, placeholders=self.placeholders)
        return probe.process(dict(event))

    def unrouted_rules(self) -> list[str]:
        return [r.id for r in self.rules if not is_produced(r.product, r.category, r.service)]

    def _refresh_filters(self) -> None:
        by_rule: dict[str, list[CompiledFilter]] = {}
        for flt in self.filters:
            for rule in self.rules:
                if flt.applies_to(rule):
                    by_rule.setdefault(rule.id, []).append(flt)
        self._filters_for = by_rule
