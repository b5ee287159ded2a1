"""The event search people type (Discover): a small Lucene-like language read by luqum.

``source.ip:203.0.113.45 AND NOT user.name:"admin"``, ``sqlmap OR emotet``,
``Image:*\\\\powershell.exe``, ``host.name:(ws-01 OR ws-02)``. What each part
means is :class:`soclite.store.base.Match`: ``field:value`` is the whole value of
the flat field, any case (``*`` and ``?`` wildcards); a bare word or "quoted
phrase" is text anywhere in the event. Words side by side are ANDed (as people
expect from a search box), ``-x`` is NOT x. Ranges, fuzzy and proximity
searches are refused with a clear error rather than half-understood.

luqum (PyPI) is the parser: it is the Lucene grammar the OpenSearch/Kibana
query box uses, so the syntax an analyst knows from there reads the same here;
this module turns its tree into the store's own expression, which each store
translates (SQL or query DSL), never a query string passed through.
"""

from __future__ import annotations

from luqum import tree
from luqum.exceptions import ParseError as LuqumParseError
from luqum.parser import parser

from soclite.errors import RequestError
from soclite.store.base import AllOf, AnyOf, Expr, Match, Not

#: bound on what one search may hold (a search box, not a program)
MAX_TERMS = 64


#: what went wrong → the sentence the UI shows (catalog ids; ``%(part)s`` is the part of the search at fault)
REASONS = {
    "syntax": "The search cannot be read: check the quotes, parentheses and operators (AND, OR, NOT).",
    "unsupported": "The search uses %(part)s, which is not supported here: use field:value, phrases, AND, OR, NOT "
                   "and the * and ? wildcards.",
    "mixed": "The value %(part)s mixes wildcards with an escaped * or ?: search for one or the other.",
    "nested": "A field cannot be searched inside another field (%(part)s).",
    "too_long": "The search has more than %(part)s terms: make it shorter.",
}


class SearchSyntaxError(RequestError):
    """A search the parser cannot read, or uses what this search does not support (400 in the API, an error page in the UI)."""

    def __init__(self, reason: str, detail: str, query: str, part: str = "") -> None:
        super().__init__(f"{detail} in the search {query!r}", msgid=REASONS[reason], params={"part": part})


def parse_search(text: str) -> Expr | None:
    """The expression of a search typed by a person; None for an empty one."""
    if not text.strip():
        return None
    try:
        root = parser.parse(text)
    except (LuqumParseError, ValueError, TypeError) as exc:
        raise SearchSyntaxError("syntax", f"syntax error ({exc})", text) from None
    terms = [0]
    return _convert(root, None, text, terms)


def _unquote(phrase: str) -> str:
    inner = phrase[1:-1] if len(phrase) >= 2 and phrase[0] == phrase[-1] == '"' else phrase
    return inner.replace('\\"', '"')


def _word(value: str, query: str) -> tuple[str, bool]:
    """A bare word: Lucene escapes removed; a wildcard pattern when it holds an unescaped * or ?."""
    out: list[str] = []
    wildcard = literal = escaped = False
    for char in value:
        if escaped:
            literal = literal or char in "*?"
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            wildcard = wildcard or char in "*?"
            out.append(char)
    if wildcard and literal:
        raise SearchSyntaxError("mixed", f"{value!r} mixes wildcards with a literal * or ?", query, value)
    return "".join(out), wildcard


def _convert(node: tree.Item, field: str | None, query: str, terms: list[int]) -> Expr:
    if isinstance(node, tree.SearchField):
        if field is not None:
            raise SearchSyntaxError("nested", f"a field inside the field {field!r}", query, field)
        return _convert(node.expr, node.name, query, terms)
    if isinstance(node, (tree.Group, tree.FieldGroup)):
        return _convert(node.expr, field, query, terms)
    if isinstance(node, (tree.Word, tree.Phrase)):
        terms[0] += 1
        if terms[0] > MAX_TERMS:
            raise SearchSyntaxError("too_long", f"more than {MAX_TERMS} terms", query, str(MAX_TERMS))
        if isinstance(node, tree.Phrase):
            return Match(field, _unquote(node.value))
        value, wildcard = _word(node.value, query)
        if field is None and wildcard:
            value, wildcard = value.replace("*", "").replace("?", ""), False  # text search: a substring already
        return Match(field, value, wildcard)
    if isinstance(node, (tree.Not, tree.Prohibit)):
        return Not(_convert(node.a, field, query, terms))
    if isinstance(node, tree.Plus):
        return _convert(node.a, field, query, terms)
    if isinstance(node, tree.OrOperation):
        return AnyOf(tuple(_convert(child, field, query, terms) for child in node.children))
    if isinstance(node, (tree.AndOperation, tree.UnknownOperation)):
        return AllOf(tuple(_convert(child, field, query, terms) for child in node.children))
    kind = type(node).__name__.lower()
    raise SearchSyntaxError("unsupported", f"{kind} searches are not supported", query, str(node))
