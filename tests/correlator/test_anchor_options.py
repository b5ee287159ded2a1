"""Anchor options: every one a rule offers is necessary for it to match (so any the index uses is exact),
and OR conditions and ``null`` values offer the selective ones the learning can pick."""

from __future__ import annotations

import gzip
from typing import Any

import orjson

from soclite.collectors.windows import from_json_record, iter_evtx
from soclite.correlator.anchors import Anchor
from soclite.correlator.engine import Engine
from soclite.correlator.loader import CompiledRule, RuleSet, load_text
from soclite.correlator.runtime import ALL, Lowered, as_number, to_str
from tests.correlator.conftest import DATASET
from tests.correlator.helpers import RULE_HEAD
from tests.correlator.regression import cases

#: SigmaHQ's "HackTool - SysmonEnte Execution" shape: an OR whose first operand is an AND
OR_OF_AND = RULE_HEAD + r"""
    sel_target:
        TargetImage|contains:
            - ':\Windows\Sysmon.exe'
            - ':\Windows\Sysmon64.exe'
        GrantedAccess: '0x1400'
    sel_trace:
        CallTrace: 'Ente'
    filter:
        SourceImage|contains: ':\Program Files\'
    condition: (sel_target and not filter) or sel_trace
"""

#: SigmaHQ's "Signed DLL Loaded With Missing PE Version Metadata" shape: empty or missing metadata
EMPTY_OR_NULL = RULE_HEAD + r"""
    sel_empty:
        Description:
            - '-'
            - ''
    sel_null:
        Description: null
    condition: sel_empty or sel_null
"""


def _rule(text: str) -> tuple[RuleSet, CompiledRule]:
    rs = RuleSet()
    load_text(text, "inline", rs, {})
    assert not rs.failures and len(rs.rules) == 1
    return rs, rs.rules[0]


def present(anchor: Anchor, event: dict[str, Any]) -> bool:
    """Whether ``event`` holds ``anchor``, read from the anchor kinds' definitions (correlator.anchors),
    not from the index's code."""
    field, kind, lit = anchor
    if field == ALL:
        return lit in Lowered(event)[ALL]
    value = event.get(field)
    if kind == "null":
        return value is None
    if value is None:
        return False
    text = to_str(value).lower()
    if kind == "eq":
        return text == lit
    if kind == "num":
        number = as_number(value)
        return number is not None and number == int(lit)
    if kind == "rx":  # found by the regex's literals on ASCII text; a non-ASCII value is always a candidate
        return lit in text or not text.isascii()
    return lit in text


def test_an_or_offers_a_combination_of_its_operands_options() -> None:
    _, rule = _rule(OR_OF_AND)
    trace = ("CallTrace", "eq", "ente")
    target = {("TargetImage", "sub", ":\\windows\\sysmon.exe"), ("TargetImage", "sub", ":\\windows\\sysmon64.exe")}
    assert frozenset({("GrantedAccess", "eq", "0x1400"), trace}) in rule.anchor_options
    assert frozenset({*target, trace}) in rule.anchor_options


def test_null_offers_a_missing_field_anchor() -> None:
    rs, rule = _rule(EMPTY_OR_NULL)
    assert rule.anchors == frozenset(
        {("Description", "eq", "-"), ("Description", "eq", ""), ("Description", "null", "")}
    )
    indexed, exhaustive = Engine(rs), Engine(rs, indexed=False)
    events: list[dict[str, Any]] = [
        {},
        {"Description": None},
        {"Description": ""},
        {"Description": "-"},
        {"Description": []},
        {"Description": [""]},
        {"Description": "Windows DLL"},
        {"Description": 0},
        {"Description": False},
        {"Description": {"k": ""}},
    ]
    for event in events:
        ev = {"logsource.product": "test", **event}
        got = [r.id for r in indexed.match(dict(ev))]
        assert got == [r.id for r in exhaustive.match(dict(ev))], event
    assert [len(indexed.match({"logsource.product": "test", **e})) for e in events[:6]] == [1] * 6
    # a described DLL leaves the rule out of the candidates: it is not even evaluated
    ev = {"logsource.product": "test", "Description": "Windows DLL"}
    _, index = indexed._index_for(ev)
    assert index.candidates(ev, Lowered(ev)) == []


def _necessary_everywhere(engine: Engine, events: list[dict[str, Any]]) -> int:
    """Checks every option of every rule that matches: returns how many (rule, event) matches were checked."""
    checked = 0
    for event in events:
        ev = dict(event)
        for rule in engine.match(ev):  # (ev now carries the field aliases its type maps)
            for option in rule.anchor_options:
                assert any(present(a, ev) for a in option), (rule.title, sorted(option), event)
            checked += 1
    return checked


def test_every_option_of_the_regression_rules_is_necessary(regression_ruleset: RuleSet) -> None:
    engine = Engine(regression_ruleset, indexed=False)
    events = [e for c in cases() for e in iter_evtx(c.evtx)]
    assert _necessary_everywhere(engine, events) >= 202
    assert sum(len(r.anchor_options) > 1 for r in regression_ruleset.rules) > 50


def test_every_option_is_necessary_on_real_attack_data(windows_ruleset: RuleSet) -> None:
    events = []
    with gzip.open(DATASET, "rb") as fh:
        for i, line in enumerate(fh):
            if i >= 20_000:
                break
            try:
                events.append(from_json_record(orjson.loads(line)))
            except orjson.JSONDecodeError:
                continue
    assert _necessary_everywhere(Engine(windows_ruleset, indexed=False), events) >= 100
