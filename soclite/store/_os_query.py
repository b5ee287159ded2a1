"""OpenSearch query DSL for the store's query objects (the twin of the SQLite WHERE builders).

Each builder returns ``None`` when the scope matches nothing (``units=frozenset()``),
so the store answers an empty page without asking the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from soclite.models import isoformat
from soclite.store import _os_mappings as m
from soclite.store.base import AlertQuery, AllOf, EventQuery, Expr, HostQuery, Match, Not


def _wildcard(field: str, needle: str) -> dict[str, Any]:
    """Case-insensitive substring: the field holds case-folded text; escape the wildcard syntax."""
    escaped = needle.casefold().replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
    return {"wildcard": {field: {"value": f"*{escaped}*"}}}


class _Filters:
    def __init__(self) -> None:
        self.clauses: list[dict[str, Any]] = []
        self.empty = False

    def terms(self, field: str, values: Sequence[Any] | frozenset[str] | None) -> None:
        if values is None:
            return
        values = sorted({str(v) for v in values})
        if not values:
            self.empty = True
            return
        self.clauses.append({"terms": {field: values}})

    def term(self, field: str, value: Any) -> None:
        if value is not None:
            self.clauses.append({"term": {field: value}})

    def range(self, field: str, start: Any, end: Any) -> None:
        rng = {}
        if start is not None:
            rng["gte"] = isoformat(start)
        if end is not None:
            rng["lt"] = isoformat(end)
        if rng:
            self.clauses.append({"range": {field: rng}})

    def query(self) -> dict[str, Any] | None:
        if self.empty:
            return None
        return {"bool": {"filter": self.clauses}} if self.clauses else {"match_all": {}}


def event_filter(query: EventQuery) -> dict[str, Any] | None:
    f = _Filters()
    f.terms("soclite.unit", query.units)
    f.term(m.EVENT_HOST_KEY, query.host.lower() if query.host else None)
    f.range("@timestamp", query.start, query.end)
    if query.ids is not None:
        f.terms("event.id", list(query.ids))
    if query.q:
        f.clauses.append(_wildcard(m.EVENT_TEXT, query.q))
    for name, value in sorted(query.fields.items()):
        f.term(name, str(value))
    if query.expr is not None:
        f.clauses.append(expr_query(query.expr))
    return f.query()


def expr_query(expr: Expr) -> dict[str, Any]:
    """An event search as query DSL (every event field is a keyword: see _os_mappings)."""
    if isinstance(expr, Match):
        if expr.field is None:
            return _wildcard(m.EVENT_TEXT, expr.value)
        if expr.wildcard:
            pattern = expr.value.replace("\\", "\\\\")  # a backslash (Windows paths) is the escape character
            return {"wildcard": {expr.field: {"value": pattern, "case_insensitive": True}}}
        return {"term": {expr.field: {"value": expr.value, "case_insensitive": True}}}
    if isinstance(expr, Not):
        return {"bool": {"must_not": [expr_query(expr.part)]}}
    parts = [expr_query(part) for part in expr.parts]
    if isinstance(expr, AllOf):
        return {"bool": {"filter": parts}}
    return {"bool": {"should": parts, "minimum_should_match": 1}}


def alert_filter(query: AlertQuery) -> dict[str, Any] | None:
    f = _Filters()
    f.terms("unit", query.units)
    f.terms("severity", query.severity)
    f.terms("level", query.level)
    f.terms("status", query.status)
    if query.ids is not None:
        f.terms("id", list(query.ids))
    f.term("rule_id", query.rule_id)
    f.term("assignee", query.assignee)
    f.term("fingerprint", query.fingerprint)
    f.term("host_key", query.host.lower() if query.host else None)
    f.range("last_seen", query.start, query.end)
    if query.q:
        f.clauses.append(_wildcard("text", query.q))
    return f.query()


def host_filter(query: HostQuery) -> dict[str, Any] | None:
    f = _Filters()
    f.terms("unit", query.units)
    f.term("type", query.type)
    if query.q:
        f.clauses.append(_wildcard("text", query.q))
    return f.query()
