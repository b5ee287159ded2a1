"""The day files' trigram index over their words (schema 3): exact, kept on write, built on upgrade."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta
from pathlib import Path

from soclite.store import _sqlite_terms as word_index
from soclite.store.base import EventQuery
from soclite.store.sqlite import SQLiteStore

from .factories import T0, event

_DAY = "events-20240801.db"


def _store(path: Path) -> SQLiteStore:
    store = SQLiteStore(path / "events.db")
    store.open()
    return store


def test_a_word_found_only_inside_longer_words_is_found_through_the_trigrams(tmp_path: Path) -> None:
    store = _store(tmp_path)
    lines = ["C:\\Users\\Public\\mimikatz.exe privilege::debug", "katzenjammer.exe started",
             "xkatzy.dll loaded", "plain cmd.exe /c whoami"]  # fmt: skip
    store.write_events([event(i, message=m) for i, m in enumerate(lines)])

    def ids(q: str) -> set[str]:
        return {e["event.id"] for e in store.query_events(EventQuery(q=q, limit=50)).items}

    assert ids("katz") == {"ev000000", "ev000001", "ev000002"}  # a substring of three different words
    assert ids("KATZ.exe") == {"ev000000"}  # a word's end: mimikatz, not katzenjammer
    assert ids("imikat") == {"ev000000"}
    assert ids("enjam") == {"ev000001"}
    assert ids("zzkatz") == set()
    assert ids("hoam") == {"ev000003"}
    store.close()


def test_the_lookup_reads_the_trigram_index_not_every_word(tmp_path: Path) -> None:
    """What makes a word's lookup independent of the day's size: the plan searches ``terms_tri`` by its index
    (a pass over ``terms`` reads every word of the day)."""
    store = _store(tmp_path)
    store.write_events([event(1, message="mimikatz")])
    store.close()
    conn = sqlite3.connect(tmp_path / "events-partitions" / _DAY)
    sql, params = word_index.containing_sql("mimik", ends=False, limit=2001)
    plan = [str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    assert plan == ["SCAN terms_tri VIRTUAL TABLE INDEX 0:M1"], plan  # FTS5 answers the MATCH from its index
    assert [r[0] for r in conn.execute(sql, params)] == ["mimikatz"]
    conn.close()


def test_the_trigram_lookup_gives_what_a_pass_over_the_words_gives(tmp_path: Path) -> None:
    """Random words (ASCII, Vietnamese letters, digits) and needles cut from them or made up: the index's
    answer equals Python's substring / suffix test over every word, for short needles (no trigram) too."""
    rng = random.Random(15)
    letters = "abcxyz0129ệđăưÉé"
    words = sorted({"".join(rng.choice(letters) for _ in range(rng.randint(1, 12))) for _ in range(3000)})
    conn = sqlite3.connect(":memory:")
    conn.executescript(word_index.SCHEMA)
    with conn:
        word_index.add(conn, words[:1000])
        word_index.add(conn, words[500:])  # overlapping batches: a known word is not indexed twice
    assert conn.execute("SELECT count(*) FROM terms_tri").fetchone()[0] == len(words)
    needles = [w[i:j] for w in rng.sample(words, 300) for i, j in [sorted(rng.sample(range(len(w) + 1), 2))]]
    needles += ["".join(rng.choice(letters) for _ in range(rng.randint(1, 5))) for _ in range(100)]
    for needle in filter(None, needles):
        for ends in (False, True):
            sql, params = word_index.containing_sql(needle, ends=ends, limit=10_000)
            want = {w for w in words if (w.endswith(needle) if ends else needle in w)}
            assert {r[0] for r in conn.execute(sql, params)} == want, (needle, ends)
    conn.close()


def test_a_day_file_of_version_2_gets_its_trigram_index_on_upgrade(tmp_path: Path) -> None:
    """A file written before schema 3 (its ``terms`` filled, no ``terms_tri``) is indexed when it is opened,
    and keeps finding words inside words, old and new."""
    store = _store(tmp_path)
    store.write_events([event(i, message=f"tool{i}mimikatz{i}") for i in range(20)])
    store.close()
    path = tmp_path / "events-partitions" / _DAY
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE terms_tri; PRAGMA user_version=2;")
    words = conn.execute("SELECT count(*) FROM terms").fetchone()[0]
    conn.close()
    store = _store(tmp_path)
    assert store.count_events(EventQuery(q="mimikatz1")) == 11  # 1, 10..19
    store.write_events([event(100, message="newmimikatz")])
    assert store.count_events(EventQuery(q="imikat")) == 21
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    indexed = conn.execute("SELECT count(*) FROM terms_tri").fetchone()[0]
    assert indexed == conn.execute("SELECT count(*) FROM terms").fetchone()[0] > words
    conn.close()


def test_words_of_later_batches_and_days_are_indexed(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for batch in range(3):
        store.write_events([event(batch * 10 + i, when=T0 + timedelta(days=batch, minutes=i),
                                  message=f"alpha{batch}beta{i}") for i in range(5)])  # fmt: skip
        store.write_events([event(batch * 10 + 5, when=T0 + timedelta(days=batch, minutes=9),
                                  message=f"again alpha{batch}beta0")])  # fmt: skip
    assert store.count_events(EventQuery(q="pha1bet")) == 6
    assert store.count_events(EventQuery(q="a0beta0")) == 2
    assert store.count_events(EventQuery(q="lpha")) == 18
    store.close()
    for day in ("20240801", "20240802", "20240803"):
        conn = sqlite3.connect(tmp_path / "events-partitions" / f"events-{day}.db")
        assert (
            conn.execute("SELECT count(*) FROM terms_tri").fetchone()[0]
            == conn.execute("SELECT count(*) FROM terms").fetchone()[0]
        )
        conn.close()
