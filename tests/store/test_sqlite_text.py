"""Free text through the day files' full-text index: the same hits as reading every document."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from soclite.store import _common as c
from soclite.store._sqlite_text import plan
from soclite.store.base import AllOf, EventQuery, Match, Not
from soclite.store.sqlite import SQLiteStore

from .factories import T0, event

#: letters (ASCII and Vietnamese), digits and the separators log lines are full of
_PIECES = ["a", "b", "ab", "ba", "x", "1", "2", "12", "ệ", "Đ", "ă", ".", "-", " ", "\\", "_", "/", ":", "=", "É"]


def _texts(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 14))) for _ in range(n)]


def test_every_needle_finds_exactly_the_events_whose_text_contains_it(tmp_path: Path) -> None:
    """Needles cut anywhere in the texts (inside words, across separators) and random ones: the index path
    must give the substring answer, event for event (the ground truth is computed here, not by the store)."""
    rng = random.Random(12)
    texts = _texts(rng, 400)
    events = [event(i, when=T0 + timedelta(seconds=i), message=t, **{"event.original": f"m {i % 7}"})
              for i, t in enumerate(texts)]  # fmt: skip
    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    store.write_events(events[:7])  # a small first batch, then the rest: two dictionaries, all indexed
    store.write_events(events[7:])
    needles = [t[i:j] for t in rng.sample(texts, 150) for i, j in [sorted(rng.sample(range(len(t) + 1), 2))]]
    needles += ["".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 3))) for _ in range(150)]
    needles += ["ab", "1", "AB.12", "-", " ", "ệ", "đ", "m 3", "12 "]
    indexed = 0
    for needle in needles:
        if not needle:
            continue
        want = {e["event.id"] for e in events if needle.casefold() in c.event_text(e)}
        got = store.query_events(EventQuery(q=needle, limit=500))
        assert {e["event.id"] for e in got.items} == want, needle
        assert got.total == len(want), needle
        indexed += plan(needle.casefold()) is not None
    assert indexed > 200  # most needles went through the index, not the fallback
    for needle in ["ab", "1", "m 3", "ệ"]:  # with a host filter (a word in many rows is read from documents)
        want = {e["event.id"] for e in events if needle.casefold() in c.event_text(e)}
        assert {e["event.id"] for e in store.query_events(EventQuery(q=needle, host="pc-01", limit=500)).items} == want
    # the Discover expressions' bare terms take the same path, inside AND / NOT
    expr = AllOf((Match(None, "ab"), Not(Match(None, "12"))))
    want = {e["event.id"] for e in events if "ab" in c.event_text(e) and "12" not in c.event_text(e)}
    assert {e["event.id"] for e in store.query_events(EventQuery(expr=expr, limit=500)).items} == want
    store.close()


def test_rows_deleted_by_retention_leave_the_index_too(tmp_path: Path) -> None:
    """A cut inside a day deletes its newest rows; their rowids are given again to the next events, which
    must not be found by the deleted events' words."""
    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    store.write_events([event(i, when=T0 + timedelta(hours=1, minutes=i), message=f"alpha{i}") for i in range(5)])
    assert store.count_events(EventQuery(q="alpha")) == 5
    store.delete_events_before(T0 + timedelta(hours=2))
    store.write_events([event(10 + i, when=T0 + timedelta(hours=3, minutes=i), message="beta") for i in range(5)])
    assert store.count_events(EventQuery(q="alpha")) == 0
    assert store.count_events(EventQuery(q="alpha3")) == 0
    assert store.count_events(EventQuery(q="beta")) == 5
    store.close()


def test_what_the_index_narrows_and_what_it_leaves_to_the_documents() -> None:
    one = plan("whoami")
    assert one is not None and one.exact and one.match == () and one.inner == ("whoami", False)
    ip = plan("10.0.0.7")
    assert ip is not None and not ip.exact and ip.match == ('"0"', '"0"', '"7" *') and ip.inner == ("10", True)
    lead = plan("\\mimikatz.exe")
    assert lead is not None and lead.match == ('"mimikatz"', '"exe" *') and lead.inner is None
    assert plan("\\\\") is None  # no letter or digit: documents are read
    assert plan("a\u2013b") is None  # a non-ASCII separator: documents are read
    assert plan("nguyễn văn") is not None  # Vietnamese letters are letters
