"""The keyword scan over an event's values as JSON (index.json_all) stays exact.

With number-proof keyword literals (each has a character no number, bool or None prints) floats
and None inside lists take the JSON path too, without a walk over the values' types; everything
JSON cannot print as to_str does (dicts in lists, datetimes, str subclasses) must still step aside to
the joined values. An Enum reads as its value, as it is stored.
"""

from __future__ import annotations

import enum
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from soclite.correlator.engine import Engine
from soclite.correlator.keywords import json_all, json_literal, number_proof
from soclite.correlator.runtime import ALL, Lowered
from tests.correlator.helpers import keyword_engine

#: number-proof literals only, with what JSON escapes (quotes, backslashes) and the SigmaHQ
#: "Mimikatz Use" rule's shapes (``::``, a Windows path with a backslash)
PROOF = ["sekurlsa::", 'say "hi"', "c:\\temp\\x", "\\mimilib.dll", "kelvin", "istanbul", "plain", "{'k': 'v'}"]


class Color(enum.Enum):
    RED = "plain"  # to_str gives the value, as JSON does (not "Color.RED")
    NESTED = {"k": "v"}  # a dict value: not searched, as a dict is not


class Level(enum.IntEnum):
    HIGH = 3


class Text(str):
    pass


def _engine(words: list[str], indexed: bool) -> Engine:
    return keyword_engine(words, indexed=indexed)


EVENTS: list[dict[str, Any]] = [
    {"Image": "C:\\Windows\\System32\\mimilib.dll", "EventID": 7, "Ratio": 0.25},
    {"CommandLine": 'cmd /c echo SAY "HI"', "Big": 1e16, "Nan": math.nan, "Inf": -math.inf},
    {"Path": "C:\\TEMP\\X\\y.exe", "Items": [None, 1.5, "a"]},
    {"Items": ["x", [2.5, ["mimikatz SEKURLSA::"]]], "N": 3},
    {"Items": [{"k": "sekurlsa::"}]},  # to_str of the list holds the dict's repr: searched
    {"Items": [[{"k": "c:\\temp\\x"}]]},  # the repr doubles the backslashes: no match, must agree
    {"Nested": {"k": "sekurlsa::", "f": 1.5}},  # top-level dict values are not searched
    {"Name": "\u212aELVIN", "Score": 0.5},  # KELVIN SIGN lower-cases to an ASCII k
    {"City": "\u0130STANBUL", "Score": 0.5},  # İ lower-cases to i + a combining dot
    {"City": "İstanbul café", "Items": ["ünï", None]},
    {"Colour": Color.RED},
    {"Colour": [Color.RED]},
    {"Colour": Color.NESTED, "Level": Level.HIGH, "Id": uuid.UUID(int=7)},
    {"Items": [Color.NESTED]},
    {"Text": "a list of dicts prints [{ or ,{ in JSON", "Items": ["x"]},
    {"When": datetime(2024, 1, 1, tzinfo=UTC), "Text": "sekurlsa::"},
    {"Sub": Text("SEKURLSA::"), "F": 2.0},
    {"Huge": 2**70, "Text": "no keyword here"},
    {"Text": "nothing", "F": 1.0, "Items": [1.0, None, True]},
    {"Bytes": b"sekurlsa::", "Text": "x"},
    {"Text": "\ud800 a lone surrogate, then SEKURLSA::"},  # Python's json lets one through; orjson does not
    # a dict inside a list reads as its repr (REPR_ONLY): escapes and object names that JSON lacks
    {"Items": [{"k": "\x08abc"}], "Text": "x"},
    {"Items": [{"k": "a\u200bz"}]},
    {"Items": [{"id": uuid.UUID(int=7), "c": Color.RED}]},
]


#: number-proof literals with no quote, space, comma, bracket or backslash, which a dict's repr
#: still holds where its JSON does not: the tail of an escape JSON writes otherwise (\x08 for \b,
#: \u200b for a raw zero-width space) and the name repr gives an object (UUID, an Enum member);
#: with two ordinary ones ("sekurlsa::", and "plain", Color.RED's value)
REPR_ONLY = ["sekurlsa::", "x08abc", "200bz", "uuid", "color.red", "plain"]


@pytest.mark.parametrize("words", [PROOF, REPR_ONLY, [*PROOF, "1e16"], [*PROOF, "none"], [*PROOF, "true"]])
@pytest.mark.parametrize("event", EVENTS)
def test_keyword_json_agrees_with_exhaustive(event: dict[str, Any], words: list[str]) -> None:
    ev = {"logsource.product": "test", **event}
    got = [r.title for r in _engine(words, True).match(dict(ev))]
    want = [r.title for r in _engine(words, False).match(dict(ev))]
    assert got == want


def test_number_proof_literals_take_the_json_path() -> None:
    engine = _engine(PROOF, True)
    engine.match({"logsource.product": "test", "Text": "x"})
    index = next(i for i in engine._indexes.values() if i.rules)
    if index.json_scanner is None:
        pytest.skip("needs Hyperscan")
    assert index.json_numbers
    mixed = _engine([*PROOF, "4711"], True)
    mixed.match({"logsource.product": "test", "Text": "x"})
    assert not next(i for i in mixed._indexes.values() if i.rules).json_numbers


def test_keyword_json_finds_what_it_should() -> None:
    engine = _engine(PROOF, True)

    def hits(event: dict[str, Any]) -> list[str]:
        return [r.title for r in engine.match({"logsource.product": "test", **event})]

    assert hits(EVENTS[0]) == ["keywords 3"]  # \mimilib.dll in a Windows path
    assert hits(EVENTS[1]) == ["keywords 1"]
    assert hits(EVENTS[2]) == ["keywords 2"]
    assert hits(EVENTS[3]) == ["keywords 0"]  # in a list in a list
    assert hits(EVENTS[4]) == ["keywords 0"]  # in a dict in a list (to_str of the list is its repr)
    assert hits(EVENTS[5]) == [] and hits(EVENTS[6]) == []
    assert hits(EVENTS[7]) == ["keywords 4"]
    assert hits(EVENTS[10]) == ["keywords 6"] and hits(EVENTS[11]) == ["keywords 6"]  # Color.RED: "plain"
    assert hits(EVENTS[12]) == []  # a dict-valued Enum at the top level is a dict: not searched
    assert hits(EVENTS[13]) == ["keywords 7"]  # in a list: its repr, like a dict's
    assert hits(EVENTS[15]) == ["keywords 0"] and hits(EVENTS[16]) == ["keywords 0"]


def test_number_proof() -> None:
    assert number_proof("sekurlsa::") and number_proof("\\mimilib.dll") and number_proof("x")
    for text in ("4711", "-1.5e+16", "true", "FALSE", "None", "nan", "-inf", "sal", "note"):
        assert not number_proof(text)
    # every non-str scalar prints (to_str, lower-cased) only characters a non-proof literal may hold
    for value in (12, -3, 1.5, 1e16, 1e-5, -1.5e300, math.nan, math.inf, -math.inf, True, False, None):
        assert not number_proof(Lowered({"v": [value]})[ALL])


def test_json_all_refuses_what_it_cannot_represent_with_numbers() -> None:
    assert json_all({"a": 1.5, "b": [None, 2.5, True], "c": math.nan}, numbers=True) is not None
    assert json_all({"a": 1.5}) is None
    assert json_all({"a": [None]}) is None
    for bad in (
        Text("x"),
        [Text("x")],
        datetime.now(UTC),
        2**70,
    ):
        assert json_all({"a": bad}, numbers=True) is None
    # a literal in the joined values is in the JSON text, escaped the same way
    ev = {"KeyName": 'C:\\x "q" sekurlsa::', "n": 1.5, "l": ["u", None, ["v"]]}
    data = json_all(ev, numbers=True)
    assert data is not None
    for value in ('c:\\x "q"', "sekurlsa::", "u", "v"):
        assert value in Lowered(ev)[ALL]
        escaped = json_literal(value)
        assert escaped is not None and escaped.encode() in data.lower()
