"""A day file's distinct words (``terms``) and their trigram index (``terms_tri``, day-file schema 3).

Free text ``q`` with a word that may lie *inside* a stored word (``katz`` in ``mimikatz.exe``) first asks
which of the day's words contain it (:mod:`soclite.store._sqlite_text`). Without an index that is one pass
over every distinct word of the day: 170 ms over the 1,017,132 words of a 5-million-event day, growing
with the day (bench/store.py --search, README "Sizing the embedded store"). ``terms_tri`` is an FTS5 table
over the same words with FTS5's ``trigram`` tokenizer: a word of three characters or more is looked up by
its trigrams (posting lists ANDed), and each candidate is then checked with ``instr`` — the trigrams only
narrow, so the answer is exactly the pass's answer. ``columnsize=0``: no per-word token counts (10 B a word
that no query reads; bench/store.py --sustained 500000, ``terms_tri_docsize``).

Why FTS5 ``trigram`` (SQLite 3.34+) rather than a table of (trigram, word id), measured on 1,000,000 words
(/tmp experiment, one process, 5,000-word batches as the writer's): FTS5 ``detail=none`` 32.5 B and
8.6 µs more per distinct word, a word found in 0.1–0.7 ms; a (trigram, id) WITHOUT ROWID table 80 B a word,
13 ms for ``mimikatz`` (an INTERSECT of B-tree ranges), and slower writes. ``detail=none``: only which
words hold a trigram, no positions (the ``instr`` check does the rest). ``case_sensitive 1``: the words are
already case-folded by Python, and a fold here could only differ from Python's.

Words are added by the writer in its transaction: the batch's new words (those not yet in ``terms``) go to
both tables. (Not by a trigger on ``terms``: an FTS5 insert per trigger row was 52 µs a word instead of
8.6.) Words are never removed (retention deletes rows, not words): ``terms`` is a superset of the words
the day's rows hold, and the word index decides which rows match.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS terms (term TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS terms_tri USING fts5 (term, detail=none, columnsize=0,
                                                   tokenize='trigram case_sensitive 1');
"""
#: a word shorter than this has no trigram: its lookup is the pass over ``terms``
TRIGRAM = 3


def add(conn: sqlite3.Connection, fresh: Iterable[str]) -> None:
    """Add a batch's words to ``terms`` and the new ones to ``terms_tri`` (inside the write's transaction)."""
    batch = sorted(set(fresh))
    if not batch:
        return
    words = orjson.dumps(batch).decode()
    # new words first (a primary-key probe each), then all of them into terms (the known ones are ignored)
    conn.execute(
        "INSERT INTO terms_tri (term) SELECT value FROM json_each(?) "
        "WHERE NOT EXISTS (SELECT 1 FROM terms WHERE term = value)",
        (words,),
    )
    conn.execute("INSERT OR IGNORE INTO terms (term) SELECT value FROM json_each(?)", (words,))


def fill(conn: sqlite3.Connection) -> None:
    """Index every word of ``terms`` (the upgrade of a day file written before ``terms_tri``)."""
    conn.execute("INSERT INTO terms_tri (term) SELECT term FROM terms")


def containing_sql(word: str, *, ends: bool, limit: int) -> tuple[str, list[object]]:
    """The day's words containing ``word`` (ending with it when ``ends``), at most ``limit`` of them."""
    check = "substr(term, -?) = ?" if ends else "instr(term, ?) > 0"
    check_params: list[object] = [len(word), word] if ends else [word]
    if len(word) < TRIGRAM:
        return f"SELECT term FROM terms WHERE {check} LIMIT ?", [*check_params, limit]
    grams = sorted({word[i : i + TRIGRAM] for i in range(len(word) - TRIGRAM + 1)})
    # a word of letters and digits only (see _sqlite_text.plan): each trigram quoted is one FTS5 token
    match = " AND ".join('"' + g + '"' for g in grams)
    return (f"SELECT term FROM terms_tri WHERE terms_tri MATCH ? AND {check} LIMIT ?",
            [match, *check_params, limit])  # fmt: skip


__all__ = ["SCHEMA", "TRIGRAM", "add", "containing_sql", "fill"]
