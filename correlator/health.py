"""Detection health, the engine's side: what each rule did and which fields its inputs produce.

The engine keeps, per rule, hits, suppressed matches (a Sigma filter or an analysts' exception
dropped them) and evaluation errors since its process started, and when the rule last fired; and,
per log source (:class:`~correlator.logsource.LogKey`), which of the fields its rules name its events
have carried. That set is bounded by the rules (not by what senders put in events), and it costs
nothing once every named field has been seen: each event is checked only for the fields still
missing. A rule whose detection names a field that no event of its log source has carried cannot
match as written: :meth:`~correlator.engine.Engine.assess` reports those fields.

The detection process's engine writes a :class:`HealthSnapshot` beside its correlation state
(:data:`HEALTH_FILE`, atomically, every save interval); the server's engine, which sees no events
when detection runs in its own process, reads it there. Period figures (alerts, analysts' false
positives) come from the store: :mod:`soclite.control.rule_health` joins the two.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soclite.correlator.logsource import LogKey

log = logging.getLogger(__name__)

HEALTH_FILE = "rule-health.json"


@dataclass
class RuleCounters:
    hits: int = 0
    suppressed: int = 0
    errors: int = 0
    #: epoch seconds
    last_fired: float | None = None


@dataclass
class HealthSnapshot:
    """What an engine knows at one moment (the file's content)."""

    #: epoch seconds of the engine process's start: the counters count from there
    since: float
    rules: dict[str, RuleCounters] = field(default_factory=dict)
    seen: dict[LogKey, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleHealth:
    hits: int
    suppressed: int
    errors: int
    last_fired: float | None
    #: whether any event of the rule's log source has been seen
    source_seen: bool
    #: fields the detection names that no event of its log source carried; None when no event of
    #: the source has been seen yet (nothing to tell)
    unseen_fields: list[str] | None


def _key_json(key: LogKey) -> list[Any]:
    return [key.product, key.service, list(key.categories)]


def save(path: Path, snapshot: HealthSnapshot) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": 1,
        "since": snapshot.since,
        "rules": {rid: [c.hits, c.suppressed, c.errors, c.last_fired] for rid, c in snapshot.rules.items()},
        "seen": [[*_key_json(key), sorted(fields)] for key, fields in snapshot.seen.items()],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)


def read(path: Path) -> HealthSnapshot | None:
    """The snapshot at ``path``; None if there is none or it is unreadable (logged)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        snapshot = HealthSnapshot(since=float(doc["since"]))
        for rid, (hits, suppressed, errors, last) in doc["rules"].items():
            snapshot.rules[str(rid)] = RuleCounters(int(hits), int(suppressed), int(errors),
                                                    None if last is None else float(last))  # fmt: skip
        for product, service, categories, fields in doc["seen"]:
            snapshot.seen[LogKey(product, service, tuple(categories))] = frozenset(map(str, fields))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("rule health %s unreadable: %s", path, exc)
        return None
    return snapshot


def source_fields(
    product: str | None, category: str | None, service: str | None, seen: dict[LogKey, frozenset[str]]
) -> tuple[bool, set[str] | None]:
    """(whether any event of this logsource was seen, the union of its field names or None if unknown)."""
    union: set[str] = set()
    source_seen = False
    for key, fields in seen.items():
        if key.matches(product, category, service):
            source_seen = True
            union |= fields
    return source_seen, union if source_seen else None
