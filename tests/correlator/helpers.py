"""Build one-rule engines from inline YAML for the unit tests."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from soclite.correlator.engine import Engine
from soclite.correlator.loader import RuleSet, load_text

RULE_HEAD = """
title: test rule
id: 5f0b3c2e-1111-4a4a-9b9b-000000000001
status: test
level: high
logsource:
    product: test
detection:
"""


KEYWORD_RULE = r"""
title: keywords {n}
id: 7a0b3c2e-1111-4a4a-9b9b-0000000000{n:02d}
status: test
level: high
logsource:
    product: test
detection:
    keywords:
        - '{kw}'
    condition: keywords
"""


def keyword_rule(n: int, keyword: str) -> str:
    """Rule number ``n`` (its own id): one keyword literal, quoted for YAML, for ``product: test`` events."""
    return KEYWORD_RULE.format(n=n, kw=keyword.replace("'", "''"))


def keyword_engine(words: list[str], *, indexed: bool, extra: tuple[str, ...] = ()) -> Engine:
    """An engine of one keyword rule per word, plus the rule texts in ``extra``."""
    rs = RuleSet()
    for n, kw in enumerate(words):
        load_text(keyword_rule(n, kw), f"kw{n}", rs, {})
    for i, text in enumerate(extra):
        load_text(text, f"extra{i}", rs, {})
    assert not rs.failures and len(rs.rules) == len(words) + len(extra)
    return Engine(rs, indexed=indexed)


def windows_keyword_engines(title: str, keywords: list[str]) -> tuple[Engine, Engine]:
    """(indexed, exhaustive) engines of one ``product: windows`` keyword rule titled ``title``: every
    Windows event type has it, as SigmaHQ's "Mimikatz Use"."""
    import uuid

    rule = (
        f"title: {title}\nid: {uuid.uuid5(uuid.NAMESPACE_URL, title)}\nlogsource: {{product: windows}}\n"
        f"detection:\n    keywords: {json.dumps(keywords)}\n    condition: keywords\n"
    )
    return keyword_engine([], indexed=True, extra=(rule,)), keyword_engine([], indexed=False, extra=(rule,))


def engine_for(
    detection: str, *, indexed: bool = True, placeholders: dict[str, list[str]] | None = None
) -> Engine:
    text = RULE_HEAD + textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ") + "\n"
    rs = RuleSet()
    load_text(text, "inline", rs, placeholders or {})
    assert not rs.failures, rs.failures
    assert len(rs.rules) == 1
    return Engine(rs, indexed=indexed, placeholders=placeholders)


def fires(detection: str, event: dict[str, Any], **kwargs: Any) -> bool:
    """Does the rule fire on the event? Checked with the index and exhaustively (they must agree)."""
    ev = {"logsource.product": "test", **event}
    indexed = bool(engine_for(detection, **kwargs).match(dict(ev)))
    exhaustive = bool(engine_for(detection, indexed=False, **kwargs).match(dict(ev)))
    assert indexed == exhaustive, "index disagrees with exhaustive evaluation"
    return indexed
