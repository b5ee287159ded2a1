"""The per-event-type rule index: find the few candidate rules worth evaluating exactly.

Built once per :class:`~correlator.logsource.LogKey` from the rules whose
logsource selects it. Every rule with anchors (see :mod:`correlator.compiler`)
is registered under its literals: one multi-literal database per field for
substring literals (Hyperscan when installed, else Aho-Corasick), one dict per
field for exact values and one for exact numbers. For an event, the candidates
are the rules whose literal is present plus the rules without anchors; a rule
left out provably cannot match, so the indexed result equals evaluating every
rule (tests/correlator/test_equivalence.py checks it).

Hyperscan scans the *raw* value case-insensitively (ASCII folding), which
saves lower-casing fields of events no rule will look at. Unicode lower-casing
turns exactly two non-ASCII characters into ASCII ones (U+0130 "İ" → "i̇",
U+212A KELVIN SIGN → "k"; every other character keeps its ASCII-ness, see
tests/correlator/test_index.py), so a non-ASCII value is scanned raw as well
when the field's literals are all ASCII and it holds neither of the two;
otherwise it is lower-cased first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any, Protocol

import orjson

from soclite.correlator.anchors import Anchor, Anchors
from soclite.correlator.keywords import FOLD_SENTINEL, json_all, keyword_scanners
from soclite.correlator.runtime import ALL, RAW_ALL, Lowered, as_number, to_str
from soclite.correlator.scanners import BytesScanner, Scanner, backend_kind, field_scanner

#: (scanner or None, rules needing only presence, rules whenever the value is not ASCII, lower-case non-ASCII)
ScanEntry = tuple[Scanner | None, tuple[int, ...], tuple[int, ...], bool]
ExactTable = dict[str, tuple[int, ...]]
NumberTable = dict[int, tuple[int, ...]]
#: what the index does with one field: its literal scan, exact-value table and number table
FieldTables = tuple[ScanEntry | None, ExactTable | None, NumberTable | None]


class Indexed(Protocol):
    """What the index reads of a rule (a CompiledRule, or a learning probe: one anchor option of one)."""

    id: str
    anchors: Anchors
    anchor_options: list[frozenset[Anchor]]


#: A field value longer than this is scanned for the keyword literals on its own and left out of the
#: event JSON: past about a kilobyte that costs less than dumping and scanning it with the rest.
LONG_VALUE = 1024
#: Field values up to this long, and ints, are memoised per field (the candidates a value makes depend
#: on it alone): most fields repeat a handful of values (Image, User, Company, Provider_Name, EventID),
#: and a dict hit replaces a literal scan, a lower-casing and table lookups. Each field keeps at most
#: MEMO_SIZE values, emptied when full; an index's memos hold at most MEMO_CHARS characters of values
#: (all emptied past it), so a type carrying long distinct values costs at most a few MB. 4,096 rather
#: than 512: OTRF's Hashes, ImageLoaded and OriginalFileName cycle through a few thousand values, and
#: a first pass over the file then memoises 49,176 values instead of 66,603 (peak RSS 197 MB, was 191).
MEMO_LEN = 200
#: Longer values, up to LONG_VALUE, are memoised in a field once they have been seen to repeat: of
#: a field's first REPEAT_PROBE such values at least REPEAT_SHARE repeats (Sysmon 10's CallTrace:
#: 1,901 distinct values of ~580 characters in 120,787 OTRF events). A field whose longer values do
#: not repeat (CommandLine) never pays their hashing and copying.
REPEAT_PROBE = 256
REPEAT_SHARE = 0.5
MEMO_SIZE = 4096
MEMO_CHARS = 1 << 20
#: a field's combined field+keyword scanner is compiled (tens of ms) once it has had this many long
#: values: a type that rarely carries one keeps the two scans and never pays the compile
COMBINE_AFTER = 64
#: TypeIndex.with_keywords: not built yet
_UNBUILT: Any = object()
#: An index naming at most this many fields looks each up; with more, it walks the event's keys.
FEW_FIELDS = 12



class TypeIndex:
    """Candidate-rule lookup for one event type (see module docstring)."""

    __slots__ = (
        "_backend",
        "_cache",
        "_subs",
        "added_memo",
        "all_entry",
        "always",
        "by_field",
        "counts",
        "exact",
        "field_list",
        "field_set",
        "has_aliases",
        "json_numbers",
        "json_scanner",
        "keyword_scan",
        "long_seen",
        "memo",
        "memo_chars",
        "memo_long",
        "nulls",
        "numbers",
        "pending",
        "probe_long",
        "raw_scanner",
        "rebuilds",
        "rules",
        "samples",
        "scanners",
        "seen",
        "settled",
        "tick",
        "with_keywords",
    )

    def __init__(
        self,
        rules: Sequence[Indexed],
        backend: str = "auto",
        cache: dict[Any, Any] | None = None,
        choices: dict[str, int] | None = None,
        reuse: bool = False,
    ) -> None:
        """``cache`` keeps compiled scanners across rebuilds (a field whose literals did not change is reused);
        ``choices`` maps rule id → the anchor option this index uses (default: the rule's best estimate);
        ``reuse``: a large literal set not compiled yet is scanned with the cached databases that hold it
        (scanners.covering) rather than compiled."""
        self.rules: list[Any] = list(rules)
        always: list[int] = []
        subs: dict[str, dict[str, list[int]]] = {}
        exact: dict[str, dict[str, list[int]]] = {}
        numbers: dict[str, dict[int, list[int]]] = {}
        nulls: dict[str, list[int]] = {}
        non_ascii: dict[
            str, set[int]
        ] = {}  # rules with regex anchors: candidates whenever the value is not ASCII
        for pos, rule in enumerate(self.rules):
            anchors = rule.anchors
            if choices and rule.id in choices and choices[rule.id] < len(rule.anchor_options):
                anchors = rule.anchor_options[choices[rule.id]]  # (an option a stored choice names that the rule lost: ignored)
            if anchors is None:
                always.append(pos)
                continue
            for field, kind, lit in anchors:
                if kind == "null":
                    nulls.setdefault(field, []).append(pos)
                    continue
                if kind == "num":
                    numbers.setdefault(field, {}).setdefault(int(lit), []).append(pos)
                    continue
                target = exact if kind == "eq" else subs
                target.setdefault(field, {}).setdefault(lit, []).append(pos)
                if kind == "rx":
                    non_ascii.setdefault(field, set()).add(pos)
        self.always: frozenset[int] = frozenset(always)
        #: per field: the rules that are candidates when the event lacks it (or holds None)
        self.nulls: tuple[tuple[str, tuple[int, ...]], ...] = tuple(
            (field, tuple(pos)) for field, pos in nulls.items()
        )
        #: (field, scanner or None, rules needing only presence, rules whenever the value is not ASCII,
        #: whether a non-ASCII value must be lower-cased before the scan)
        self.scanners: list[tuple[str, Scanner | None, tuple[int, ...], tuple[int, ...], bool]] = []
        for field, lits in subs.items():
            present = tuple(lits.pop("", ()))  # "" is in every present value
            # sorted: the literals come from frozensets, whose order varies with each process's string
            # hashing, and the compiled set is cached (across runs too) under this order
            words = sorted(lits)
            positions = [tuple(lits[w]) for w in words]
            scanner = field_scanner(words, positions, backend, field, cache, reuse) if words else None
            self.scanners.append(
                (
                    field,
                    scanner,
                    present,
                    tuple(sorted(non_ascii.get(field, ()))),
                    not all(w.isascii() for w in words),
                )
            )
        # ALL (every value joined) is the costliest text to build: scan it last, when the rest is known
        self.scanners.sort(key=lambda item: item[0] == ALL)
        #: the keyword literals as found in the event's JSON (json_all), when Hyperscan and all expressible
        self.json_scanner: BytesScanner | None = None
        #: the same literals in a record's own JSON text, any producer's (see candidates' ``raw``), or None
        self.raw_scanner: BytesScanner | None = None
        #: whether the keyword literals are all number_proof (json_all may then print floats and None)
        self.json_numbers = False
        all_lits = subs.get(ALL)
        if all_lits and backend_kind(backend) == "hyperscan":
            self.json_scanner, self.raw_scanner, self.json_numbers = keyword_scanners(all_lits, cache)
        self.exact: list[tuple[str, dict[str, tuple[int, ...]]]] = [
            (field, {lit: tuple(pos) for lit, pos in values.items()}) for field, values in exact.items()
        ]
        self.numbers: list[tuple[str, dict[int, tuple[int, ...]]]] = [
            (field, {n: tuple(pos) for n, pos in values.items()}) for field, values in numbers.items()
        ]
        # per field, everything the index does with it: the event's own keys drive the loop, so the
        # dozens of fields a type's rules name but an event lacks cost nothing (one set intersection)
        self.all_entry: ScanEntry | None = None
        self.by_field: dict[str, FieldTables] = {}
        scan_of = {item[0]: item[1:] for item in self.scanners}
        exact_of = dict(self.exact)
        numbers_of = dict(self.numbers)
        for field in {*scan_of, *exact_of, *numbers_of}:
            if field == ALL:
                self.all_entry = scan_of[ALL]
                if field not in exact_of and field not in numbers_of:
                    continue
            entry = scan_of.get(field) if field != ALL else None
            self.by_field[field] = (entry, exact_of.get(field), numbers_of.get(field))
        self.field_set = frozenset(self.by_field)
        #: per field: short value → (the candidates it makes, its lower-cased form); see MEMO_LEN
        self.memo: dict[str, dict[str | int, tuple[tuple[int, ...], str]]] = {f: {} for f in self.by_field}
        #: characters of the str values in ``memo`` (see MEMO_CHARS)
        self.memo_chars = 0
        #: the fields whose values longer than MEMO_LEN are memoised too (see REPEAT_PROBE)
        self.memo_long: set[str] = set()
        #: per field still being probed: the longer values seen and how many were repeats; None once decided
        self.probe_long: dict[str, tuple[set[str], list[int]] | None] = {}
        #: a string a mapper added → its keyword hits (see _added_hits)
        self.added_memo: dict[str, tuple[int, ...]] = {}
        #: few fields: test each (a dict lookup apiece) rather than walk the event's keys
        self.field_list: tuple[str, ...] | None = (
            tuple(self.by_field) if len(self.by_field) <= FEW_FIELDS else None
        )
        #: the fields whose scan looks for the keyword literals too, or None (no keyword literal)
        # A long value (a 10 kB script block) is scanned for the keyword literals (ALL: in any value)
        # right after its field's own scan and left out of the event JSON, rather than read three
        # times (field scan, JSON dump, JSON scan; see candidates). Only with the JSON path: the
        # joined-values fallback scans every value anyway.
        #: (the keyword literals' scanner, whether a non-ASCII text must be lower-cased first) or None
        self.keyword_scan: tuple[Scanner, bool] | None = None
        if self.json_scanner is not None and self.all_entry is not None and self.all_entry[0] is not None:
            self.keyword_scan = (self.all_entry[0], self.all_entry[3])
        #: per field with literals: its tables with a scanner that finds the keyword literals too, for
        #: long values (one pass over a script block instead of two); built once the field has had
        #: COMBINE_AFTER long values (see _with_keywords), None for a field without literals of its own
        self.with_keywords: dict[str, FieldTables | None] = {}
        #: per field, the long values seen before its combined scanner is built (see COMBINE_AFTER)
        self.long_seen: dict[str, int] = {}
        self._backend = backend
        self._cache = cache
        self._subs = subs
        self.has_aliases = False
        # hit-rate learning (see Engine._learn)
        self.tick = 0
        #: the rule-named fields this type's events carried (the engine's per-type set, see correlator.health)
        self.seen: set[str] = set()
        #: the fields this index's rules name that no event of the type has carried yet
        self.pending: frozenset[str] = frozenset()
        self.samples = 0
        self.counts = [0] * len(self.rules)
        self.rebuilds = 0
        self.settled = False

    def _with_keywords(self, field: str) -> FieldTables | None:
        """``field``'s tables with one scanner for its own literals and the keyword (ALL) ones.

        Lower-casing a non-ASCII text is exact for either literal set, so the combined scan
        lower-cases when either needs it."""
        entry, exact_t, nums_t = self.by_field[field]
        out: FieldTables | None = None
        if entry is not None and entry[0] is not None and self.all_entry is not None:
            subs = self._subs
            own = sorted(subs[field])
            all_words = sorted(subs[ALL])
            words = own + all_words
            positions = [tuple(subs[field][w]) for w in own] + [tuple(subs[ALL][w]) for w in all_words]
            scanner = field_scanner(words, positions, self._backend, field + "\x00+keywords", self._cache)
            out = ((scanner, entry[1], entry[2], entry[3] or self.all_entry[3]), exact_t, nums_t)
        self.with_keywords[field] = out
        return out

    def _field_hits(
        self, field: str, value: Any, found: set[int], lw: Lowered, tables: FieldTables | None = None
    ) -> str | None:
        """Add the rules ``value`` of ``field`` makes candidates to ``found``; returns the lower-cased
        value when the exact table needed it (else None). Depends on the value alone (see memo).
        ``tables``: the field's entry to use (default ``by_field[field]``; see ``with_keywords``)."""
        scan, exact, nums = self.by_field[field] if tables is None else tables
        text: Any
        low = None
        if scan is not None:
            scanner, present, rx, fold = scan
            text = value if type(value) is str else to_str(value)
            if not text.isascii():
                if fold or "\u0130" in text or "\u212a" in text:
                    text = text.lower()
                if rx:
                    found.update(rx)
            if present:
                found.update(present)
            if scanner is not None:
                scanner(text, found)
        if exact is not None:
            low = lw.get(field)
            if low is None:  # lower-case here rather than through Lowered.__missing__: a call less
                low = lw[field] = (value if type(value) is str else to_str(value)).lower()
            hit = exact.get(low)
            if hit is not None:
                found.update(hit)
        if nums is not None:
            number = as_number(value)
            if number is not None and not (isinstance(number, float) and not number.is_integer()):
                hit = nums.get(int(number))
                if hit is not None:
                    found.update(hit)
        return low

    def _memoise(
        self, field: str, value: str | int, seen: dict[str | int, tuple[tuple[int, ...], str]], lw: Lowered
    ) -> tuple[tuple[int, ...], str]:
        """What ``value`` of ``field`` gives (its candidates, its lower-cased form), computed and kept."""
        if len(seen) >= MEMO_SIZE:  # a field of many distinct values: start afresh
            seen.clear()
        if type(value) is str:
            self.memo_chars += len(value)
            if self.memo_chars > MEMO_CHARS:  # long distinct values: every field of the type starts afresh
                for values in self.memo.values():
                    values.clear()
                self.memo_chars = len(value)
        mine: set[int] = set()
        low = self._field_hits(field, value, mine, lw)
        if low is None:
            low = (value if type(value) is str else to_str(value)).lower()
        got = seen[value] = (tuple(mine), low)
        return got

    def _probe_long(self, field: str, value: str) -> None:
        """Count whether ``field``'s values longer than MEMO_LEN repeat; decide after REPEAT_PROBE of them."""
        probe = self.probe_long.get(field)
        if probe is None:
            probe = self.probe_long[field] = (set(), [0, 0])
        seen, counts = probe
        counts[0] += 1
        if value in seen:
            counts[1] += 1
        else:
            seen.add(value)
        if counts[0] >= REPEAT_PROBE:
            if counts[1] >= REPEAT_SHARE * counts[0]:
                self.memo_long.add(field)
            self.probe_long[field] = None

    def _added_hits(self, values: Iterable[Any], found: set[int]) -> None:
        """The keyword hits of the values a mapper added after a record's own (see candidates' ``raw``):
        mostly copies under other names (NXLog's Hostname as Computer), so each string's hits are
        memoised. With number-proof literals a number, bool or None holds none; a list, dict or other
        type reports FOLD_SENTINEL (the joined values decide)."""
        memo = self.added_memo
        scan = self.json_scanner
        assert scan is not None  # built with raw_scanner
        for value in values:
            kind = type(value)
            if kind is str:
                hits = memo.get(value)
                if hits is None:
                    mine: set[int] = set()
                    try:
                        scan(orjson.dumps(value), mine)
                    except TypeError:  # a lone surrogate: orjson refuses it, the joined values do not
                        mine.add(FOLD_SENTINEL)
                    hits = tuple(mine)
                    if len(value) <= MEMO_LEN:
                        if len(memo) >= MEMO_SIZE:
                            memo.clear()
                        memo[value] = hits
                if hits:
                    found.update(hits)
            elif not (kind is int or kind is float or kind is bool or value is None):
                found.add(FOLD_SENTINEL)

    def candidates(self, ev: dict[str, Any], lw: Lowered, raw: bytes | None = None, raw_keys: int = 0) -> list[int]:
        """Positions (ascending) of the rules that may match ``ev``.

        ``raw``: the JSON text ``ev`` was decoded from, whose values hold the values of ``ev``'s first
        ``raw_keys`` keys (a mapper may have changed them to a value found in the text, e.g. a string
        to its int, and added keys after them). The keyword literals are then looked for in that text
        and in the added keys' JSON instead of the whole event's JSON: the text is there already, and
        dumping the event cost as much as scanning it. Whatever the text may hide (_RAW_SENTINELS)
        sends the event to the joined values, as the JSON path does."""
        found: set[int] = set()
        if self.always:  # (set() and update cost half of set(frozenset()): most types have none)
            found.update(self.always)
        fields = self.field_list
        memo = self.memo
        field_hits = self._field_hits
        #: fields with a long value, scanned for the keyword literals already (left out of the JSON)
        long: list[str] = []
        keyword_scan = self.keyword_scan
        for field, hit in self.nulls:
            if ev.get(field) is None:
                found.update(hit)
        for field in self.field_set.intersection(ev) if fields is None else fields:
            value = ev.get(field)
            if value is None:
                continue
            kind = type(value)
            if (
                kind is int
                or (kind is str and len(value) <= MEMO_LEN)
                or (field in self.memo_long and kind is str and len(value) <= LONG_VALUE)
            ):
                seen = memo[field]
                got = seen.get(value)
                if got is None:
                    got = self._memoise(field, value, seen, lw)
                # the lower-cased value too: candidate rules read most of these fields, and one dict store
                # here costs less than a Lowered.__missing__ call (lower-casing again) in each rule later
                hits, lw[field] = got
                if hits:
                    found.update(hits)
                continue
            if keyword_scan is not None and type(value) is str and len(value) > LONG_VALUE:
                both = self.with_keywords.get(field, _UNBUILT)
                if both is _UNBUILT:
                    seen_long = self.long_seen[field] = self.long_seen.get(field, 0) + 1
                    both = self._with_keywords(field) if seen_long >= COMBINE_AFTER else None
                if both is not None:  # one pass finds the field's literals and the keyword ones
                    field_hits(field, value, found, lw, both)
                else:
                    field_hits(field, value, found, lw)
                    keywords, keywords_fold = keyword_scan
                    text = value
                    if not text.isascii() and (keywords_fold or "\u0130" in text or "\u212a" in text):
                        text = text.lower()
                    keywords(text, found)
                long.append(field)
            else:
                if kind is str and len(value) <= LONG_VALUE and self.probe_long.get(field, ()) is not None:
                    self._probe_long(field, value)
                field_hits(field, value, found, lw)
        if self.all_entry is not None:
            # ALL (every value joined) is the costliest text to build: scanned last, and from the
            # event's JSON when that is exact (json_all)
            scanner, present, _rx, fold = self.all_entry
            if present:
                found.update(present)
            if raw is not None and not long and self.raw_scanner is not None:
                self.raw_scanner(raw, found)
                if raw_keys < len(ev):
                    self._added_hits(islice(ev.values(), raw_keys, None), found)
                if FOLD_SENTINEL not in found:
                    return sorted(found) if found else []  # (sorted() of an empty set costs 0.14 µs)
                found.discard(FOLD_SENTINEL)
            elif self.json_scanner is not None:
                if long:  # leave out what the field loop searched already (dict.copy is one C call)
                    rest = ev.copy()
                    for field in long:
                        del rest[field]
                    data = json_all(rest, self.json_numbers)
                else:
                    data = json_all(ev, self.json_numbers)
                if data is not None:
                    self.json_scanner(data, found)
                    if FOLD_SENTINEL not in found:
                        return sorted(found) if found else []
                    found.discard(FOLD_SENTINEL)  # İ or K (Kelvin) present: scan the lower-cased text
            text = lw[RAW_ALL]
            if not text.isascii() and (fold or "\u0130" in text or "\u212a" in text):
                text = lw[ALL]
            if scanner is not None:
                scanner(text, found)
        return sorted(found) if found else []
