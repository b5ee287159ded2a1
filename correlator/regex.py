"""Regular expressions: pick the faster engine per pattern, and find the literals a pattern needs."""

from __future__ import annotations

import re
import re._parser as re_parser
import time
from collections.abc import Callable
from typing import Any

import re2

from soclite.correlator.anchors import anchor_cost
from soclite.correlator.regex_gate import GATE_MIN_LEN, compile_gate
from soclite.correlator.regex_gate import HAVE_HYPERSCAN as HAVE_GATE


class Regex:
    """A regex whose ``search`` is Python ``re`` or google-re2, whichever is faster on the real data.

    Some SigmaHQ regexes backtrack badly in ``re`` (hundreds of µs on a long
    script block) and run in a few µs in re2; others are several times faster in
    ``re``. Synthetic samples guess wrong, so the first :data:`TRIALS` calls run
    both engines on the actual field values, then ``search`` is rebound to the
    faster engine's bound method (no wrapper left on the hot path). If the two
    ever disagree, ``re`` (the reference semantics) is kept. re2 lacks
    look-arounds and back references: when it refuses a pattern, ``re`` is used.
    """

    TRIALS = 50
    #: a single ``re`` call slower than this settles on re2 at once (catastrophic backtracking)
    SLOW = 0.002

    __slots__ = (
        "_gate",
        "_inner",
        "_n",
        "_py",
        "_r2",
        "_slow",
        "_t_py",
        "_t_r2",
        "flags",
        "pattern",
        "search",
    )

    def __init__(self, pattern: str, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags
        self._py = re.compile(pattern, flags)
        self._r2: Any = _compile_re2(pattern, flags)
        self._n = 0
        self._t_py = 0.0
        self._t_r2 = 0.0
        #: Hyperscan's "can it match at all" on long ASCII texts (correlator.regex_gate): compiled on the
        #: first such text (most regexes never see one, and loading stays fast); None: no gate
        self._gate: Any = _PENDING if HAVE_GATE else None
        self._slow = 0
        self._inner: Callable[[str], Any] = self._py.search
        self.search: Callable[[str], Any] = self._py.search
        self._use(self._py.search if self._r2 is None else self._trial)

    def __reduce__(self) -> tuple[type[Regex], tuple[str, int]]:
        """Pickled (the rule cache) as its pattern and flags: the engine trial starts afresh on load."""
        return (Regex, (self.pattern, self.flags))

    def _use(self, search: Callable[[str], Any]) -> None:
        """Make ``search`` the engine (behind the gate when there is one)."""
        if self._gate is None:
            self.search = search
        else:
            self._inner = search
            self.search = self._gated

    def _gated(self, text: str) -> Any:
        if len(text) >= GATE_MIN_LEN and text.isascii():
            gate = self._gate
            if gate is _PENDING:  # worth compiling (some ms) only for a regex slow on real long texts
                t0 = time.perf_counter()
                found = self._inner(text)
                if time.perf_counter() - t0 > GATE_WORTH:
                    self._slow += 1
                    if self._slow >= GATE_AFTER:
                        self._gate = compile_gate(self.pattern, self.flags)
                        if self._gate is None:  # no gate for this pattern: the engine alone from now on
                            self.search = self._inner
                return found
            if not gate(text):
                return None  # proven: no occurrence (see regex_gate)
        return self._inner(text)

    @property
    def engine(self) -> str:
        search = self.search if self._gate is None else self._inner
        if search == self._py.search:
            return "re"
        return "trial" if search == self._trial else "re2"

    def _trial(self, text: str) -> Any:
        t0 = time.perf_counter()
        found = self._py.search(text)
        t1 = time.perf_counter()
        try:
            other = self._r2.search(text)
        except Exception:  # an re2 runtime refusal: keep the reference engine
            self._use(self._py.search)
            return found
        t2 = time.perf_counter()
        if (found is None) != (other is None):
            self._use(self._py.search)
            return found
        self._t_py += t1 - t0
        self._t_r2 += t2 - t1
        self._n += 1
        if t1 - t0 > self.SLOW and t2 - t1 < t1 - t0:
            self._use(self._r2.search)
        elif self._n >= self.TRIALS:
            self._use(self._r2.search if self._t_r2 < self._t_py else self._py.search)
        return found


#: the gate is not compiled yet (see Regex._gated)
_PENDING: Any = object()
#: a search on a long ASCII text slower than this counts towards compiling the gate ...
GATE_WORTH = 20e-6
#: ... which happens after this many such searches (most regexes never get there: no compile cost)
GATE_AFTER = 3


def _compile_re2(pattern: str, flags: int) -> Any:
    try:
        opts = re2.Options()
        opts.case_sensitive = not flags & re.IGNORECASE
        opts.dot_nl = bool(flags & re.DOTALL)
        opts.never_nl = False
        opts.log_errors = False
        return re2.compile(pattern if not flags & re.MULTILINE else "(?m)" + pattern, opts)
    except Exception:  # re2 raises its own error types for unsupported syntax
        return None


def choose_regex(pattern: str, flags: int) -> Regex:
    return Regex(pattern, flags)


def regex_literals(pattern: str) -> frozenset[str] | None:
    """Lower-cased ASCII literals one of which occurs in any text the regex matches, or None.

    Walks Python's own parse of the pattern: literal runs outside optional parts
    are required; an alternation needs one literal per branch. Only ASCII runs
    are taken, and the index uses these anchors only on ASCII field values (on
    others the rule always runs): Unicode case folding (KELVIN SIGN matches "k"
    under re.I) and context-dependent lower() then cannot make them wrong.
    """
    options = regex_literal_options(pattern)
    return min(options, key=_literal_cost) if options else None


def regex_literal_options(pattern: str) -> list[frozenset[str]]:
    """Every necessary literal set of the regex's top-level sequence (see :func:`regex_literals`)."""
    try:
        parsed = re_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return []
    return _required(list(parsed))


def _literal_cost(option: frozenset[str]) -> float:
    return anchor_cost(frozenset(("", "sub", lit) for lit in option))


def _required(seq: list[Any]) -> list[frozenset[str]]:
    """Necessary literal sets of one parsed sequence (each set: one of its literals occurs), lower-cased."""
    return _necessary(seq, False, exact=False)


def _necessary(seq: list[Any], icase: bool, *, exact: bool) -> list[frozenset[str]]:
    """The literal sets every match of ``seq`` holds (each set: one of its literals occurs).

    ``exact=False`` (:func:`_required`): ASCII literals lower-cased, an alternation gives its cheapest
    literals by :func:`anchor_cost`. ``exact=True`` (:func:`_exact_required`): literals as written, under
    IGNORECASE (``icase``, followed into groups that set or clear it) only caseless characters, and an
    alternation gives, of each branch's sets holding rare characters, the smallest.
    """
    options: list[frozenset[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            options.append(frozenset({"".join(run)}))
            run.clear()

    for op, av in seq:
        name = str(op)
        if name == "LITERAL":
            ch = chr(av)
            if exact and (not icase or _caseless(ch)):
                run.append(ch)
                continue
            if not exact and av < 128:
                run.append(ch.lower())
                continue
        flush()
        sub: list[frozenset[str]] = []
        if name == "SUBPATTERN":
            add, remove = av[1], av[2]
            inner = (icase or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
            sub = _necessary(list(av[-1]), inner, exact=exact)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
            sub = _necessary(list(av[2]), icase, exact=exact)
        elif name == "ATOMIC_GROUP":
            sub = _necessary(list(av), icase, exact=exact)
        elif name == "BRANCH":
            union: set[str] = set()
            for branch in av[1]:
                got = _necessary(list(branch), icase, exact=exact)
                if exact:
                    got = [o for o in got if all(any(map(_rare, x)) for x in o)]
                if not got:
                    union = set()
                    break
                chosen: frozenset[str] = min(got, key=_smallest if exact else _literal_cost)
                union |= chosen
            sub = [frozenset(union)] if union else []
        options.extend(sub)
    flush()
    return options


def _smallest(option: frozenset[str]) -> tuple[int, list[str]]:
    return len(option), sorted(option)


# -- prefilters: cheap checks that every match implies ------------------------------------------------
#: at most this many character sets are tested before a regex (each is one ``in`` over the value)
PREFILTER_SETS = 2
#: characters common in command lines and scripts: testing for them before a regex rarely spares it
COMMON_CHARS = frozenset(" \t\r\n-_.,:;/\\()=\"'&|+*%@#!?<>[]")


def regex_prefilter(pattern: str, flags: int) -> tuple[list[frozenset[str]], int]:
    """What any text the regex matches must hold, testable without the regex: a list of character sets
    (one character of each set occurs in the text) and the minimum match length.

    The characters come from the literals every match contains (the branches of an alternation give
    one literal each), one character per literal: a single character is found by ``memchr`` at
    memory speed, where CPython's substring search of a two-character literal in a 10 kB script
    block costs more than most regex searches. Only rare characters are kept (not letters, digits,
    spaces or :data:`COMMON_CHARS`): they are the ones whose absence is worth testing. A literal
    under IGNORECASE has no case variants by then (letters are never taken; ``re`` folds letters
    only, including the non-ASCII ones it equates with ASCII letters such as U+017F and U+212A).
    Look-arounds, back references and optional parts contribute nothing. Unparseable: nothing.
    """
    try:
        parsed = re_parser.parse(pattern, flags)
    except (re.error, RecursionError, OverflowError):
        return [], 0
    icase = bool(parsed.state.flags & re.IGNORECASE)
    try:
        literal_sets = _exact_required(list(parsed), icase)
        low = parsed.getwidth()[0]
    except (RecursionError, OverflowError):
        return [], 0
    char_sets: set[frozenset[str]] = set()
    for lits in literal_sets:
        chars = frozenset(next((c for c in lit if _rare(c)), "") for lit in lits)
        if "" not in chars:
            char_sets.add(chars)
    ordered = sorted(char_sets, key=lambda s: (len(s), sorted(s)))
    return ordered[:PREFILTER_SETS], int(low)


def _rare(ch: str) -> bool:
    return ch.isascii() and not ch.isalnum() and ch not in COMMON_CHARS


def _caseless(ch: str) -> bool:
    return ch.isascii() and not ch.isalpha()


def _exact_required(seq: list[Any], icase: bool) -> list[frozenset[str]]:
    """Like :func:`_required`, with literals as written, and under IGNORECASE only caseless characters."""
    return _necessary(seq, icase, exact=True)
