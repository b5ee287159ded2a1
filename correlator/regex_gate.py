"""A Hyperscan gate in front of a Python regex: "no match" proven in one fast pass over an ASCII text.

Python's ``re`` (and re2 through its Python wrapper) search a long script block
at 10–150 MB/s; some SigmaHQ patterns (``\\w+`(\\w+|-|.)`[\\w+|\\s]``, Token
Obfuscation) cost tens of µs per 5 kB block and almost never match. Hyperscan
answers "does it occur at all" at GB/s. The gate is only ever a *necessary*
condition: when it reports no match, ``re`` would not have matched either;
when it reports one, the real regex runs and decides. So results cannot change,
provided the gate's language contains Python's on the texts it is used for.

To make that hold, the Hyperscan pattern is not the Sigma text reinterpreted by
another dialect (PCRE reads ``{,3}``, ``[[:alpha:]]``, ``\\Z`` differently) but
is re-emitted from Python's own parse of it (``re._parser``), every element
spelt out explicitly for ASCII text:

* the gate is used only on ASCII texts (``str.isascii()``, O(1) in CPython),
  and only for patterns whose literals are all ASCII (under re.I a non-ASCII
  literal such as the KELVIN SIGN would match ASCII "k");
* ``\\w`` → ``[0-9A-Za-z_]``, ``\\d`` → ``[0-9]``, ``\\s`` → Python's str
  whitespace within ASCII, ``[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f ]`` (PCRE's lacks
  \\x1c–\\x1f), ``.`` → ``[^\\n]`` (or any byte under re.S);
* look-arounds are dropped and atomic groups / possessive repeats become plain
  ones (each only widens the language: a superset is still a necessary
  condition); back references, conditionals, scoped flags, re.ASCII/LOCALE
  and anything else not listed give no gate (the regex runs as before).
"""

from __future__ import annotations

import re
import re._constants as C
import re._parser as re_parser
from collections.abc import Callable
from typing import Any

from soclite.errors import SocliteError

try:  # optional accelerator (see correlator.index)
    import hyperscan

    HAVE_HYPERSCAN = True
except ImportError:  # pragma: no cover - depends on the platform's wheels
    HAVE_HYPERSCAN = False

#: texts shorter than this go straight to the regex (a Hyperscan call costs about a µs)
GATE_MIN_LEN = 256

_WORD = "0-9A-Za-z_"
_DIGIT = "0-9"
_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f "
_CATEGORY_IN_SET = {C.CATEGORY_WORD: _WORD, C.CATEGORY_DIGIT: _DIGIT, C.CATEGORY_SPACE: _SPACE}
_CATEGORY_ALONE = {
    C.CATEGORY_WORD: f"[{_WORD}]",
    C.CATEGORY_NOT_WORD: f"[^{_WORD}]",
    C.CATEGORY_DIGIT: f"[{_DIGIT}]",
    C.CATEGORY_NOT_DIGIT: f"[^{_DIGIT}]",
    C.CATEGORY_SPACE: f"[{_SPACE}]",
    C.CATEGORY_NOT_SPACE: f"[^{_SPACE}]",
}
_AT = {
    C.AT_BEGINNING: "^",
    C.AT_BEGINNING_STRING: "\\A",
    C.AT_END: "$",
    C.AT_END_STRING: "\\z",
    C.AT_BOUNDARY: "\\b",
    C.AT_NON_BOUNDARY: "\\B",
}


class _NoGate(SocliteError):
    """The pattern uses something the gate does not translate (never leaves this module)."""


def _char(code: int) -> str:
    if code > 0x7F:
        raise _NoGate("non-ASCII literal")
    return f"\\x{code:02x}"


def _set(items: list[tuple[Any, Any]], icase: bool) -> str:
    negate = False
    out: list[str] = []
    for op, arg in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            out.append(_char(arg))
        elif op is C.RANGE:
            lo, hi = arg
            if hi > 0x7F and icase:  # under re.I a non-ASCII member may fold to an ASCII letter
                raise _NoGate("non-ASCII range under re.I")
            out.append(_char(lo) + "-" + _char(min(hi, 0x7F)) if lo <= 0x7F else _char(lo))
        elif op is C.CATEGORY and arg in _CATEGORY_IN_SET:
            out.append(_CATEGORY_IN_SET[arg])
        else:  # a negated category inside a set, or a parser item this gate does not know
            raise _NoGate(f"set item {op}")
    if not out:
        raise _NoGate("empty set")
    return "[" + ("^" if negate else "") + "".join(out) + "]"


def _emit(seq: Any, dotall: bool, icase: bool) -> str:
    parts: list[str] = []
    for op, arg in seq:
        if op is C.LITERAL:
            parts.append(_char(arg))
        elif op is C.NOT_LITERAL:
            parts.append("[^" + _char(arg) + "]")
        elif op is C.ANY:
            parts.append("[\\x00-\\x7f]" if dotall else "[^\\n]")
        elif op is C.IN:
            if len(arg) == 1 and arg[0][0] is C.CATEGORY:
                if arg[0][1] not in _CATEGORY_ALONE:
                    raise _NoGate(f"category {arg[0][1]}")
                parts.append(_CATEGORY_ALONE[arg[0][1]])
            else:
                parts.append(_set(arg, icase))
        elif op is C.BRANCH:
            parts.append("(?:" + "|".join(_emit(alt, dotall, icase) for alt in arg[1]) + ")")
        elif op is C.SUBPATTERN:
            _group, add_flags, del_flags, sub = arg
            if add_flags or del_flags:
                raise _NoGate("scoped flags")
            parts.append("(?:" + _emit(sub, dotall, icase) + ")")
        elif op is C.ATOMIC_GROUP:
            parts.append("(?:" + _emit(arg, dotall, icase) + ")")
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            lo, hi, sub = arg
            bound = f"{{{lo},}}" if hi is C.MAXREPEAT else f"{{{lo},{hi}}}"
            parts.append("(?:" + _emit(sub, dotall, icase) + ")" + bound)
        elif op is C.AT:
            if arg not in _AT:
                raise _NoGate(f"anchor {arg}")
            parts.append(_AT[arg])
        elif op in (C.ASSERT, C.ASSERT_NOT):
            continue  # dropped: the gate's language only grows
        else:  # back references, conditionals, ...
            raise _NoGate(f"opcode {op}")
    return "".join(parts)


def gate_pattern(pattern: str, flags: int) -> tuple[bytes, int] | None:
    """The Hyperscan expression and its flags (re.I / re.M only) standing for ``pattern`` on ASCII texts."""
    try:
        parsed = re_parser.parse(pattern, flags)
    except re.error:
        return None
    all_flags = parsed.state.flags
    if all_flags & (re.ASCII | re.LOCALE):
        return None
    try:
        expr = _emit(parsed, bool(all_flags & re.DOTALL), bool(all_flags & re.IGNORECASE))
    except _NoGate:
        return None
    return expr.encode("ascii"), all_flags & (re.IGNORECASE | re.MULTILINE)


def _stop(ident: int, start: int, end: int, flags: int, context: Any) -> bool:
    context.append(True)
    return True  # one occurrence is all the gate needs: stop scanning


def compile_gate(pattern: str, flags: int) -> Callable[[str], bool] | None:
    """``may_match(text)`` for ASCII ``text``: False only if ``re.search(pattern, text, flags)`` is None.

    None when Hyperscan is missing or the pattern has no gate (see the module doc)."""
    if not HAVE_HYPERSCAN:
        return None
    found = gate_pattern(pattern, flags)
    if found is None:
        return None
    expr, py_flags = found
    hs_flags = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
    if py_flags & re.IGNORECASE:
        hs_flags |= hyperscan.HS_FLAG_CASELESS
    if py_flags & re.MULTILINE:
        hs_flags |= hyperscan.HS_FLAG_MULTILINE
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=[expr], ids=[0], elements=1, flags=[hs_flags])
    except Exception:  # hyperscan.error: a pattern too large or a construct it refuses
        return None
    scratch = hyperscan.Scratch(db)
    scan = db.scan
    terminated = hyperscan.ScanTerminated

    def may_match(text: str) -> bool:
        hit: list[bool] = []
        try:
            scan(text.encode("ascii"), _stop, 0, hit, scratch)
        except terminated:  # _stop ended the scan at the first occurrence
            return True
        return bool(hit)

    return may_match
