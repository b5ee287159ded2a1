"""Regex helpers: required literals for the index, and the per-pattern engine choice."""

from __future__ import annotations

from soclite.correlator.regex import Regex, regex_literal_options, regex_literals


def test_required_literals() -> None:
    assert regex_literals(r"(abc)?def") == frozenset({"def"})
    assert regex_literals(r"[a-z]+\d") is None  # nothing literal is required
    assert regex_literals(r"x{0,3}yy") == frozenset({"yy"})
    assert frozenset({"new-object", "get"}) in regex_literal_options(r"(?i)IEX\s*\((New-Object|get)")
    assert regex_literals(r"(foo|[0-9])bar") == frozenset({"bar"})  # a branch without a literal gives nothing
    assert regex_literals(r"caf\u00e9s") == frozenset({"caf"})  # ASCII runs only
    assert regex_literal_options(r"(unclosed") == []


def test_engine_choice_settles_and_keeps_results() -> None:
    rx = Regex(r"\w+`(\w+|-|.)`[\w+|\s]", 0)
    assert rx.engine == "trial"
    text = "IN`V`o`Ke-eXp`ResSIOn " + "a" * 2000
    for _ in range(Regex.TRIALS + 1):
        assert rx.search(text) is not None
        assert rx.search("plain text") is None
    assert rx.engine in ("re", "re2")
    look_behind = Regex(r"(?<=x)y", 0)  # re2 refuses look-behind: Python re from the start
    assert look_behind.engine == "re" and look_behind.search("xy") is not None
