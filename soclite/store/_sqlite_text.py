"""Free text ``q`` over an event day file through its full-text index, with the substring meaning kept.

``q`` finds an event when the case-folded text of its main fields (:func:`soclite.store._common.event_text`)
contains ``q`` as a substring, in both stores. A day file of version 2 indexes that text in an FTS5 table
(contentless, ``detail=none``: only which rows hold a word) and lists every word it holds in ``terms``.
Words are maximal runs of letters and digits (``[^\\W_]+``), cut here, so the index and the query agree on
them whatever FTS5's own tokenizer would do: it is fed the words joined by spaces.

The index only narrows; it never loses a hit. Where ``q`` occurs in a text, each of its words lies inside
one of the text's words:

* a word of ``q`` with a separator on both sides in ``q`` *is* a word of the text (``"w"``);
* with a separator before it only, it begins one (``"w" *``);
* with none before it, it is inside one: the day's ``terms`` that contain it are looked up first
  (through their trigram index, :mod:`._sqlite_terms`), and the text must hold one of them.

``q`` made of one run of letters and digits is then found exactly by the index (a word containing it is
the substring); any other ``q`` is checked against the document as well (``sl_doc_contains``), after the
index chose the candidate rows. ``q`` that the index cannot narrow (no letter or digit, a character
outside letters, digits and ASCII, or a word in more than :data:`MAX_EXPANSION` of the day's terms) is
searched by reading the documents, as before the index.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from soclite.store import _sqlite_terms as word_index

WORD = re.compile(r"[^\W_]+")
_SEPARATORS = re.compile(r"[\W_]+")
#: terms a word inside ``q`` may expand to before the day is read document by document instead
MAX_EXPANSION = 2000


def words(text: str) -> list[str]:
    """The words of an (already case-folded) text, as the index holds them."""
    return WORD.findall(text)


def indexed_text(text: str) -> str:
    """The words joined by one space (what the index is fed): one substitution, no list."""
    return _SEPARATORS.sub(" ", text).strip()


def _quoted(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


@dataclass(frozen=True)
class TextPlan:
    """How one needle is looked up in a day file's index."""

    #: FTS5 query parts ANDed: exact words and prefixes
    match: tuple[str, ...]
    #: a word with no separator before it in the needle: (word, separator after it in the needle)
    inner: tuple[str, bool] | None
    #: the index's answer is the answer (no document check)
    exact: bool


def plan(needle: str) -> TextPlan | None:
    """The index lookup for a case-folded needle, or None when the index cannot narrow it."""
    if not needle or any(ord(ch) > 127 and not ch.isalnum() for ch in needle):
        return None  # a non-ASCII separator: the word cut of the text and of FTS5 might not agree on it
    if any(unicodedata.category(ch)[0] not in "LN" for ch in needle if ch.isalnum() and ord(ch) > 127):
        return None
    found = list(WORD.finditer(needle))
    if not found:
        return None
    match: list[str] = []
    inner: tuple[str, bool] | None = None
    for i, m in enumerate(found):
        before = m.start() > 0  # a separator precedes the word inside the needle
        after = m.end() < len(needle)
        if before and after:
            match.append(_quoted(m.group()))
        elif before:
            match.append(_quoted(m.group()) + " *")
        elif i == 0:
            inner = (m.group(), after)
    exact = len(found) == 1 and found[0].group() == needle
    return TextPlan(match=tuple(match), inner=inner, exact=exact)


def expansion_sql(inner: tuple[str, bool]) -> tuple[str, list[object]]:
    """The day's terms a word found inside a text word may be: containing it, or ending with it when the
    needle has a separator right after it (through the trigram index, :mod:`._sqlite_terms`)."""
    word, ends = inner
    return word_index.containing_sql(word, ends=ends, limit=MAX_EXPANSION + 1)


def condition(
    needle: str, lookup: Callable[[str, Sequence[object]], list[str]], *, since: int | None,
) -> tuple[str, list[object], str | None]:
    """SQL (over ``events``) for "the document's text contains ``needle``" in a day file with the index, its
    parameters, and the FTS5 MATCH expression it uses (None: documents are read).

    ``lookup`` runs a query on the day file (the terms expansion); ``since`` is the first rowid the index
    covers in a file upgraded from version 1 (older rows are read document by document).
    """
    scan: tuple[str, list[object], str | None] = ("sl_doc_contains(doc, ?)", [needle], None)
    text_plan = plan(needle)
    if text_plan is None:
        return scan
    parts = list(text_plan.match)
    if text_plan.inner is not None and (not parts or text_plan.exact):
        terms = lookup(*expansion_sql(text_plan.inner))
        if len(terms) > MAX_EXPANSION:
            if not parts:
                return scan
        elif not terms:
            if since is None:
                return "0", [], None
            return f"(rowid < {int(since)} AND sl_doc_contains(doc, ?))", [needle], None
        else:
            parts.append("(" + " OR ".join(_quoted(t) for t in terms) + ")")
    if not parts:
        return scan
    match = " AND ".join(parts)
    indexed = "rowid IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)"
    sql = indexed if text_plan.exact else f"({indexed} AND sl_doc_contains(doc, ?))"
    params: list[object] = [match]
    if not text_plan.exact:
        params.append(needle)
    if since is not None:
        sql = f"((rowid < {int(since)} AND sl_doc_contains(doc, ?)) OR {sql})"
        params = [needle, *params]
    return sql, params, match


__all__ = ["MAX_EXPANSION", "TextPlan", "condition", "indexed_text", "plan", "words"]
