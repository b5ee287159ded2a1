"""The Hyperscan regex gate (correlator.regex_gate): it may only say "no match" when ``re`` finds none.

A gate that misses a match loses a detection, so every check is from ``re``'s side: texts drawn
from the pattern itself (they match) must pass the gate, and the dialect traps where PCRE reads a
pattern differently from Python are spelt out one by one."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soclite.correlator.regex import GATE_AFTER, Regex
from soclite.correlator.regex_gate import GATE_MIN_LEN, HAVE_HYPERSCAN, compile_gate, gate_pattern

from .test_regex_prefilter import PATTERNS

pytestmark = pytest.mark.skipif(not HAVE_HYPERSCAN, reason="no Hyperscan wheel on this platform")

PAD = "." * GATE_MIN_LEN

TRAPS = [
    # (pattern, flags, an ASCII text re matches)
    (r"a\sb", 0, "a\x1cb"),  # Python's \s has \x1c-\x1f, PCRE's has not
    (r"a[\s]b", 0, "a\x1fb"),
    (r"x{,3}y", 0, "xxy"),  # PCRE reads {,3} as literal text
    pytest.param(  # PCRE reads a POSIX class, Python a set then "]"
        r"[[:alpha:]]", 0, ":]", marks=pytest.mark.filterwarnings("ignore::FutureWarning")
    ),
    (r"end\Z", 0, "the end"),
    (r"end$", 0, "the end\n"),
    (r"(?m)^b$", 0, "a\nb\nc"),
    (r"(?s)a.b", 0, "a\nb"),
    (r"a.b", re.DOTALL, "a\nb"),
    (r"(?i)ABC", 0, "xabcx"),
    (r"[A-Z]+1", re.IGNORECASE, "abc1"),
    (r"(?<=x)y(?!z)", 0, "xyw"),
    (r"(?>a+)b", 0, "aab"),
    (r"a++b", 0, "aab"),
    (r"\bword\b", 0, "a word."),
    (r"[^a]b", 0, "\nb"),
    (r"[\w-]+\.exe", 0, "my-tool.exe"),
    (r"\x41\u0042", 0, "AB"),
    (r"a|", 0, "zzz"),  # matches the empty string anywhere
    (r"(?x) a  b # comment", 0, "ab"),
]


@pytest.mark.parametrize(("pattern", "flags", "text"), TRAPS)
def test_dialect_traps_pass_the_gate(pattern: str, flags: int, text: str) -> None:
    gate = compile_gate(pattern, flags)
    assert gate is not None, pattern
    assert re.search(pattern, text, flags) is not None
    assert gate(text), (pattern, text)
    for padded in (PAD + text, PAD + text + PAD):
        if re.search(pattern, padded, flags) is not None:
            assert gate(padded), (pattern, padded)


@pytest.mark.parametrize(
    ("pattern", "flags"),
    [
        (r"(a)\1", 0),  # back reference
        (r"(?(1)a|b)", 0),  # conditional
        (r"(?i:abc)d", 0),  # scoped flags
        (r"abc", re.ASCII),
        ("\u212a", re.IGNORECASE),  # a non-ASCII literal may fold to an ASCII one
        ("[a-\u017f]x", re.IGNORECASE),
        (r"(unclosed", 0),
    ],
)
def test_what_is_not_translated_has_no_gate(pattern: str, flags: int) -> None:
    assert gate_pattern(pattern, flags) is None


def test_the_gate_refuses_texts_without_an_occurrence() -> None:
    gate = compile_gate(r"\w+`(\w+|-|.)`[\w+|\s]", 0)
    assert gate is not None
    assert not gate("Get-Process | Where-Object { $_.Name -eq 'x' } " * 40)
    assert gate("Get-Process " * 40 + "IN`V`o`Ke-eXp`ResSIOn x")


@pytest.mark.parametrize(("pattern", "flags"), PATTERNS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_ascii_match_passes_the_gate(pattern: str, flags: int, data: st.DataObject) -> None:
    compiled = re.compile(pattern, flags)
    gate = compile_gate(pattern, flags)
    if gate is None:
        return
    text = data.draw(st.from_regex(compiled, alphabet=st.characters(max_codepoint=0x7F)))
    for padded in (text, PAD + text, text + PAD, PAD + "\n" + text + "\n" + PAD):
        if compiled.search(padded) is not None:
            assert gate(padded), (pattern, padded)


def test_regex_search_skips_the_engine_on_a_long_ascii_text_without_occurrence() -> None:
    rx = Regex(r"\w+`(\w+|-|.)`[\w+|\s]", 0)
    # ~20 kB: milliseconds in re, far above GATE_WORTH on any machine
    long_text = "Get-Process | Where-Object Name -eq 'x' " * 500
    for _ in range(GATE_AFTER):  # slow searches first: then the gate is worth compiling
        assert rx.search(long_text) is None
    assert callable(rx._gate) and rx._slow == GATE_AFTER
    engine = rx._inner
    calls: list[str] = []
    rx._inner = lambda text: (calls.append(text), engine(text))[1]  # a spy on the re/re2 engine
    assert rx.search(long_text) is None
    assert calls == []  # the gate answered
    hit = long_text + "IN`V`o`Ke-eXp`ResSIOn x"
    assert rx.search(hit) is not None and calls == [hit]
    short = "IN`V`o`Ke x"
    assert rx.search(short) is not None and calls[-1] == short  # short: straight to the engine
    non_ascii = "\u00e9" * GATE_MIN_LEN + short
    assert rx.search(non_ascii) is not None and calls[-1] == non_ascii  # non-ASCII: to the engine


def test_a_regex_that_only_sees_short_texts_compiles_no_gate() -> None:
    rx = Regex(r"\w+`(\w+|-|.)`[\w+|\s]", 0)
    for _ in range(50):
        assert rx.search("Get-Process`x " * 10) is None
    assert rx._slow == 0 and not callable(rx._gate)
