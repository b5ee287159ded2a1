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

from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any, Protocol

import ahocorasick
import orjson

from soclite.correlator.anchors import Anchor, Anchors
from soclite.correlator.runtime import ALL, RAW_ALL, Lowered, as_number, to_str

try:  # optional accelerator
    import hyperscan

    HAVE_HYPERSCAN = True
except ImportError:  # pragma: no cover - depends on the platform's wheels
    HAVE_HYPERSCAN = False

#: scan(text, found): add the positions of the rules whose literal occurs in ``text`` to ``found``
Scanner = Callable[[str, set[int]], None]
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


def _hs_compile(literals: list[str], extra: list[bytes] | None = None) -> Any:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    flags = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_CASELESS
    expressions = [lit.encode("utf-8") for lit in literals] + (extra or [])
    db.compile(
        expressions=expressions,
        ids=list(range(len(expressions))),
        elements=len(expressions),
        flags=[flags] * len(expressions),
        literal=True,
    )
    return db, hyperscan.Scratch(db)


def _hs_regex_literal(literal: bytes) -> bytes:
    """``literal`` as a Hyperscan expression that matches it alone (every byte but letters and digits hex-escaped)."""
    return b"".join(bytes((c,)) if chr(c).isalnum() and c < 128 else b"\\x%02x" % c for c in literal)


def _hs_compile_regex(literals: list[str], sentinels: tuple[bytes, ...]) -> Any:
    """The ``literals`` (caseless) and the ``sentinels`` (regular expressions, case as written) in one database."""
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    expressions = [_hs_regex_literal(lit.encode("utf-8")) for lit in literals] + list(sentinels)
    single = hyperscan.HS_FLAG_SINGLEMATCH
    db.compile(
        expressions=expressions,
        ids=list(range(len(expressions))),
        elements=len(expressions),
        flags=[single | hyperscan.HS_FLAG_CASELESS] * len(literals) + [single] * len(sentinels),
    )
    return db, hyperscan.Scratch(db)


def _hs_bind(compiled: Any, positions: list[tuple[int, ...]]) -> Scanner:
    """Case-insensitive (ASCII) literal scan; the text must be ASCII or lower-cased."""
    db, scratch = compiled
    scan_db = db.scan

    def on_match(ident: int, start: int, end: int, flags: int, found: Any) -> None:
        found.update(positions[ident])

    def scan(text: str, found: set[int]) -> None:
        # surrogatepass: a lone surrogate (Python's json lets "\ud800" through) is no reason to fail
        scan_db(text.encode("utf-8", "surrogatepass"), on_match, 0, found, scratch)

    return scan


#: scanner-cache kinds that :func:`dump_compiled` can serialize (Hyperscan databases)
_HS_KINDS = ("hyperscan", "hyperscan-json", "hyperscan-raw")


def dump_compiled(cache: dict[Any, Any]) -> dict[Any, bytes]:
    """The Hyperscan databases of a scanner cache (see :func:`_scanner`) as bytes, by the same keys.

    Keys are content (backend, field, literals), so a stored database is valid for any rule set;
    Aho-Corasick automatons are cheap to build and not kept."""
    return {key: hyperscan.dumpb(value[0]) for key, value in cache.items() if key[0] in _HS_KINDS}


def load_compiled(blobs: dict[Any, bytes]) -> dict[Any, Any]:
    """:func:`dump_compiled`'s output back into scanner-cache entries (an unreadable one is skipped)."""
    if not HAVE_HYPERSCAN:
        return {}
    out: dict[Any, Any] = {}
    for key, blob in blobs.items():
        try:
            db = hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
            out[key] = (db, hyperscan.Scratch(db))
        except Exception:  # a database this Hyperscan cannot load is compiled again when needed
            continue
    return out


def _aho_compile(literals: list[str]) -> Any:
    auto = ahocorasick.Automaton()
    for ident, lit in enumerate(literals):
        auto.add_word(lit, ident)
    auto.make_automaton()
    return auto


def _aho_bind(compiled: Any, positions: list[tuple[int, ...]]) -> Scanner:
    """Same contract as :func:`_hs_bind` with pyahocorasick (the text is lower-cased here)."""
    it = compiled.iter

    def scan(text: str, found: set[int]) -> None:
        for _, ident in it(text.lower()):
            found.update(positions[ident])

    return scan


def _hs_bind_bytes(compiled: Any, positions: list[tuple[int, ...]]) -> Callable[[bytes, set[int]], None]:
    db, scratch = compiled
    scan_db = db.scan

    def on_match(ident: int, start: int, end: int, flags: int, found: Any) -> None:
        found.update(positions[ident])

    def scan(data: bytes, found: set[int]) -> None:
        scan_db(data, on_match, 0, found, scratch)

    return scan


# -- keyword (unfielded) search text --------------------------------------------------------------
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
    _hs_regex_literal(_FOLDS_TO_ASCII[0]),
    _hs_regex_literal(_FOLDS_TO_ASCII[1]),
)
_RAW_DICT_IN_LIST = (rb"[\[,][ \t\r\n]*\{",)
#: json_all's fast path: orjson raises TypeError for these instead of printing them its own way
#: (datetimes, str/int/list/dict subclasses, dataclasses), so they take the joined values. Enums,
#: which orjson prints by value, read the same way in to_str; UUIDs print alike in both.
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS


_IS_LIST = list.__instancecheck__


def number_proof(literal: str) -> bool:
    """Whether ``literal`` has a character that no int, float, bool or None prints (lower-cased):
    then it cannot occur in such a value's to_str, and a JSON text may print those however it likes."""
    return not set(literal.lower()) <= _SCALAR_CHARS


#: Characters a dict's repr puts around its keys and values (see :func:`repr_proof`)
_REPR_PUNCTUATION = frozenset("'\"\\{}[], ")


def repr_proof(literal: str) -> bool:
    """Whether ``literal`` reads the same in JSON as in the repr that to_str gives a dict inside a list.

    A repr is ``{'key': value, ...}``: between two tokens there is always a quote, a space, a comma,
    a bracket or a brace, and a string's repr differs from its text only by escapes that start with a
    backslash. A literal without those characters (and number-proof: not inside a number, True or
    None) lies within one key or string value, which JSON holds as it is (json_literal). A colon is
    no bar: the repr's colon has a quote before it and a space after."""
    return _REPR_PUNCTUATION.isdisjoint(literal)


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


def _backend(backend: str) -> str:
    return "hyperscan" if backend == "hyperscan" or (backend == "auto" and HAVE_HYPERSCAN) else "aho"


def make_scanner(literals: list[str], positions: list[tuple[int, ...]], backend: str = "auto") -> Scanner:
    if _backend(backend) == "hyperscan":
        return _hs_bind(_hs_compile(literals), positions)
    return _aho_bind(_aho_compile(literals), positions)


#: A field value longer than this is scanned for the keyword literals on its own and left out of the
#: event JSON: past about a kilobyte that costs less than dumping and scanning it with the rest.
LONG_VALUE = 1024
#: Field values up to this long, and ints, are memoised per field (the candidates a value makes depend
#: on it alone): most fields repeat a handful of values (Image, User, Company, Provider_Name, EventID),
#: and a dict hit replaces a literal scan, a lower-casing and table lookups. Each field keeps at most
#: MEMO_SIZE values, emptied when full; an index's memos hold at most MEMO_CHARS characters of values
#: (all emptied past it), so a type carrying long distinct values costs at most a few MB.
MEMO_LEN = 200
#: Longer values, up to LONG_VALUE, are memoised in a field once they have been seen to repeat: of
#: a field's first REPEAT_PROBE such values at least REPEAT_SHARE repeats (Sysmon 10's CallTrace:
#: 1,901 distinct values of ~580 characters in 120,787 OTRF events). A field whose longer values do
#: not repeat (CommandLine) never pays their hashing and copying.
REPEAT_PROBE = 256
REPEAT_SHARE = 0.5
MEMO_SIZE = 512
MEMO_CHARS = 1 << 20
#: a field's combined field+keyword scanner is compiled (tens of ms) once it has had this many long
#: values: a type that rarely carries one keeps the two scans and never pays the compile
COMBINE_AFTER = 64
#: TypeIndex.with_keywords: not built yet
_UNBUILT: Any = object()
#: An index naming at most this many fields looks each up; with more, it walks the event's keys.
FEW_FIELDS = 12


def _cached(cache: dict[Any, Any] | None, key: Any, compile_: Callable[[], Any]) -> Any:
    compiled = cache.get(key) if cache is not None else None
    if compiled is None:
        compiled = compile_()
        if cache is not None:
            cache[key] = compiled
    return compiled


def _scanner(
    words: list[str], positions: list[tuple[int, ...]], backend: str, field: str, cache: dict[Any, Any] | None
) -> Scanner:
    """A scanner over ``words``: the compiled literal set (the costly part) is cached by its words
    alone, so a rebuild that only moves rules between literals binds new positions without compiling."""
    kind = _backend(backend)
    compile_ = _hs_compile if kind == "hyperscan" else _aho_compile
    compiled = _cached(cache, (kind, field, tuple(words)), lambda: compile_(words))
    return _hs_bind(compiled, positions) if kind == "hyperscan" else _aho_bind(compiled, positions)


def _keyword_scanners(
    lits: dict[str, list[int]], cache: dict[Any, Any] | None
) -> tuple[Callable[[bytes, set[int]], None] | None, Callable[[bytes, set[int]], None] | None, bool]:
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
    # and only a literal that is not repr-proof could be found in its repr and not in its JSON
    lists = numbers and not all(repr_proof(w) for w in ordered)
    sentinels = list(_FOLDS_TO_ASCII) + (list(_DICT_IN_LIST) if lists else [])
    # the field part names the sentinel set: a database with other sentinels is not reused
    kind = ALL + ("+lists" if lists else "")
    compiled = _cached(cache, ("hyperscan-json", kind, tuple(words)), lambda: _hs_compile(words, sentinels))
    json_scanner = _hs_bind_bytes(compiled, positions + [(FOLD_SENTINEL,)] * len(sentinels))
    if not numbers:
        return json_scanner, None, False
    raw_sentinels = _RAW_SENTINELS + (_RAW_DICT_IN_LIST if lists else ())
    compiled = _cached(cache, ("hyperscan-raw", kind, tuple(words)), lambda: _hs_compile_regex(words, raw_sentinels))
    raw_scanner = _hs_bind_bytes(compiled, positions + [(FOLD_SENTINEL,)] * len(raw_sentinels))
    return json_scanner, raw_scanner, True


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
    ) -> None:
        """``cache`` keeps compiled scanners across rebuilds (a field whose literals did not change is reused);
        ``choices`` maps rule id → the anchor option this index uses (default: the rule's best estimate)."""
        self.rules: list[Any] = list(rules)
        always: list[int] = []
        subs: dict[str, dict[str, list[int]]] = {}
        exact: dict[str, dict[str, list[int]]] = {}
        numbers: dict[str, dict[int, list[int]]] = {}
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
                if kind == "num":
                    numbers.setdefault(field, {}).setdefault(int(lit), []).append(pos)
                    continue
                target = exact if kind == "eq" else subs
                target.setdefault(field, {}).setdefault(lit, []).append(pos)
                if kind == "rx":
                    non_ascii.setdefault(field, set()).add(pos)
        self.always: frozenset[int] = frozenset(always)
        #: (field, scanner or None, rules needing only presence, rules whenever the value is not ASCII,
        #: whether a non-ASCII value must be lower-cased before the scan)
        self.scanners: list[tuple[str, Scanner | None, tuple[int, ...], tuple[int, ...], bool]] = []
        for field, lits in subs.items():
            present = tuple(lits.pop("", ()))  # "" is in every present value
            # sorted: the literals come from frozensets, whose order varies with each process's string
            # hashing, and the compiled set is cached (across runs too) under this order
            words = sorted(lits)
            positions = [tuple(lits[w]) for w in words]
            scanner = _scanner(words, positions, backend, field, cache) if words else None
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
        self.json_scanner: Callable[[bytes, set[int]], None] | None = None
        #: the same literals in a record's own JSON text, any producer's (see candidates' ``raw``), or None
        self.raw_scanner: Callable[[bytes, set[int]], None] | None = None
        #: whether the keyword literals are all number_proof (json_all may then print floats and None)
        self.json_numbers = False
        all_lits = subs.get(ALL)
        if all_lits and _backend(backend) == "hyperscan":
            self.json_scanner, self.raw_scanner, self.json_numbers = _keyword_scanners(all_lits, cache)
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
            scanner = _scanner(words, positions, self._backend, field + "\x00+keywords", self._cache)
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
        found: set[int] = set(self.always)
        fields = self.field_list
        memo = self.memo
        field_hits = self._field_hits
        #: fields with a long value, scanned for the keyword literals already (left out of the JSON)
        long: list[str] = []
        keyword_scan = self.keyword_scan
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
                    return sorted(found)
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
                        return sorted(found)
                    found.discard(FOLD_SENTINEL)  # İ or K (Kelvin) present: scan the lower-cased text
            text = lw[RAW_ALL]
            if not text.isascii() and (fold or "\u0130" in text or "\u212a" in text):
                text = lw[ALL]
            if scanner is not None:
                scanner(text, found)
        return sorted(found)
