"""Sigma correlation rules over sliding windows, with state that survives a restart.

A correlation rule watches the matches of its base rules, grouped by the
``group-by`` fields (through ``aliases`` when the base rules name them
differently), inside ``timespan`` of *event* time. Supported types:
event_count, value_count, temporal, temporal_ordered, value_sum, value_avg,
value_percentile and value_median. When the condition holds the group fires
once and is reset, so a burst gives one alert rather than one per event.

Sigma 2.1's extended temporal conditions (``condition: a and not b``, a boolean
expression over the base rules' names instead of a count) are evaluated on each
base-rule match: a name is true when that rule matched in the group's window.
A ``not`` therefore means "has not matched so far in the window" — a stream
cannot wait for the window's end. For ``temporal_ordered`` the rules that must
be true (not under a ``not``) must also have matched in the order they appear in
the expression.

State is bounded (``max_groups`` per rule, oldest evicted; ``max_entries`` per
group) and expires with the window; :meth:`Windows.save` writes it as JSON
(atomic rename) and :meth:`Windows.load` restores it.

An event counts once per (correlation, base rule): the pipeline replays a batch
whose alerts could not be stored (and, after a crash, the journal replays what
was not committed), so the same ``event.id`` can arrive twice. A bounded LRU
of the (correlation, base rule, event id) triples already counted -- kept
apart from the groups, because a group that fired is reset and a replayed
burst must not fire it again -- drops the repeats. It is saved with the state.
"""

from __future__ import annotations

import json
import logging
import operator
import os
import statistics
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigma.correlations import (
    CorrelationConditionAND,
    CorrelationConditionItem,
    CorrelationConditionNOT,
    CorrelationConditionOR,
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
)

from soclite.correlator.runtime import as_number, to_str
from soclite.errors import RuleError

log = logging.getLogger(__name__)

_OPS: dict[SigmaCorrelationConditionOperator, Callable[[Any, Any], bool]] = {
    SigmaCorrelationConditionOperator.LT: operator.lt,
    SigmaCorrelationConditionOperator.LTE: operator.le,
    SigmaCorrelationConditionOperator.GT: operator.gt,
    SigmaCorrelationConditionOperator.GTE: operator.ge,
    SigmaCorrelationConditionOperator.EQ: operator.eq,
    SigmaCorrelationConditionOperator.NEQ: operator.ne,
}

Entry = list[Any]  # [epoch seconds, base rule id, value]


@dataclass
class Correlation:
    """One compiled correlation rule."""

    id: str
    title: str
    level: str
    type: SigmaCorrelationType
    rule_ids: list[str]  # base rule ids, in the rule's order (matters for temporal_ordered)
    group_by: list[str]
    timespan: int
    op: SigmaCorrelationConditionOperator
    count: float
    value_field: str | None
    percentile: int | None
    aliases: dict[str, dict[str, str]]  # alias → base rule id → field
    generate: bool
    source: str
    tags: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    falsepositives: list[str] = field(default_factory=list)
    description: str | None = None
    enabled: bool = True
    hits: int = 0
    #: when it last fired (epoch seconds), None if never since the process started
    last_fired: float | None = None
    #: an extended temporal condition, compiled: ("rule", id) | ("and"|"or", [..]) | ("not", [x])
    expression: Any = None

    def field_for(self, name: str, rule_id: str) -> str:
        alias = self.aliases.get(name)
        if alias is not None and rule_id in alias:
            return alias[rule_id]
        return name


def compile_correlation(rule: SigmaCorrelationRule, source: str, resolve: dict[str, str]) -> Correlation:
    """``resolve`` maps base-rule names and ids to rule ids; unknown references are a RuleError."""
    refs: list[str] = []
    for ref in rule.rules or []:
        rid = resolve.get(ref.reference)
        if rid is None:
            raise RuleError(f"correlation refers to unknown rule '{ref.reference}'")
        refs.append(rid)
    cond = rule.condition
    expression = None
    if isinstance(cond, SigmaExtendedCorrelationCondition):
        # pySigma accepts a string condition only for temporal/temporal_ordered; rules may be omitted
        expression = _compile_expression(cond.parsed, resolve)
        for name in cond.get_referenced_rules():
            rid = resolve[name]  # _compile_expression checked every name
            if rid not in refs:
                refs.append(rid)
        cond = SigmaCorrelationCondition(op=SigmaCorrelationConditionOperator.GTE, count=1)
    if not isinstance(cond, SigmaCorrelationCondition):
        if (
            rule.type in (SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED)
            and cond is None
        ):
            cond = SigmaCorrelationCondition(op=SigmaCorrelationConditionOperator.GTE, count=len(refs))
        else:
            raise RuleError("extended correlation conditions are not supported")
    aliases: dict[str, dict[str, str]] = {}
    for alias in rule.aliases:
        aliases[alias.alias] = {}
        for ref, fname in alias.mapping.items():
            rid = resolve.get(ref.reference)
            if rid is None:
                raise RuleError(f"alias {alias.alias} refers to unknown rule '{ref.reference}'")
            aliases[alias.alias][rid] = fname
    value_field = cond.fieldref if isinstance(cond.fieldref, str) else None
    needs_field = {
        SigmaCorrelationType.VALUE_COUNT,
        SigmaCorrelationType.VALUE_SUM,
        SigmaCorrelationType.VALUE_AVG,
        SigmaCorrelationType.VALUE_PERCENTILE,
        SigmaCorrelationType.VALUE_MEDIAN,
    }
    if rule.type in needs_field and not value_field:
        raise RuleError(f"{rule.type.name.lower()} correlation needs condition.field")
    return Correlation(
        id=str(rule.id) if rule.id else source,
        title=rule.title,
        level=str(rule.level.name).lower() if rule.level else "medium",
        type=rule.type,
        rule_ids=refs,
        group_by=list(rule.group_by or []),
        timespan=int(rule.timespan.seconds),
        op=cond.op,
        count=cond.count,
        value_field=value_field,
        percentile=cond.percentile,
        aliases=aliases,
        generate=bool(rule.generate),
        source=source,
        tags=[str(t) for t in rule.tags],
        references=list(rule.references or []),
        falsepositives=[str(f) for f in (rule.falsepositives or [])],
        description=rule.description,
        expression=expression,
    )


def _compile_expression(node: CorrelationConditionItem | SigmaRuleReference, resolve: dict[str, str]) -> Any:
    if isinstance(node, SigmaRuleReference):
        rid = resolve.get(node.reference)
        if rid is None:
            raise RuleError(f"correlation condition refers to unknown rule '{node.reference}'")
        return ("rule", rid)
    kind = {CorrelationConditionAND: "and", CorrelationConditionOR: "or", CorrelationConditionNOT: "not"}.get(type(node))
    if kind is None:
        raise RuleError(f"unsupported correlation condition element {type(node).__name__}")
    return (kind, [_compile_expression(arg, resolve) for arg in node.args])


def _evaluate(expression: Any, present: set[str]) -> bool:
    kind, arg = expression
    if kind == "rule":
        return arg in present
    if kind == "not":
        return not _evaluate(arg[0], present)
    if kind == "and":
        return all(_evaluate(a, present) for a in arg)
    return any(_evaluate(a, present) for a in arg)


def _required(expression: Any, negated: bool = False) -> list[str]:
    """The rules named outside any ``not``, in order of appearance (for temporal_ordered)."""
    kind, arg = expression
    if kind == "rule":
        return [] if negated else [arg]
    out: list[str] = []
    for a in arg:
        for rid in _required(a, negated or kind == "not"):
            if rid not in out:
                out.append(rid)
    return out


@dataclass
class Fired:
    correlation: Correlation
    group: dict[str, Any]
    entries: int


class Windows:
    """Window state of every correlation rule (see module docstring)."""

    def __init__(
        self,
        correlations: list[Correlation],
        *,
        max_groups: int = 10_000,
        max_entries: int = 10_000,
        max_seen: int = 50_000,
    ) -> None:
        self.correlations = correlations
        self.by_rule: dict[str, list[Correlation]] = {}
        for corr in correlations:
            for rid in dict.fromkeys(corr.rule_ids):
                self.by_rule.setdefault(rid, []).append(corr)
        self.max_groups = max_groups
        self.max_entries = max_entries
        self.state: dict[str, OrderedDict[str, list[Entry]]] = {c.id: OrderedDict() for c in correlations}
        self.dirty = False
        #: (correlation id, base rule id, event id) already counted, oldest first (see module docstring)
        self.seen: dict[tuple[str, str, str], None] = {}
        self.max_seen = max_seen
        self.replayed = 0

    def _first_time(self, corr_id: str, rule_id: str, event_id: Any) -> bool:
        """Record the event for this correlation; False if it was counted already (a replay)."""
        if type(event_id) is not str or not event_id:
            return True  # no id (e.g. hunting over files): nothing to recognise a replay by
        key = (corr_id, rule_id, event_id)
        seen = self.seen
        if key in seen:
            self.replayed += 1
            return False
        seen[key] = None
        if len(seen) > self.max_seen:
            del seen[next(iter(seen))]
        return True

    def on_match(self, rule_id: str, event: dict[str, Any], ts: float) -> list[Fired]:
        fired: list[Fired] = []
        for corr in self.by_rule.get(rule_id, ()):
            if not corr.enabled:
                continue
            group = {g: event.get(corr.field_for(g, rule_id)) for g in corr.group_by}
            if corr.group_by and all(v is None for v in group.values()):
                continue  # nothing to group on: the event cannot take part
            gkey = json.dumps([to_str(v) if v is not None else None for v in group.values()])
            value = None
            if corr.value_field:
                value = event.get(corr.field_for(corr.value_field, rule_id))
                if value is None:
                    continue
            if not self._first_time(corr.id, rule_id, event.get("event.id")):
                continue
            groups = self.state[corr.id]
            entries = groups.get(gkey)
            if entries is None:
                entries = groups[gkey] = []
                if len(groups) > self.max_groups:
                    groups.popitem(last=False)
            else:
                groups.move_to_end(gkey)
            entries.append(
                [ts, rule_id, value if value is None or isinstance(value, (int, float)) else to_str(value)]
            )
            horizon = ts - corr.timespan
            while entries and entries[0][0] < horizon:
                entries.pop(0)
            if len(entries) > self.max_entries:
                del entries[: len(entries) - self.max_entries]
            self.dirty = True
            if self._holds(corr, entries):
                fired.append(Fired(corr, group, len(entries)))
                del groups[gkey]
        return fired

    def _holds(self, corr: Correlation, entries: list[Entry]) -> bool:
        op = _OPS[corr.op]
        t = corr.type
        if corr.expression is not None:
            present = {e[1] for e in entries}
            if not _evaluate(corr.expression, present):
                return False
            if t is SigmaCorrelationType.TEMPORAL_ORDERED:
                wanted = [rid for rid in _required(corr.expression) if rid in present]
                return not wanted or _ordered(wanted, entries)
            return True
        if t is SigmaCorrelationType.EVENT_COUNT:
            return bool(op(len(entries), corr.count))
        if t is SigmaCorrelationType.VALUE_COUNT:
            return bool(op(len({e[2] for e in entries}), corr.count))
        if t is SigmaCorrelationType.TEMPORAL:
            return bool(op(len({e[1] for e in entries}), corr.count))
        if t is SigmaCorrelationType.TEMPORAL_ORDERED:
            return _ordered(corr.rule_ids, entries)
        numbers = [n for e in entries if (n := as_number(e[2])) is not None]
        if not numbers:
            return False
        if t is SigmaCorrelationType.VALUE_SUM:
            agg: float = sum(numbers)
        elif t is SigmaCorrelationType.VALUE_AVG:
            agg = statistics.fmean(numbers)
        elif t is SigmaCorrelationType.VALUE_MEDIAN:
            agg = statistics.median(numbers)
        else:
            agg = _percentile(numbers, corr.percentile or 50)
        return bool(op(agg, corr.count))

    def expire(self, now: float) -> None:
        """Drop groups whose newest entry is older than the rule's timespan."""
        for corr in self.correlations:
            groups = self.state[corr.id]
            stale = [
                k for k, entries in groups.items() if not entries or entries[-1][0] < now - corr.timespan
            ]
            for k in stale:
                del groups[k]
                self.dirty = True

    # -- persistence ---------------------------------------------------------
    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {cid: list(groups.items()) for cid, groups in self.state.items() if groups}
        tmp = path.with_suffix(".tmp")
        doc = {"version": 1, "windows": body, "seen": list(self.seen)}
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, path)
        self.dirty = False

    def load(self, path: Path) -> int:
        """Restore state saved by :meth:`save`; state of rules no longer loaded is dropped. Returns groups restored."""
        if not path.exists():
            return 0
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            windows = data["windows"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("correlation state %s unreadable, starting empty: %s", path, exc)
            return 0
        restored = 0
        seen = data.get("seen") if isinstance(data, dict) else None
        if isinstance(seen, list):
            for item in seen[-self.max_seen :]:
                if isinstance(item, list) and len(item) == 3 and item[0] in self.state:
                    self.seen[(str(item[0]), str(item[1]), str(item[2]))] = None
        for cid, groups in windows.items():
            if cid not in self.state:
                continue
            for gkey, entries in groups:
                self.state[cid][gkey] = [list(e) for e in entries][-self.max_entries :]
                restored += 1
        return restored


def _ordered(rule_ids: list[str], entries: list[Entry]) -> bool:
    """Did the base rules match in their listed order inside the window?"""
    want = 0
    for entry in entries:
        if entry[1] == rule_ids[want]:
            want += 1
            if want == len(rule_ids):
                return True
    return False


def _percentile(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
