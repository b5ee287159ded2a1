"""Compile a pySigma condition tree into one Python function per rule.

pySigma has already applied every value modifier (``windash``, ``base64offset``,
``wide``, ``contains`` ...) and turned the condition into a tree of
AND/OR/NOT over ``field = value`` atoms. We turn that tree into Python source
and ``exec`` it once: a generated function costs one frame per event where a
tree of closures would cost one call per node, which is what makes thousands
of rules affordable on one core.

The generated function has the signature ``f(ev, lw)``: ``ev`` is the event
dict, ``lw`` a lazily filled mapping field → lower-cased string value (or the
:data:`MISS` sentinel for a missing/None field) so each field is lower-cased
at most once per event, and only if some candidate rule asks for it.

Besides the source, the compiler computes the rule's *anchors*: a set of
``(field, kind, literal)`` alternatives such that, if the rule matches an
event, at least one of them is present (``kind`` "sub": the literal occurs in
the lower-cased field value; "eq": the lower-cased value equals it). The index
skips a rule only when none of its anchors is present, so indexing never
changes results. ``None`` means "no such guarantee": the rule always runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from itertools import islice, product
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

from soclite.correlator.anchors import Anchor, Anchors, anchor_cost
from soclite.correlator.regex import Regex, choose_regex, regex_literal_options, regex_prefilter
from soclite.correlator.runtime import ALL, MISS, RUNTIME, Lowered
from soclite.errors import RuleError

#: An OR's anchor options (see RuleCompiler.options): of each operand its OR_ARG_OPTIONS cheapest, and
#: at most OR_OPTIONS combinations (the engine's learning tries the cheapest few of a rule's options)
OR_ARG_OPTIONS = 3
OR_OPTIONS = 16


class RuleCompiler:
    """Turns one condition tree into a function source plus anchors.

    ``placeholders`` resolves ``%name%`` placeholders left by the ``expand``
    modifier (from configuration); an unknown placeholder is a :class:`RuleError`.
    """

    def __init__(self, placeholders: dict[str, list[str]] | None = None) -> None:
        self.placeholders = placeholders or {}
        self.ns: dict[str, Any] = {}
        self.memo: dict[int, Anchors] = {}
        self.leaf_options: dict[frozenset[Anchor], list[frozenset[Anchor]]] = {}
        self._n = 0

    # -- helpers -------------------------------------------------------------
    def const(self, value: Any) -> str:
        name = f"_c{self._n}"
        self._n += 1
        self.ns[name] = value
        return name

    def var(self) -> str:
        self._n += 1
        return f"_v{self._n}"

    # -- tree ------------------------------------------------------------------
    def expr(self, node: Any) -> tuple[str, Anchors]:
        code, anchors = self._expr(node)
        self.memo[id(node)] = anchors
        return code, anchors

    def options(self, node: Any) -> list[frozenset[Anchor]]:
        """Every anchor set that is necessary for ``node`` (after :meth:`expr`): one per AND operand, and
        for an OR one per combination of an option of each operand (a match of the OR is a match of
        an operand, which holds an anchor of each of its options): of each operand its OR_ARG_OPTIONS
        cheapest, the first OR_OPTIONS combinations in that order (varying the last operand first; an
        OR of many operands has thousands), then sorted by cost. Any subset of them is exact."""
        if isinstance(node, ConditionAND):
            return [opt for arg in node.args for opt in self.options(arg)]
        anchors = self.memo.get(id(node))
        if anchors is None:
            return []
        if isinstance(node, ConditionOR) and all(id(arg) in self.memo for arg in node.args):
            per_arg = [sorted(self.options(arg), key=anchor_cost)[:OR_ARG_OPTIONS] for arg in node.args]
            if all(per_arg) and any(len(opts) > 1 for opts in per_arg):
                combos = {frozenset().union(*combo) for combo in islice(product(*per_arg), OR_OPTIONS)}
                return sorted(combos, key=lambda opt: (anchor_cost(opt), sorted(opt)))
        return self.leaf_options.get(anchors, [anchors])

    def _expr(self, node: Any) -> tuple[str, Anchors]:
        if isinstance(node, ConditionAND):
            parts = [self.expr(a) for a in node.args]
            code = "(" + " and ".join(p[0] for p in parts) + ")"
            best: Anchors = None
            for _, anchors in parts:
                if anchors is not None and (best is None or anchor_cost(anchors) < anchor_cost(best)):
                    best = anchors
            return code, best
        if isinstance(node, ConditionOR):
            grouped = self._grouped_or(node.args)
            if grouped is not None:
                return grouped
            parts = [self.expr(a) for a in node.args]
            code = "(" + " or ".join(p[0] for p in parts) + ")"
            union: set[Anchor] = set()
            for _, anchors in parts:
                if anchors is None:
                    return code, None
                union |= anchors
            return code, frozenset(union)
        if isinstance(node, ConditionNOT):
            inner, _ = self.expr(node.args[0])
            return f"(not {inner})", None
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.field_value(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return self.keyword_value(node.value)
        if node is None:
            return "False", frozenset()
        raise RuleError(f"unsupported condition element {type(node).__name__}")

    def _grouped_or(self, args: list[Any]) -> tuple[str, Anchors] | None:
        """``field|endswith: [a, b, c]`` → one ``str.endswith((a, b, c))`` call instead of three."""
        if not args or not all(isinstance(a, ConditionFieldEqualsValueExpression) for a in args):
            return None
        fields = {a.field for a in args}
        if len(fields) != 1:
            return None
        kinds: dict[str, list[str]] = {}
        for a in args:
            v = a.value
            if type(v) is not SigmaString or v.contains_placeholder():
                return None
            shape = _string_shape(v)
            if shape is None or shape[1] == "" or MISS.find(shape[1]) >= 0:
                return None
            kinds.setdefault(shape[0], []).append(shape[1])
        field = next(iter(fields))
        v = self.var()
        terms = []
        anchors: set[Anchor] = set()
        for kind, lits in kinds.items():
            tup = self.const(tuple(lits) if kind != "eq" else frozenset(lits))
            if kind == "eq":
                terms.append(f"{v} in {tup}")
                anchors.update((field, "eq", lit) for lit in lits)
            elif kind == "start":
                terms.append(f"{v}.startswith({tup})")
                anchors.update((field, "sub", lit) for lit in lits)
            elif kind == "end":
                terms.append(f"{v}.endswith({tup})")
                anchors.update((field, "sub", lit) for lit in lits)
            else:
                terms.extend(f"{self.const(lit)} in {v}" for lit in lits)
                anchors.update((field, "sub", lit) for lit in lits)
        code = f"(({v} := lw[{field!r}]) is not _MISS and ({' or '.join(terms)}))"
        return code, frozenset(anchors)

    # -- atoms -----------------------------------------------------------------
    def field_value(self, field: str, value: Any) -> tuple[str, Anchors]:
        f = repr(field)
        if isinstance(value, SigmaExpansion):
            parts = [self.field_value(field, v) for v in value.values]
            if not parts:
                return "False", frozenset()
            union: set[Anchor] = set()
            none = False
            for _, a in parts:
                if a is None:
                    none = True
                else:
                    union |= a
            return "(" + " or ".join(p[0] for p in parts) + ")", None if none else frozenset(union)
        if isinstance(value, SigmaString):
            return self.string_value(field, value)
        if isinstance(value, SigmaBool):
            want = "true" if value.boolean else "false"
            return f"(lw[{f}] == {want!r})", frozenset({(field, "eq", want)})
        if isinstance(value, SigmaTimestampPart):
            part = {
                TimestampPart.MINUTE: "minute",
                TimestampPart.HOUR: "hour",
                TimestampPart.DAY: "day",
                TimestampPart.WEEK: "week",
                TimestampPart.MONTH: "month",
                TimestampPart.YEAR: "year",
            }[value.timestamp_part]
            return f"(_ts_part(ev.get({f}), {part!r}) == {value.number!r})", None
        if isinstance(value, SigmaNumber):
            n = value.number
            code = f"_num_eq(ev.get({f}), {n!r})"
            if isinstance(n, int):  # num_eq(v, n) implies as_number(v) == n: an exact numeric lookup
                return code, frozenset({(field, "num", str(n))})
            return code, None
        if isinstance(value, SigmaNull):
            v = self.var()
            # a missing or None value (the index's "null" anchor) or one whose string form is empty
            return f"(({v} := lw[{f}]) is _MISS or {v} == '')", frozenset({(field, "null", ""), (field, "eq", "")})
        if isinstance(value, SigmaExists):
            op = "is not" if value.exists else "is"
            return f"(lw[{f}] {op} _MISS)", None
        if isinstance(value, SigmaRegularExpression):
            found = regex_literal_options(str(value.regexp))
            options = [frozenset((field, "rx", lit) for lit in lits) for lits in found]
            anchors = min(options, key=anchor_cost) if options else None
            if anchors is not None:
                self.leaf_options[anchors] = options
            return self.regex(f"_raw(ev, {f})", value), anchors
        if isinstance(value, SigmaCIDRExpression):
            return f"_cidr(ev.get({f}), {self.const(value.network)})", None
        if isinstance(value, SigmaCompareExpression):
            op = {
                CompareOperators.LT: "<",
                CompareOperators.LTE: "<=",
                CompareOperators.GT: ">",
                CompareOperators.GTE: ">=",
            }[value.op]
            v = self.var()
            return (
                f"(({v} := _as_number(ev.get({f}))) is not None and {v} {op} {value.number.number!r})",
                None,
            )
        if isinstance(value, SigmaFieldReference):
            other = repr(value.field)
            v = self.var()
            if value.starts_with:
                test = f"{v}.startswith(lw[{other}])"
            elif value.ends_with:
                test = f"{v}.endswith(lw[{other}])"
            else:
                test = f"{v} == lw[{other}]"
            return f"(({v} := lw[{f}]) is not _MISS and lw[{other}] is not _MISS and {test})", None
        raise RuleError(f"unsupported value type {type(value).__name__} for field {field}")

    def string_value(self, field: str, sigma_value: SigmaString) -> tuple[str, Anchors]:
        resolved = self._resolve_placeholders(sigma_value)
        if isinstance(resolved, SigmaExpansion):
            return self.field_value(field, resolved)
        value = resolved
        f = repr(field)
        cased = isinstance(value, SigmaCasedString)
        shape = _string_shape(value)
        anchor = _best_literal(value)
        anchors: Anchors = frozenset({(field, "sub", anchor)}) if anchor else None
        if shape is not None and not cased and shape[0] == "eq":
            anchors = frozenset({(field, "eq", shape[1])})
        if cased:
            v = self.var()
            subject = f"(({v} := _raw(ev, {f})) is not None and "
        else:
            v = self.var()
            subject = f"(({v} := lw[{f}]) is not _MISS and "
        if shape is not None:
            kind, lit = shape
            if cased:
                lit = _plain(value, lower=False)
            c = self.const(lit)
            if kind == "eq":
                test = f"{v} == {c}"
            elif kind == "start":
                test = f"{v}.startswith({c})"
            elif kind == "end":
                test = f"{v}.endswith({c})"
            elif kind == "any":
                test = "True"
            else:
                test = f"{c} in {v}"
            return subject + test + ")", anchors
        rx = self.const(_wildcard_regex(value, lower=not cased).fullmatch)
        return subject + f"{rx}({v}) is not None)", anchors

    def keyword_value(self, value: Any) -> tuple[str, Anchors]:
        """A keyword: a value searched in every field (lower-cased), as ``*value*`` unless it has wildcards."""
        if isinstance(value, SigmaExpansion):
            parts = [self.keyword_value(v) for v in value.values]
            return "(" + " or ".join(p[0] for p in parts) + ")", None
        if isinstance(value, SigmaString):
            value = self._resolve_placeholders(value)
            if isinstance(value, SigmaExpansion):
                return self.keyword_value(value)
            if not value.contains_special():
                text = _plain(value, lower=True)
                if text and "\x00" not in text:
                    return f"({self.const(text)} in lw[{ALL!r}])", frozenset({(ALL, "sub", text)})
                return f"_keyword(ev, {self.const(text)}.__contains__)", None
            func = _wildcard_regex(value, lower=True).fullmatch
            return f"_keyword(ev, {self.const(func)})", None
        if isinstance(value, SigmaRegularExpression):
            name = self.const(None)
            self.ns[name] = _compile_regex(value)
            return f"_keyword_raw(ev, {name})", None
        if isinstance(value, SigmaNumber):
            text = str(value.number)
            return f"({self.const(text)} in lw[{ALL!r}])", frozenset({(ALL, "sub", text)})
        raise RuleError(f"unsupported keyword value type {type(value).__name__}")

    def regex(self, subject: str, value: SigmaRegularExpression) -> str:
        compiled = _compile_regex(value)
        name = self.const(compiled)
        v = self.var()
        # cheap necessary conditions first (regex_prefilter): most values fail them, and a regex
        # search costs from a few µs to milliseconds on a long script block
        checks = []
        sets, shortest = regex_prefilter(compiled.pattern, compiled.flags)
        if shortest >= 2:
            checks.append(f"len({v}) >= {shortest}")
        for chars in sets:
            if len(chars) <= PREFILTER_ALTERNATIVES:
                checks.append("(" + " or ".join(f"{self.const(ch)} in {v}" for ch in sorted(chars)) + ")")
        pre = "".join(f"{c} and " for c in checks)
        return f"(({v} := {subject}) is not None and {pre}{name}.search({v}) is not None)"

    def _resolve_placeholders(self, value: SigmaString) -> SigmaString | SigmaExpansion:
        if not value.contains_placeholder():
            return value
        missing = [p.name for p in value.s if isinstance(p, Placeholder) and p.name not in self.placeholders]
        if missing:
            raise RuleError(f"placeholder %{missing[0]}% has no configured values (correlator.placeholders)")

        def callback(p: Placeholder) -> Iterable[str | SpecialChars | Placeholder]:
            return [SigmaString(v) for v in self.placeholders[p.name]]  # type: ignore[misc]

        values = value.replace_placeholders(callback)  # type: ignore[arg-type]
        if len(values) == 1:
            return values[0]
        return SigmaExpansion(list(values))


#: a regex's prefilter tests a character set only if it has at most this many alternatives
PREFILTER_ALTERNATIVES = 4


def _compile_regex(value: SigmaRegularExpression) -> Regex:
    flags = 0
    if SigmaRegularExpressionFlag.IGNORECASE in value.flags:
        flags |= re.IGNORECASE
    if SigmaRegularExpressionFlag.MULTILINE in value.flags:
        flags |= re.MULTILINE
    if SigmaRegularExpressionFlag.DOTALL in value.flags:
        flags |= re.DOTALL
    try:
        return choose_regex(str(value.regexp), flags)
    except re.error as exc:
        raise RuleError(f"invalid regular expression {value.regexp}: {exc}") from exc


def _plain(value: SigmaString, *, lower: bool) -> str:
    text = "".join(p for p in value.s if isinstance(p, str))
    return text.lower() if lower else text


def _string_shape(value: SigmaString) -> tuple[str, str] | None:
    """Classify a string as eq / start / end / contains / any with its lower-cased literal, or None."""
    parts = value.s
    if any(p is SpecialChars.WILDCARD_SINGLE or isinstance(p, Placeholder) for p in parts):
        return None
    multi = SpecialChars.WILDCARD_MULTI
    inner = list(parts)
    lead = bool(inner) and inner[0] is multi
    trail = len(inner) > int(lead) and inner[-1] is multi
    core = inner[int(lead) : len(inner) - int(trail)]
    if any(p is multi for p in core):
        if not core and (lead or trail):
            return ("any", "")
        return None
    if len(core) > 1:
        return None
    lit = core[0].lower() if core else ""  # type: ignore[union-attr]
    if not core:
        return ("any", "") if (lead or trail) else ("eq", "")
    if lead and trail:
        return ("contains", lit)
    if lead:
        return ("end", lit)
    if trail:
        return ("start", lit)
    return ("eq", lit)


def _best_literal(value: SigmaString) -> str:
    """The longest plain part: present (lower-cased) in every value the string matches."""
    best = ""
    for p in value.s:
        if isinstance(p, str) and len(p) > len(best):
            best = p
    best = best.lower()
    if MISS.find(best) >= 0:
        return ""
    return best


def _wildcard_regex(value: SigmaString, *, lower: bool) -> re.Pattern[str]:
    out = []
    for p in value.s:
        if p is SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif p is SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        elif isinstance(p, str):
            out.append(re.escape(p.lower() if lower else p))
        else:
            raise RuleError(f"unresolved placeholder in {value.original}")
    return re.compile("".join(out), re.DOTALL)


def compile_condition(
    tree: Any, name: str, placeholders: dict[str, list[str]] | None = None
) -> tuple[Callable[[dict[str, Any], Lowered], bool], list[frozenset[Anchor]], str]:
    """Compile one condition tree; returns (function, anchor options best first, source).

    Each option is a set of anchors necessary for a match; the index uses one
    (the first, or a better one learned from hit rates) and any is exact."""
    comp = RuleCompiler(placeholders)
    code, _ = comp.expr(tree)
    # ties broken by the anchors themselves: a set's order varies with the process's string hashing, and
    # the option chosen decides which literal sets the index compiles (and caches across runs)
    options = sorted(set(comp.options(tree)), key=lambda opt: (anchor_cost(opt), sorted(opt)))
    source = f"def {name}(ev, lw):\n    return bool({code})\n"
    ns: dict[str, Any] = dict(RUNTIME)
    ns.update(comp.ns)
    try:
        exec(compile(source, f"<sigma {name}>", "exec"), ns)
    except SyntaxError as exc:  # pragma: no cover - a compiler bug, reported as a rule error
        raise RuleError(f"internal compile error: {exc}") from exc
    func: Callable[[dict[str, Any], Lowered], bool] = ns[name]
    return func, options, source
