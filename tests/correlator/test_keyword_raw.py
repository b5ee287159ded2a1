"""The keyword scan over a record's own JSON line (Engine.match's ``raw``) stays exact.

``soclite hunt`` and the benchmark hand the engine the line an event was decoded from, so the
keyword rules search that text instead of a fresh dump of the event. Any producer's JSON may differ
from orjson's: whitespace between tokens, ``\\uXXXX`` for any character, ``\\/`` for a slash. Those
must send the event to the joined values, and keys a mapper added after the record's own are
searched apart.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from soclite.collectors.windows import map_in_place
from tests.correlator.helpers import keyword_engine, windows_keyword_engines
from tests.correlator.test_keyword_json import EVENTS, PROOF

#: SigmaHQ "Mimikatz Use"-like literals, number-proof, without quote, space, comma, bracket, brace or
#: backslash; and two found only in the repr of a dict inside a list (test_keyword_json.REPR_ONLY)
MIMI = ["sekurlsa::", "kerberos::golden", "mimidrv.sys", "eo.oe.kiwi", "istanbul", "kelvin", "c:", "windows/mimidrv"]
REPR_ONLY = [*MIMI, "x08abc", "200bz"]


def _json_events() -> list[dict[str, Any]]:
    """The shared events that JSON can carry (a decoded record holds only JSON's types)."""
    out = []
    for event in EVENTS:
        try:
            decoded = orjson.loads(orjson.dumps(event))
        except TypeError:  # datetimes, bytes, ints past 64 bits
            continue
        if decoded == event:  # not NaN (JSON has none), not an Enum or a str subclass
            out.append(decoded)
    out += [
        {"Items": [{"k": "SEKURLSA::"}], "Text": "x"},
        {"Items": ["x", {"k": "v"}]},  # its repr holds PROOF's "{'k': 'v'}", its JSON does not
        {"Items": [1, {"k": ["kerberos::golden"]}]},
        {"Path": "C:/Windows/mimidrv.sys", "Items": ["a/b"]},
        {"Name": "Ph\u1ea1m V\u0103n \u0130stanbul", "Dept": "S\u1edf"},
        {"Note": "back\\slash \\u0041 and \\/ as text", "Cmd": "sekurlsa:: \"quoted\""},
        {"Items": [{"k": "\x08abc"}], "Text": "x"},  # the repr writes \x08, JSON \b
        {"Items": ["y", {"k": "\x08abc"}]},  # the dict after a comma
        {"Items": [{"k": "a\u200bz"}]},  # the repr writes \u200b, orjson the character
    ]
    return out


#: the same record as different producers write it
ENCODINGS = {
    "orjson": orjson.dumps,
    "ensure_ascii": lambda ev: json.dumps(ev).encode(),
    "spaced": lambda ev: json.dumps(ev, ensure_ascii=False, separators=(" , ", " : ")).encode(),
    "indented": lambda ev: json.dumps(ev, ensure_ascii=False, indent=2).encode(),
    # runs of whitespace between "[" or "," and "{": longer than the dict-in-list sentinel's bound,
    # and exactly at it and one past it (the two sentinels' edges)
    "wide indent": lambda ev: json.dumps(ev, ensure_ascii=False, indent=24).encode(),
    "16 after a comma": lambda ev: json.dumps(ev, ensure_ascii=False, separators=("," + " " * 16, ":")).encode(),
    "17 after a comma": lambda ev: json.dumps(ev, ensure_ascii=False, separators=("," + "\t" * 17, ":")).encode(),
    "slashes": lambda ev: json.dumps(ev, ensure_ascii=False).replace("/", "\\/").encode(),
    "crlf line": lambda ev: orjson.dumps(ev) + b"\r\n",
}


@pytest.mark.parametrize("words", [PROOF, MIMI, REPR_ONLY], ids=["proof", "mimikatz", "repr-only"])
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_raw_scan_agrees_with_exhaustive(words: list[str], encoding: str) -> None:
    indexed, exhaustive = keyword_engine(words, indexed=True), keyword_engine(words, indexed=False)
    for event in _json_events():
        raw = ENCODINGS[encoding]({"logsource.product": "test", **event})
        ev = orjson.loads(raw)
        got = [r.title for r in indexed.match(dict(ev), raw)]
        want = [r.title for r in exhaustive.match(dict(ev))]
        assert got == want, (encoding, event)


def test_added_keys_are_searched_apart() -> None:
    """Keys after ``raw_keys`` (a mapper's additions) need not be in the text."""
    indexed = keyword_engine(MIMI, indexed=True)
    raw = orjson.dumps({"logsource.product": "test", "Text": "nothing"})
    cases: list[tuple[Any, list[str]]] = [
        ("copied: SEKURLSA::", ["keywords 0"]),
        (["x", "mimidrv.sys"], ["keywords 2"]),
        ([{"k": "kerberos::golden"}], ["keywords 1"]),
        ("\u212aELVIN", ["keywords 5"]),
        ("\ud800 lone surrogate, then sekurlsa::", ["keywords 0"]),  # orjson cannot print it
        (4104, []),
        ({"k": "sekurlsa::"}, []),  # a dict value is not searched
    ]
    for added, want in cases:
        ev = orjson.loads(raw)
        keys = len(ev)
        ev["Added"] = added
        for _ in range(2):  # the second time from the memo
            assert [r.title for r in indexed.match(dict(ev), raw, keys)] == want, added


def test_the_text_is_taken_at_its_word() -> None:
    """The engine searches the line it is given rather than dumping the event: a line that does not
    hold the event's values (a caller breaking the contract) is not second-guessed."""
    indexed = keyword_engine(MIMI, indexed=True)
    ev = {"logsource.product": "test", "Text": "sekurlsa::"}
    index_probe = indexed.match(dict(ev))
    assert [r.title for r in index_probe] == ["keywords 0"]
    index = next(i for i in indexed._indexes.values() if i.rules)
    if index.raw_scanner is None:
        pytest.skip("needs Hyperscan")
    assert indexed.match(dict(ev), orjson.dumps({"logsource.product": "test", "Text": "x"})) == []


def test_nxlog_record_mapped_in_place_keeps_the_line_exact() -> None:
    """map_in_place keeps the record's values and adds its keys after them: a keyword only in an added
    key (event 104's System channel) is still found."""
    engine, exhaustive = windows_keyword_engines("System anywhere", ["system"])
    record = {
        "EventID": "104",
        "Channel": "Security",
        "SourceName": "Microsoft-Windows-Eventlog",
        "Hostname": "ws-01",
        "EventTime": "2026-12-07 10:00:00",
    }
    raw = orjson.dumps(record)
    assert b"ystem" not in raw.lower()
    decoded = orjson.loads(raw)
    event, keys = map_in_place(decoded)
    assert event is decoded and event["System_Channel"] == "System"
    assert keys == len(record) + 2  # Computer and Provider_Name copied; the channel is derived
    assert [r.title for r in exhaustive.match(dict(event))] == ["System anywhere"]
    assert [r.title for r in engine.match(dict(event), raw, keys)] == ["System anywhere"]


def test_map_in_place_counts_the_copies_it_appends() -> None:
    """map_in_place tells the engine which appended keys are copies of the record's values (their text
    is in the line: not searched apart) and which it derived (searched apart): a keyword only in the
    derived timestamp still fires, and the count is really used (a wrong one misses it)."""
    engine, exhaustive = windows_keyword_engines("Timestamp", ["12-07t03:00"])
    record = {
        "EventID": "4688",
        "Channel": "Security",
        "Hostname": "ws-01",
        "SourceName": "Microsoft-Windows-Security-Auditing",
        "RecordNumber": 7,
        "EventTime": "2026-12-07 10:00:00",
    }
    raw = orjson.dumps(record)
    event, keys = map_in_place(orjson.loads(raw), default_tz="Asia/Ho_Chi_Minh")
    assert list(event)[len(record) :] == ["Computer", "Provider_Name", "EventRecordID", "host.name", "@timestamp"]
    assert keys == len(record) + 4
    assert [r.title for r in exhaustive.match(dict(event))] == ["Timestamp"]
    assert [r.title for r in engine.match(dict(event), raw, keys)] == ["Timestamp"]
    index = next(i for i in engine._indexes.values() if i.rules)
    if index.raw_scanner is not None:  # the line alone does not hold it
        assert engine.match(dict(event), raw, len(event)) == []
    winlogbeat = {"winlog": {"event_id": 1, "channel": "Security"}, "@timestamp": "2026-12-07T03:00:00Z"}
    assert map_in_place(winlogbeat)[1] is None


def test_map_in_place_counts_only_a_host_name_that_is_the_computer_itself() -> None:
    """host.name is str() of the computer: the same text only when the computer's name is a string. Of
    a dict or a list, str() makes a repr the line does not hold: not counted, so searched apart."""
    engine, exhaustive = windows_keyword_engines("Repr of a host", ["{'k'", "['ws"])
    for host in ({"k": "hostalpha"}, ["ws-01"], "ws-01"):
        record = {"EventID": 4688, "Channel": "Security", "Hostname": host, "@timestamp": "2026-12-07T03:00:00Z"}
        raw = orjson.dumps(record)
        event, keys = map_in_place(orjson.loads(raw))
        assert list(event)[len(record) :] == ["Computer", "host.name"]
        assert keys == len(record) + (2 if isinstance(host, str) else 1)
        want = [r.title for r in exhaustive.match(dict(event))]
        assert want == ([] if isinstance(host, str) else ["Repr of a host"])
        assert [r.title for r in engine.match(dict(event), raw, keys)] == want
