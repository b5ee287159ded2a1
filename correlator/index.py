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
saves lower-casing fields of events no rule will look at; a value with
non-ASCII characters is lower-cased first, because Unicode case folding can
turn a non-ASCII character into an ASCII one (KELVIN SIGN → "k").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ahocorasick

from correlator.loader import CompiledRule
from correlator.runtime import ALL, MISS, RAW_ALL, Lowered, as_number, to_str

try:  # optional accelerator
    import hyperscan

    HAVE_HYPERSCAN = True
except ImportError:  # pragma: no cover - depends on the platform's wheels
    HAVE_HYPERSCAN = False

#: scan(text, found): add the positions of the rules whose literal occurs in ``text`` to ``found``
Scanner = Callable[[str, set[int]], None]


def _hs_scanner(literals: list[str], positions: list[tuple[int, ...]]) -> Scanner:
    """Case-insensitive (ASCII) literal scan; the text must be ASCII or lower-cased."""
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    flags = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_CASELESS
    db.compile(
        expressions=[lit.encode("utf-8") for lit in literals],
        ids=list(range(len(literals))),
        elements=len(literals),
        flags=[flags] * len(literals),
        literal=True,
    )
    scratch = hyperscan.Scratch(db)
    scan_db = db.scan

    def on_match(ident: int, start: int, end: int, flags: int, found: Any) -> None:
        found.update(positions[ident])

    def scan(text: str, found: set[int]) -> None:
        scan_db(text.encode("utf-8"), on_match, 0, found, scratch)

    return scan


def _aho_scanner(literals: list[str], positions: list[tuple[int, ...]]) -> Scanner:
    """Same contract as :func:`_hs_scanner` with pyahocorasick (the text is lower-cased here)."""
    auto = ahocorasick.Automaton()
    for ident, lit in enumerate(literals):
        auto.add_word(lit, ident)
    auto.make_automaton()

    def scan(text: str, found: set[int]) -> None:
        for _, ident in auto.iter(text.lower()):
            found.update(positions[ident])

    return scan


def make_scanner(literals: list[str], positions: list[tuple[int, ...]], backend: str = "auto") -> Scanner:
    if backend == "hyperscan" or (backend == "auto" and HAVE_HYPERSCAN):
        return _hs_scanner(literals, positions)
    return _aho_scanner(literals, positions)


class TypeIndex:
    """Candidate-rule lookup for one event type (see module docstring)."""

    __slots__ = (
        "always",
        "counts",
        "exact",
        "has_aliases",
        "numbers",
        "rebuilds",
        "rules",
        "samples",
        "scanners",
        "tick",
    )

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        backend: str = "auto",
        cache: dict[Any, Scanner] | None = None,
        choices: dict[str, int] | None = None,
    ) -> None:
        """``cache`` keeps compiled scanners across rebuilds (a field whose literals did not change is reused);
        ``choices`` maps rule id → the anchor option this index uses (default: the rule's best estimate)."""
        self.rules: list[CompiledRule] = list(rules)
        always: list[int] = []
        subs: dict[str, dict[str, list[int]]] = {}
        exact: dict[str, dict[str, list[int]]] = {}
        numbers: dict[str, dict[int, list[int]]] = {}
        non_ascii: dict[
            str, set[int]
        ] = {}  # rules with regex anchors: candidates whenever the value is not ASCII
        for pos, rule in enumerate(self.rules):
            anchors = rule.anchors
            if choices and rule.id in choices:
                anchors = rule.anchor_options[choices[rule.id]]
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
        #: (field, scanner or None, rules needing only presence, rules whenever the value is not ASCII)
        self.scanners: list[tuple[str, Scanner | None, tuple[int, ...], tuple[int, ...]]] = []
        for field, lits in subs.items():
            present = tuple(lits.pop("", ()))  # "" is in every present value
            words = list(lits)
            positions = [tuple(lits[w]) for w in words]
            scanner = None
            if words:
                cache_key = (backend, field, tuple(zip(words, positions, strict=True)))
                scanner = cache.get(cache_key) if cache is not None else None
                if scanner is None:
                    scanner = make_scanner(words, positions, backend)
                    if cache is not None:
                        cache[cache_key] = scanner
            self.scanners.append((field, scanner, present, tuple(sorted(non_ascii.get(field, ())))))
        # ALL (every value joined) is the costliest text to build: scan it last, when the rest is known
        self.scanners.sort(key=lambda item: item[0] == ALL)
        self.exact: list[tuple[str, dict[str, tuple[int, ...]]]] = [
            (field, {lit: tuple(pos) for lit, pos in values.items()}) for field, values in exact.items()
        ]
        self.numbers: list[tuple[str, dict[int, tuple[int, ...]]]] = [
            (field, {n: tuple(pos) for n, pos in values.items()}) for field, values in numbers.items()
        ]
        self.has_aliases = False
        # hit-rate learning (see Engine._learn)
        self.tick = 0
        self.samples = 0
        self.counts = [0] * len(self.rules)
        self.rebuilds = 0

    def candidates(self, ev: dict[str, Any], lw: Lowered) -> list[int]:
        """Positions (ascending) of the rules that may match ``ev``."""
        found: set[int] = set(self.always)
        get = ev.get
        text: Any
        for field, scanner, present, rx in self.scanners:
            if field == ALL:
                text = lw[RAW_ALL]
                if not text.isascii():
                    text = lw[ALL]
            else:
                text = get(field)
                if text is None:
                    continue
                if type(text) is not str:
                    text = to_str(text)
                if not text.isascii():
                    text = text.lower()
                    if rx:
                        found.update(rx)
            if present:
                found.update(present)
            if scanner is not None:
                scanner(text, found)
        for field, table in self.exact:
            cached = lw.get(field)
            if (
                cached is None
            ):  # lower-case here rather than through Lowered.__missing__: a call less per field
                value = get(field)
                text = MISS if value is None else (value if type(value) is str else to_str(value)).lower()
                lw[field] = text
            else:
                text = cached
            if text is not MISS:
                hit = table.get(text)
                if hit is not None:
                    found.update(hit)
        for field, nums in self.numbers:
            number = as_number(get(field))
            if number is None or (isinstance(number, float) and not number.is_integer()):
                continue
            hit = nums.get(int(number))
            if hit is not None:
                found.update(hit)
        return sorted(found)
