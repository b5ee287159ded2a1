"""Regex prefilters: the literal and length checks a generated rule runs before a regex search must be
implied by every match (else a detection is lost), and must spare the search on values that fail them."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soclite.correlator.regex import Regex, regex_prefilter

from .helpers import engine_for, fires

# SigmaHQ's costly ones (token obfuscation, SNAKE, Raspberry Robin) and the case-folding traps
PATTERNS = [
    (r"\w+`(\w+|-|.)`[\w+|\s]", 0),
    (r'"(\{\d\}){2,}"\s*-f', 0),
    (r"(?i)\$\{`?e`?n`?v`?:`?p`?a`?t`?h`?\}", 0),
    (r"\s[a-fA-F0-9]{64}\s[a-fA-F0-9]{16}", 0),
    (r"\\[a-zA-Z0-9]{1,32}\.[a-zA-Z0-9]{1,6}\.[ \"']{1}", 0),
    (r"(?i)iex\s*\(new-object net\.webclient\)", 0),
    (r"Kelvin~7", re.IGNORECASE),
    (r"(?i)k\$s`", 0),
    (r"(?i:secret)=1;s", 0),
    (r"(?-i:AbC)d", re.IGNORECASE),
    (r"x(?=y-z)w?", 0),
    (r"(ab|cd)+e", 0),
    (r"(a`|b\$)+c", 0),
    (r"(?P<q>['\"])\w+(?P=q)", 0),
]


def _holds(pattern: str, flags: int, text: str) -> bool:
    sets, shortest = regex_prefilter(pattern, flags)
    return len(text) >= shortest and all(any(lit in text for lit in lits) for lits in sets)


@pytest.mark.parametrize(("pattern", "flags"), PATTERNS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_match_passes_the_prefilter(pattern: str, flags: int, data: st.DataObject) -> None:
    compiled = re.compile(pattern, flags)
    text = data.draw(st.from_regex(compiled))
    assert compiled.search(text) is not None
    assert _holds(pattern, flags, text), (pattern, text)


def test_case_folding_is_never_assumed() -> None:
    # under IGNORECASE re equates U+212A KELVIN SIGN with "k" and U+017F with "s": letters are never taken
    assert re.search(r"(?i)kelvin~7", "\u212aelvin~7")
    assert _holds(r"(?i)kelvin~7", 0, "\u212aelvin~7")
    assert regex_prefilter(r"(?i)kelvin~7", 0)[0] == [frozenset({"~"})]
    assert re.search(r"(?i)sa", "\u017fA") and _holds(r"(?i)sa", 0, "\u017fA")
    # one rare character per literal; a scoped (?i:...) adds nothing but its length
    assert regex_prefilter(r"IEX\(\$", 0)[0] == [frozenset({"$"})]
    assert regex_prefilter(r"(?i:secret)~1", 0) == ([frozenset({"~"})], 8)
    assert regex_prefilter(r"(a`|b\$)c", 0)[0] == [frozenset({"`", "$"})]  # one of a branch's
    assert regex_prefilter(r"(a`|b)c", 0)[0] == []  # a branch without a rare character: nothing
    assert regex_prefilter(r"x\$(?=y~z)", 0)[0] == [frozenset({"$"})]  # a look-ahead adds nothing
    assert regex_prefilter(r"(unclosed", 0) == ([], 0)


def test_a_value_without_the_literal_never_reaches_the_regex() -> None:
    detection = r"""
        selection:
            CommandLine|re: '\w+`(\w+|-|.)`[\w+|\s]'
        condition: selection
    """
    engine = engine_for(detection, indexed=False)
    regex = next(v for v in engine.rules[0].func.__globals__.values() if isinstance(v, Regex))
    ev = {"logsource.product": "test", "CommandLine": "powershell -nop " + "a" * 5000}
    assert not engine.match(dict(ev))
    assert regex._n == 0 and regex.engine == "trial"  # not searched: no backtick in the value
    assert fires(detection, {"CommandLine": "IN`V`o`Ke-eXp`ResSIOn x"})
    assert regex._n == 0  # the fires() engines are their own
    assert engine.match(dict(ev, CommandLine="IN`V`o`Ke-eXp`ResSIOn x"))
    assert regex._n == 1


def test_a_short_value_never_reaches_the_regex() -> None:
    detection = r"""
        selection:
            CommandLine|re: '\s[a-fA-F0-9]{64}\s[a-fA-F0-9]{16}'
        condition: selection
    """
    engine = engine_for(detection, indexed=False)
    regex = next(v for v in engine.rules[0].func.__globals__.values() if isinstance(v, Regex))
    assert not engine.match({"logsource.product": "test", "CommandLine": "jpsetup.exe " + "a" * 60})
    assert regex._n == 0
    hit = "jpsetup.exe " + "a" * 64 + " " + "b" * 16
    assert engine.match({"logsource.product": "test", "CommandLine": hit}) and regex._n == 1
