"""Sigma 2.1 on pySigma 1.x: extended temporal conditions (and/or/not over rules) and global filters
with ``rules: any``; inline YAML, real engine."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from soclite.correlator.engine import Engine
from soclite.correlator.loader import RuleSet, load_text

BASE = """
title: Failed logon
id: 2a2b3c4d-5555-4a4a-9b9b-000000000001
name: failed_logon
status: test
level: low
logsource: {product: linux, service: sshd}
detection:
    selection: {event.outcome: failure}
    condition: selection
---
title: Successful logon
id: 2a2b3c4d-5555-4a4a-9b9b-000000000002
name: success_logon
status: test
level: low
logsource: {product: linux, service: sshd}
detection:
    selection: {event.outcome: success}
    condition: selection
---
title: Port scan
id: 2a2b3c4d-5555-4a4a-9b9b-000000000003
name: port_scan
status: test
level: low
logsource: {category: firewall}
detection:
    selection: {action: drop}
    condition: selection
"""


def engine(kind: str, condition: str, *, rules: str = "", extra: str = "") -> Engine:
    text = BASE + textwrap.dedent(f"""
        ---
        title: Extended {kind}
        id: 2a2b3c4d-5555-4a4a-9b9b-0000000000ff
        status: test
        level: high
        correlation:
            type: {kind}
            {rules}
            group-by: [ip]
            aliases:
                ip: {{failed_logon: source.ip, success_logon: source.ip, port_scan: src_ip}}
            timespan: 10m
            condition: {condition}
        """) + extra  # fmt: skip
    rs = RuleSet()
    load_text(text, "inline", rs, {})
    assert not rs.failures, rs.failures
    return Engine(rs)


def logon(outcome: str, minute: int, ip: str = "203.0.113.9", **extra: Any) -> dict[str, Any]:
    return {"logsource.product": "linux", "logsource.service": "sshd", "event.outcome": outcome, "source.ip": ip,
            "host.name": "srv1", "@timestamp": f"2026-11-23T01:{minute:02d}:00.000Z", **extra}  # fmt: skip


def scan(minute: int, ip: str = "203.0.113.9") -> dict[str, Any]:
    return {"logsource.category": "firewall", "action": "drop", "src_ip": ip, "host.name": "fw1",
            "@timestamp": f"2026-11-23T01:{minute:02d}:00.000Z"}  # fmt: skip


def fired(eng: Engine, events: list[dict[str, Any]]) -> list[int]:
    """Positions of the events on which the correlation fired."""
    return [i for i, e in enumerate(events) if any(a.rule_title.startswith("Extended") for a in eng.process(e))]


def test_and_not_fires_only_without_the_negated_rule() -> None:
    condition = "failed_logon and success_logon and not port_scan"
    assert fired(engine("temporal", condition), [logon("failure", 0), logon("success", 1)]) == [1]
    assert fired(engine("temporal", condition), [scan(0), logon("failure", 1), logon("success", 2)]) == []
    # the scan is of another group (address): it does not count against this one
    assert fired(engine("temporal", condition), [scan(0, "198.51.100.1"), logon("failure", 1), logon("success", 2)]) == [2]
    # outside the window: the failure has expired by the time of the success
    assert fired(engine("temporal", condition), [logon("failure", 0), logon("success", 15)]) == []


def test_or_fires_on_either_rule() -> None:
    eng = engine("temporal", "port_scan or (failed_logon and success_logon)")
    assert fired(eng, [logon("failure", 0), scan(1)]) == [1]
    assert fired(eng, [logon("failure", 0, ip="10.0.0.2"), logon("success", 1, ip="10.0.0.2")]) == [1]


def test_rules_list_is_optional_with_an_extended_condition() -> None:
    eng = engine("temporal", "failed_logon and success_logon")
    assert sorted(eng.correlations[0].rule_ids) == ["2a2b3c4d-5555-4a4a-9b9b-000000000001",
                                                     "2a2b3c4d-5555-4a4a-9b9b-000000000002"]  # fmt: skip
    with_rules = engine("temporal", "failed_logon and success_logon", rules="rules: [failed_logon, success_logon]")
    assert fired(with_rules, [logon("success", 0), logon("failure", 1)]) == [1]  # temporal: any order


def test_temporal_ordered_extended_needs_the_order_of_the_expression() -> None:
    condition = "failed_logon and success_logon and not port_scan"
    assert fired(engine("temporal_ordered", condition), [logon("success", 0), logon("failure", 1)]) == []
    assert fired(engine("temporal_ordered", condition), [logon("failure", 0), logon("success", 1)]) == [1]


@pytest.mark.parametrize(("kind", "condition", "rules", "reason"), [
    ("temporal", "failed_logon and nosuch_rule", "[failed_logon]", "not defined in rules list: nosuch_rule"),
    ("temporal", "failed_logon and nosuch_rule", "[]", "unknown rule 'nosuch_rule'"),
    ("event_count", "failed_logon and success_logon", "[failed_logon]", "only be used with temporal"),
    ("temporal", "failed_logon and and success_logon", "[failed_logon]", "parse"),
])  # fmt: skip
def test_bad_extended_conditions_are_load_failures(kind: str, condition: str, rules: str, reason: str) -> None:
    text = BASE + textwrap.dedent(f"""
        ---
        title: Bad
        id: 2a2b3c4d-5555-4a4a-9b9b-0000000000fe
        correlation:
            type: {kind}
            rules: {rules}
            group-by: [source.ip]
            timespan: 10m
            condition: {condition}
        """)  # fmt: skip
    rs = RuleSet()
    load_text(text, "inline", rs, {})
    if not rs.failures:  # unknown names are found when the correlation is compiled against the rules
        eng = Engine(rs)
        failures = eng.failures
    else:
        failures = rs.failures
    assert any(reason in f.reason for f in failures), failures
    assert len(rs.rules) == 3  # the base rules load all the same


def test_global_filter_with_rules_any_applies_to_every_rule_of_its_logsource() -> None:
    text = BASE + textwrap.dedent("""
        ---
        title: Lab addresses are not attacks
        id: 2a2b3c4d-5555-4a4a-9b9b-0000000000fd
        logsource: {product: linux, service: sshd}
        filter:
            rules: any
            selection:
                source.ip|cidr: 10.99.0.0/16
            condition: not selection
        """)  # fmt: skip
    rs = RuleSet()
    load_text(text, "inline", rs, {})
    assert not rs.failures and len(rs.filters) == 1
    eng = Engine(rs)
    assert [a.rule_title for a in eng.process(logon("failure", 0, ip="10.99.1.1"))] == []
    assert [a.rule_title for a in eng.process(logon("success", 0, ip="10.99.1.1"))] == []
    assert [a.rule_title for a in eng.process(logon("failure", 0, ip="10.1.1.1"))] == ["Failed logon"]
    # another logsource is not filtered
    assert [a.rule_title for a in eng.process(scan(0, "10.99.1.1"))] == ["Port scan"]
