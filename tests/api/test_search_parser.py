"""The Discover search language: what people type, as the store's expression."""

from __future__ import annotations

import pytest

from soclite.api.search import SearchSyntaxError, parse_search
from soclite.store.base import AllOf, AnyOf, Match, Not


def test_fields_phrases_and_operators() -> None:
    assert parse_search('source.ip:203.0.113.45 AND NOT user.name:"Nguyễn Văn A"') == AllOf((
        Match("source.ip", "203.0.113.45"), Not(Match("user.name", "Nguyễn Văn A"))))
    assert parse_search("sqlmap OR emotet") == AnyOf((Match(None, "sqlmap"), Match(None, "emotet")))
    assert parse_search("a b") == AllOf((Match(None, "a"), Match(None, "b")))  # side by side: AND
    assert parse_search("-x +y") == AllOf((Not(Match(None, "x")), Match(None, "y")))
    assert parse_search("host.name:(ws-01 OR ws-02)") == AnyOf((Match("host.name", "ws-01"), Match("host.name", "ws-02")))
    assert parse_search('"failed password for root"') == Match(None, "failed password for root")
    assert parse_search("  ") is None


def test_wildcards_and_escapes() -> None:
    assert parse_search(r"Image:*\\powershell.exe") == Match("Image", "*\\powershell.exe", wildcard=True)
    assert parse_search(r"CommandLine:a\*b") == Match("CommandLine", "a*b")  # an escaped * is the character
    assert parse_search("mimi*") == Match(None, "mimi")  # free text is a substring search already
    with pytest.raises(SearchSyntaxError, match="mixes wildcards"):
        parse_search(r"f:a\*b*")


@pytest.mark.parametrize(("text", "reason"), [
    ("EventID:[4624 TO 4625]", "range"), ("mimikatz~2", "fuzzy"), ('"a b"~3', "proximity"),
    ("source.ip:(", "syntax error"), ("AND", "syntax error"),
])
def test_unsupported_or_broken_searches_are_clear_errors(text: str, reason: str) -> None:
    with pytest.raises(SearchSyntaxError, match=reason) as caught:
        parse_search(text)
    assert text in str(caught.value) and caught.value.msgid
