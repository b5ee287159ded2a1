"""The index's shortcuts (raw scans of non-ASCII text, the JSON keyword text, the learning) stay exact."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from soclite.correlator import cache as file_cache
from soclite.correlator import index as index_module
from soclite.correlator.engine import LEARN_SAMPLES, Engine, _scanners_key
from soclite.correlator.keywords import json_all, json_literal
from soclite.correlator.loader import RuleSet, load_text
from soclite.correlator.runtime import ALL, Lowered
from tests.correlator.helpers import keyword_engine, keyword_rule

# keyword literals with the characters JSON escapes, ASCII folding traps and numbers
WORDS = ["sekurlsa::", 'say "hi"', "c:\\temp\\x", "kelvin", "istanbul", "4711", "true", "1e16", "none"]


#: a fielded rule on some of the events' fields: the index then walks those fields (values memoised,
#: long ones scanned for the keyword literals on their own and left out of the JSON)
FIELDED = r"""
title: fielded
id: 7a0b3c2e-1111-4a4a-9b9b-0000000000ff
status: test
level: high
logsource:
    product: test
detection:
    selection:
        - CommandLine|contains: 'never-there'
        - CommandLine|contains: 'fielded-lit'
        - Name|contains: 'ünï'
        - Items|contains: 'zz'
        - Port|contains: '99'
    condition: selection
"""


def _engine(indexed: bool, fielded: bool = False) -> Engine:
    return keyword_engine(WORDS, indexed=indexed, extra=(FIELDED,) if fielded else ())


EVENTS: list[dict[str, Any]] = [
    {"CommandLine": "mimikatz SEKURLSA::logonpasswords"},
    {"CommandLine": 'echo SAY "HI"'},
    {"Path": "C:\\TEMP\\X\\y.exe"},
    {"Name": "\u212aELVIN"},  # KELVIN SIGN lower-cases to an ASCII k
    {"City": "\u0130STANBUL"},  # İ lower-cases to i + combining dot: no match, but must agree
    {"City": "İstanbul café"},
    {"Port": 4711},
    {"Flag": True},
    {"Big": 1e16},  # to_str gives 10000000000000000, JSON 1e16: the JSON shortcut must step aside
    {"Ratio": 0.5, "Note": "nothing"},
    {"Items": ["a", None, "b"]},  # to_str(None) in a list is "None"
    {"Items": ["x", ["c:\\temp\\x"]]},
    {"Nested": {"k": "sekurlsa::"}},  # dict values are not searched by keywords
    {"Text": "plain ascii without any keyword"},
    {"Text": "ünïcödé only"},
    # longer than LONG_VALUE, in an indexed field (fielded=True): left out of the keyword JSON
    {"CommandLine": "x" * 2000 + " sekurlsa::", "Other": "y"},
    {"CommandLine": "x" * 2000 + " \u212aELVIN", "Other": "y"},
    {"CommandLine": "x" * 2000, "Other": "mimikatz sekurlsa::"},
    # a long value scanned once for the field's and the keyword literals together (with_keywords)
    {"CommandLine": "x" * 2000 + " FIELDED-LIT " + "sekurlsa::", "Other": "y"},
    {"CommandLine": "\u00e9" * 2000 + " Fielded-Lit \u212aELVIN", "Other": "y"},
    {"Name": "\u00fcN\u00cf" * 700 + ' say "hi"', "Other": "y"},
]


@pytest.mark.parametrize("fielded", [False, True])
@pytest.mark.parametrize("event", EVENTS)
def test_keyword_index_agrees_with_exhaustive(event: dict[str, Any], fielded: bool) -> None:
    ev = {"logsource.product": "test", **event}
    got = [r.title + r.id for r in _engine(True, fielded).match(dict(ev))]
    want = [r.title + r.id for r in _engine(False, fielded).match(dict(ev))]
    assert got == want


@pytest.mark.parametrize("fielded", [False, True])
def test_keyword_index_finds_what_it_should(fielded: bool) -> None:
    engine = _engine(True, fielded)

    def hits(event: dict[str, Any]) -> int:
        return len(engine.match({"logsource.product": "test", **event}))

    assert hits(EVENTS[0]) == 1 and hits(EVENTS[1]) == 1 and hits(EVENTS[2]) == 1
    assert hits(EVENTS[3]) == 1  # KELVIN SIGN
    assert hits(EVENTS[6]) == 1 and hits(EVENTS[7]) == 1
    assert hits(EVENTS[10]) == 1  # "none" from the None in a list
    assert hits(EVENTS[11]) == 1
    assert hits(EVENTS[12]) == 0 and hits(EVENTS[13]) == 0
    assert hits(EVENTS[15]) == 1 and hits(EVENTS[16]) == 1 and hits(EVENTS[17]) == 1  # long values
    both = 2 if fielded else 1  # the fielded rule's literal and a keyword in one long value
    assert hits(EVENTS[18]) == both and hits(EVENTS[19]) == both and hits(EVENTS[20]) == both


def test_a_long_value_is_scanned_once_for_field_and_keyword_literals() -> None:
    engine, exhaustive = _engine(True, fielded=True), _engine(False, fielded=True)
    long_events = [{"logsource.product": "test", **e} for e in EVENTS[15:]]
    for _ in range(index_module.COMBINE_AFTER):  # a field's combined scanner comes with its long values
        for ev in long_events:
            assert [r.id for r in engine.match(dict(ev))] == [r.id for r in exhaustive.match(dict(ev))]
    index = next(i for i in engine._indexes.values() if i.rules)
    assert index.long_seen["CommandLine"] == index_module.COMBINE_AFTER
    combined = index.with_keywords["CommandLine"]
    assert combined is not None and combined[0] is not None
    own_scanner = combined[0][0]
    assert own_scanner is not None
    scanned: list[str] = []
    index.with_keywords["CommandLine"] = (
        (lambda text, found: (scanned.append(text), own_scanner(text, found))[1], *combined[0][1:]),
        *combined[1:],
    )
    keyword_scanner = index.keyword_scan
    assert keyword_scanner is not None
    index.keyword_scan = (lambda text, found: scanned.append("keywords again"), keyword_scanner[1])
    ev = long_events[3]  # EVENTS[18]: the fielded literal and a keyword in one long CommandLine
    assert len(engine.match(dict(ev))) == 2
    assert scanned == [ev["CommandLine"]]  # one pass, and the keyword-only scanner never ran
    for ev in long_events:  # after the combine: still what exhaustive evaluation finds
        assert [r.id for r in engine.match(dict(ev))] == [r.id for r in exhaustive.match(dict(ev))]


def test_only_two_characters_lower_case_to_ascii() -> None:
    """The premise of scanning raw non-ASCII text with ASCII case folding."""
    odd = []
    for code in range(0x80, sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        low = chr(code).lower()
        if len(low) != 1 or any(ord(c) < 0x80 for c in low):
            odd.append(code)
    assert odd == [0x130, 0x212A]


def test_json_all_refuses_what_it_cannot_represent() -> None:
    assert json_all({"a": "x", "b": 1, "c": None, "d": {"e": 1.5}, "f": ["g", 2]}) is not None
    assert json_all({"a": 1.0}) is None
    assert json_all({"a": ["x", None]}) is None
    assert json_all({"a": ["x", [1.5]]}) is None
    assert json_all({"a": {1: "non-str key"}}) is None
    assert json_literal('a"b\\c') == 'a\\"b\\\\c'
    assert json_literal("tab\there") is None and json_literal("café") is None
    # a literal in the joined values is in the JSON text, escaped the same way
    ev = {"p": 'C:\\x "q"', "n": 12, "t": True, "l": ["u", "v"]}
    data = json_all(ev)
    assert data is not None
    for value in ('c:\\x "q"', "12", "true", "u", "v"):
        assert value in Lowered(ev)[ALL]
        escaped = json_literal(value)
        assert escaped is not None and escaped.encode() in data.lower()


TWO_OPTIONS = """
title: two options
id: 7a0b3c2e-2222-4a4a-9b9b-000000000001
status: test
level: high
logsource:
    product: test
detection:
    selection:
        CommandLine|contains: 'common-longer-literal'
        User|contains: 'rare'
    condition: selection
"""


def _two_option_events() -> list[dict[str, Any]]:
    """LEARN_SAMPLES and more events where the CommandLine option always hits and the User one never,
    then one event that fires."""
    events: list[dict[str, Any]] = [
        {"logsource.product": "test", "CommandLine": "x common-longer-literal y", "User": f"user{i}"}
        for i in range(LEARN_SAMPLES + 10)
    ]
    events.append({"logsource.product": "test", "CommandLine": "common-longer-literal", "User": "rare one"})
    return events


def test_learning_switches_anchors_once_and_stays_exact() -> None:
    """A rule whose best static anchor is common learns its rarer option after LEARN_SAMPLES events."""
    rs = RuleSet()
    load_text(TWO_OPTIONS, "r", rs, {})
    engine = Engine(rs)
    rid = rs.rules[0].id
    events = _two_option_events()
    hits = [bool(engine.match(dict(e))) for e in events]
    assert hits == [False] * (LEARN_SAMPLES + 10) + [True]
    index = next(iter(engine._indexes.values()))
    assert index.settled and index.rebuilds == 1
    assert next(iter(engine._choices.values())) == {rid: 1}  # the User option, rarer on this stream


def test_learned_anchors_are_kept_with_the_scanners(tmp_path: Path) -> None:
    """save_scanners keeps the learned options: the next engine starts with them, settled (no learning
    scans, no rebuild), and finds the same; an option the rule no longer has is ignored."""
    rs = RuleSet()
    load_text(TWO_OPTIONS, "r", rs, {})
    first = Engine(rs)
    events = _two_option_events()
    want = [bool(first.match(dict(e))) for e in events]
    store = tmp_path / "scanners.cache"
    assert first.save_scanners(store) and not first.save_scanners(store)
    second = Engine(rs)
    assert second.load_scanners(store) > 0
    got = [bool(second.match(dict(e))) for e in events]
    assert got == want and want[-1]
    index = next(iter(second._indexes.values()))
    assert index.settled and index.rebuilds == 0 and index.samples == 0
    assert second._choices == first._choices == {next(iter(first._choices)): {rs.rules[0].id: 1}}
    assert not second.save_scanners(store)  # nothing new
    # a stored option past the rule's options (as an older rule text may leave): the rule's own estimate
    key = next(iter(first._choices))
    assert file_cache.write(store, _scanners_key(), {"databases": {}, "choices": {key: {rs.rules[0].id: 9}}})
    third = Engine(rs)
    third.load_scanners(store)
    assert [bool(third.match(dict(e))) for e in events] == want




MEMO_RULE = r"""
title: memo
id: 7a0b3c2e-3333-4a4a-9b9b-000000000001
status: test
level: high
logsource:
    product: test
detection:
    selection:
        Image|endswith: '\cmd.exe'
        User: 'ALICE'
    condition: selection
"""


def test_memoised_field_values_give_the_same_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    """A repeated short value comes from the memo, lower-cased view included; a full memo starts afresh."""
    monkeypatch.setattr(index_module, "MEMO_SIZE", 2)
    rs = RuleSet()
    load_text(MEMO_RULE, "memo", rs, {})
    indexed, exhaustive = Engine(rs), Engine(rs, indexed=False)
    users = ["alice", "bob", "Alice", "carol", "ALICE", "dave", "alice"]
    events = [
        {"logsource.product": "test", "Image": image, "User": user}
        for user in users
        for image in ("C:\\Windows\\System32\\cmd.exe", "C:\\x\\notepad.exe", "C:\\X\\CMD.EXE")
    ]
    for _ in range(2):
        got = [len(indexed.match(dict(e))) for e in events]
        assert got == [len(exhaustive.match(dict(e))) for e in events]
        assert sum(got) == 2 * 4  # two images, four spellings of alice
    memo = next(iter(indexed._indexes.values())).memo
    assert all(len(values) <= 2 for values in memo.values())


def test_memoised_fields_fill_the_lowered_view() -> None:
    """Every memoised field's lower-cased value is in Lowered after candidates(), on a memo miss and hit alike,
    and equals what Lowered computes itself (İ and the Kelvin sign included)."""
    rs = RuleSet()
    load_text(MEMO_RULE, "memo", rs, {})
    engine = Engine(rs)
    ev = {"logsource.product": "test", "Image": "C:\\İSTANBUL\\\u212aMD.EXE", "User": "Alice"}
    for _ in range(2):  # the first call fills the memo, the second reads it
        event = dict(ev)
        _, index = engine._index_for(event)
        lw = Lowered(event)
        index.candidates(event, lw)
        assert "Image" in index.by_field
        for field in index.by_field:
            assert dict.get(lw, field) == Lowered(event)[field] == event[field].lower()


def test_a_learning_rebuild_keeps_counting_long_values() -> None:
    """The combined field+keyword scanner of a field comes after COMBINE_AFTER long values of the event type,
    not of each index: the index rebuilt by learning goes on from the count (it compiled mid-stream later)."""
    rule = """
title: two options
id: 7a0b3c2e-2222-4a4a-9b9b-000000000002
status: test
level: high
logsource:
    product: test
detection:
    selection:
        CommandLine|contains: 'common-longer-literal'
        User|contains: 'rare'
    condition: selection
"""
    rs = RuleSet()
    load_text(rule, "r", rs, {})
    load_text(keyword_rule(1, "sekurlsa::"), "kw", rs, {})
    load_text(FIELDED, "fielded", rs, {})  # keeps CommandLine literals in the index when the rule above learns User
    engine, exhaustive = Engine(rs), Engine(rs, indexed=False)
    pad = "x" * index_module.LONG_VALUE
    events = [
        {"logsource.product": "test", "CommandLine": f"{pad} common-longer-literal {i}", "User": f"user{i}"}
        for i in range(LEARN_SAMPLES + 3)
    ]
    events.append({"logsource.product": "test", "CommandLine": f"{pad} common-longer-literal", "User": "rare"})
    events.append({"logsource.product": "test", "CommandLine": f"{pad} sekurlsa::", "User": "bob"})
    for ev in events:
        assert [r.id for r in engine.match(dict(ev))] == [r.id for r in exhaustive.match(dict(ev))]
    index = next(iter(engine._indexes.values()))
    if index.keyword_scan is None:  # no Hyperscan: no JSON keyword path, no combined scanner
        pytest.skip("needs Hyperscan")
    assert index.rebuilds == 1
    # the count stops once the combined scanner is built; a rebuilt index restarting from 0 would have 2
    assert index.long_seen["CommandLine"] > index_module.COMBINE_AFTER
    assert index.with_keywords.get("CommandLine") is not None
