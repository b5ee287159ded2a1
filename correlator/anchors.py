"""Anchors: literals a rule needs, and how selective they are likely to be.

An anchor option is a set of ``(field, kind, literal)``; if a rule matches an
event, at least one anchor of each of its options is present. The index uses
one option per rule (the cheapest by :func:`anchor_cost`, later the one with
the lowest observed hit rate), so any choice is exact, only faster or slower.
"""

from __future__ import annotations

#: (field, kind, lower-cased literal); kind "sub": substring, "eq": whole value, "rx": substring found by
#: regex_literals (valid on ASCII values only), "num": the value's as_number() equals int(literal),
#: "null": the field is missing or None (literal "")
Anchor = tuple[str, str, str]
Anchors = frozenset[Anchor] | None

#: Fields whose values are a handful of enumerated words: an exact value there selects little.
ENUM_FIELDS = frozenset(
    {
        "EventType",
        "Signed",
        "SignatureStatus",
        "Initiated",
        "Protocol",
        "LogonType",
        "Status",
        "IntegrityLevel",
        "State",
        "ObjectType",
        "ObjectServer",
        "AccessMask",
        "Type",
        "DestinationIsIpv6",
        "SourceIsIpv6",
        "event.outcome",
        "event.action",
        "EventID",
        "Level",
        "Task",
        "Opcode",
        "Keywords",
    }
)
#: Literals present in most Windows events of their field: poor anchors.
COMMON_LITERALS = frozenset(
    {
        "c:\\",
        "c:\\windows\\",
        "\\windows\\",
        "\\system32\\",
        "c:\\windows\\system32\\",
        ".exe",
        ".dll",
        "\\",
        "powershell",
        "hidden",
        "new-object",
        "\\microsoft\\",
        "microsoft",
        "windows",
        "\\software\\",
        "hklm\\",
        "hku\\",
        "\\currentversion\\",
        "true",
        "false",
        "-",
        "0x0",
        "system",
        "nt authority",
    }
)


def anchor_cost(anchors: frozenset[Anchor]) -> float:
    """Estimated candidate rate (lower is more selective): few alternatives, long and rare literals."""
    if not anchors:
        return 0.0
    cost = 0.0
    for field, kind, lit in anchors:
        c = 1.0 + 8.0 / (1 + len(lit))
        if kind == "null" or field in ENUM_FIELDS or lit in COMMON_LITERALS:
            c *= 6.0
        elif kind in ("eq", "num"):
            c *= 0.5 if len(lit) >= 8 else 1.5
        cost += c
    return cost
