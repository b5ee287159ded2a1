"""Keyword (unfielded) search over JSON text: the event's own dump or the line it was decoded from.

A keyword rule matches a literal in any value (the joined values, ``Lowered[ALL]``). Building that
text costs more than dumping the event with orjson, or than the line the event came from, so the
keyword literals are looked for in JSON where that is exact, and the few events it cannot vouch for
(escapes, dicts inside lists, characters that lower-case to ASCII) are reported by sentinel
(FOLD_SENTINEL) and searched in the joined values by :class:`correlator.index.TypeIndex`.
"""

from __future__ import annotations

from typing import Any

import orjson

from soclite.correlator.runtime import ALL
from soclite.correlator.scanners import (
    BytesScanner,
    cached,
    hs_bind_bytes,
    hs_compile,
    hs_compile_regex,
    hs_regex_literal,
)

#: Value types whose JSON text holds their Sigma string form (to_str) escaped character by character.
_JSON_EXACT: frozenset[type] = frozenset({str, int, bool, type(None), dict})
#: List item types printed in JSON as to_str prints them (a list's to_str joins its items' by "\n").
_PLAIN: frozenset[type] = frozenset({str, int, bool})
#: With a number-proof literal set (see :func:`number_proof`) a float's or None's text cannot hold a
#: literal, so how JSON prints them (1e16, NaN as null, None as null) does not matter: json_all then
#: checks no type itself (see _PASSTHROUGH).
#: (top-level types, the same with lists, list item types) for json_all, built once: not per event
_JSON_TYPES = (_JSON_EXACT, _JSON_EXACT | {list}, _PLAIN)
#: Every character of a non-str scalar's to_str, lower-cased: ints, floats (1.5e-05, inf, nan), true,
#: false and None (to_str of a list item).
_SCALAR_CHARS = frozenset("0123456789+-.einfatrulso")
#: UTF-8 of the two characters whose lower-case form is ASCII (see the module docstring): the JSON scan
#: reports them as this pseudo position, and the caller then scans the lower-cased joined values instead.
_FOLDS_TO_ASCII = ("\u0130".encode(), "\u212a".encode())
FOLD_SENTINEL = -1
#: How JSON shows a dict inside a list (orjson writes no whitespace): to_str prints such an item as
#: its Python repr, which JSON does not hold. The number-proof scan (json_all's fast path, which
#: does not look at the values' types) looks for these too and reports FOLD_SENTINEL: the caller then
#: scans the joined values. Inside a string value they only cost that slower scan, never a miss.
_DICT_IN_LIST = (b"[{", b",{")
#: What the keyword scan of a record's own JSON text (see TypeIndex.candidates' ``raw``) cannot vouch
#: for, reported as FOLD_SENTINEL like the two above: any producer's JSON may put whitespace between
#: tokens (a dict inside a list then reads "[ {"), and write a character as \uXXXX (Python's
#: ensure_ascii, Go's HTML escaping) or a slash as \/, which would hide a literal's characters
#: or İ/K. An escape is a backslash after an even run of them; \", \\ and the control
#: escapes are canonical (a literal holds no control character, and its quote and backslash are
#: escaped as json_literal escapes them). orjson's own output never has any of these but [{ and ,{.
_RAW_SENTINELS = (
    rb"(?:^|[^\\])(?:\\\\)*\\[u/]",
    hs_regex_literal(_FOLDS_TO_ASCII[0]),
    hs_regex_literal(_FOLDS_TO_ASCII[1]),
)
#: a dict inside a list, with any whitespace: bounded, and a longer run reported by itself (together a
#: superset of the unbounded pattern: at worst a string holding such a run takes the slower path).
#: With SigmaHQ's "Mimikatz Use" literals, the keyword set of every Windows event type, Hyperscan
#: scanned 100,000 OTRF lines in 0.190 s this way against 0.229 s with the unbounded run (other
#: literal sets differ either way by a few per cent)
_RAW_DICT_IN_LIST = (rb"[\[,][ \t\r\n]{0,16}\{", rb"[\[,][ \t\r\n]{17}")
#: json_all's fast path: orjson raises TypeError for these instead of printing them its own way
#: (datetimes, str/int/list/dict subclasses, dataclasses), so they take the joined values. Enums,
#: which orjson prints by value, read the same way in to_str; UUIDs print alike in both.
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS


_IS_LIST = list.__instancecheck__


def number_proof(literal: str) -> bool:
    """Whether ``literal`` has a character that no int, float, bool or None prints (lower-cased):
    then it cannot occur in such a value's to_str, and a JSON text may print those however it likes."""
    return not set(literal.lower()) <= _SCALAR_CHARS


def _plain_list(items: list[Any], plain: frozenset[type]) -> bool:
    """Only ``plain`` items, or lists of them (recursively): one C-level pass for a flat list."""
    types = set(map(type, items))
    if types <= plain:
        return True
    return types <= plain | {list} and all(_plain_list(x, plain) for x in items if type(x) is list)


def json_all(ev: dict[str, Any], numbers: bool = False) -> bytes | None:
    """The event as JSON bytes, when a keyword scan over them finds every literal that the joined
    values (``Lowered[ALL]``) hold; else None (the caller joins the values).

    orjson escapes character by character (``"`` → ``\\"``, ``\\`` → ``\\\\``, control characters), so a
    literal without control characters, escaped the same way, occurs in the JSON wherever it occurs
    in a string value. ints and bools print as to_str prints them; None and dicts are not searched by
    keyword rules and add only text (a false candidate is evaluated exactly, never a missed one).
    Floats print differently (1e16) and lists of None differently, so those events take the slow
    path unless ``numbers`` (the literal set is :func:`number_proof`). Any other type (datetime,
    subclasses: orjson prints some natively, unlike to_str) takes the slow path. The scan also
    looks for the two characters that lower-case to ASCII (:data:`FOLD_SENTINEL`).

    With ``numbers`` the values' types are not walked at all (that walk cost as much as the dump):
    orjson refuses the types it would print unlike to_str (:data:`_PASSTHROUGH`), and the scan
    reports a dict inside a list (:data:`_DICT_IN_LIST`).
    """
    if numbers:
        try:
            return orjson.dumps(ev, option=_PASSTHROUGH)
        except TypeError:
            return None
    exact, with_lists, plain = _JSON_TYPES
    values = ev.values()
    types = set(map(type, values))
    if not types <= exact:
        if not types <= with_lists:
            return None
        for v in filter(_IS_LIST, values):  # the filter runs in C: events hold a list or two at most
            if not _plain_list(v, plain):
                return None
    try:
        return orjson.dumps(ev)
    except TypeError:  # non-str keys in a nested dict, out-of-range ints, lone surrogates
        return None


def json_literal(lit: str) -> str | None:
    """``lit`` as it appears inside a JSON string, or None if it cannot be found that way."""
    if not lit.isascii() or any(ord(c) < 0x20 or c == "\x7f" for c in lit):
        return None
    return lit.replace("\\", "\\\\").replace('"', '\\"')



def keyword_scanners(
    lits: dict[str, list[int]], cache: dict[Any, Any] | None
) -> tuple[BytesScanner | None, BytesScanner | None, bool]:
    """The keyword (ALL) literals' scanners over JSON: the event's (json_all) and, when the literals are
    number-proof, any producer's text of the record (see TypeIndex.candidates), and whether they are
    number-proof; (None, None, False) when a literal cannot be found in JSON (json_literal)."""
    ordered = sorted(lits)  # the compiled set is cached (across runs too) under this order
    escaped = [json_literal(w) for w in ordered]
    words = [e for e in escaped if e]
    if len(words) != len(ordered):
        return None, None, False
    positions = [tuple(lits[w]) for w in ordered]
    numbers = all(number_proof(w) for w in ordered)
    # only the number-proof path lets a dict inside a list through (json_all's other path refuses it),
    # and its repr is no JSON, whatever the literal: besides the punctuation around keys and values, repr
    # escapes what JSON does not (\x08 for JSON's \b, \u200b for a raw zero-width space) and prints
    # objects its own way (UUID('…'), <Color.RED: 1>), so "x08abc" or "uuid" are in the repr alone.
    sentinels = list(_FOLDS_TO_ASCII) + (list(_DICT_IN_LIST) if numbers else [])
    # the field part names the sentinel set: a database with other sentinels is not reused
    kind = ALL + ("+lists" if numbers else "")
    compiled = cached(cache, ("hyperscan-json", kind, tuple(words)), lambda: hs_compile(words, sentinels))
    json_scanner = hs_bind_bytes(compiled, positions + [(FOLD_SENTINEL,)] * len(sentinels))
    if not numbers:
        return json_scanner, None, False
    raw_sentinels = _RAW_SENTINELS + _RAW_DICT_IN_LIST
    compiled = cached(cache, ("hyperscan-raw", kind, tuple(words)), lambda: hs_compile_regex(words, raw_sentinels))
    raw_scanner = hs_bind_bytes(compiled, positions + [(FOLD_SENTINEL,)] * len(raw_sentinels))
    return json_scanner, raw_scanner, True
