"""The small, safe condition and template language of playbooks (no eval, ever).

A ``when`` is a list of field comparisons that must all hold; a field is an alert attribute
(``severity``, ``rule_id``, ``host``, ``tags`` ...), ``host_type``, ``change``, or ``event.<key>`` for a
key of the alert's event copy (flat keys such as ``event.user.name`` are looked up whole first).
Parameters may contain ``{{ field }}`` placeholders resolved the same way; a string that is exactly one
placeholder keeps the value's type (a list stays a list).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from soclite.errors import TemplateError

Op = Literal["eq", "ne", "in", "not_in", "glob", "contains", "gt", "gte", "lt", "lte", "exists", "missing"]

_MISSING = object()
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.@-]+)\s*\}\}")
_LEVEL_ORDER = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class Condition(BaseModel):
    """``{field: level, op: gte, value: high}``; levels compare by their order, not alphabetically."""

    model_config = ConfigDict(extra="forbid")

    field: str
    op: Op = "eq"
    value: Any = None


def resolve(context: dict[str, Any], path: str) -> Any:
    """The value at ``path`` in an alert context, or a private MISSING marker."""
    if path in context:
        return context[path]
    if path.startswith("event."):
        event = context.get("event") or {}
        key = path[len("event.") :]
        if isinstance(event, dict):
            if key in event:
                return event[key]
            node: Any = event
            for part in key.split("."):
                if isinstance(node, dict) and part in node:
                    node = node[part]
                else:
                    return _MISSING
            return node
        return _MISSING
    node = context
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def _ordered(field: str, value: Any) -> Any:
    if field in ("level", "severity") and isinstance(value, str):
        return _LEVEL_ORDER.get(value.lower(), -1)
    return value


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list):
        return expected in actual
    return str(expected) in str(actual)


def holds(condition: Condition, context: dict[str, Any]) -> bool:
    """Evaluate one comparison; a missing field makes every op false except ``missing``."""
    actual = resolve(context, condition.field)
    if condition.op == "missing":
        return actual is _MISSING or actual is None
    if actual is _MISSING:
        return False
    op, expected = condition.op, condition.value
    if op == "exists":
        return actual is not None
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if op in ("in", "not_in"):
        values = expected if isinstance(expected, list) else [expected]
        inside = any(actual == v or (isinstance(actual, list) and v in actual) for v in values)
        return inside if op == "in" else not inside
    if op == "glob":
        items = actual if isinstance(actual, list) else [actual]
        return any(fnmatch.fnmatchcase(str(item).lower(), str(expected).lower()) for item in items)
    if op == "contains":
        return _contains(actual, expected)
    left, right = _ordered(condition.field, actual), _ordered(condition.field, expected)
    try:
        if op == "gt":
            return bool(left > right)
        if op == "gte":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


def all_hold(conditions: list[Condition], context: dict[str, Any]) -> bool:
    return all(holds(c, context) for c in conditions)


def render(value: Any, context: dict[str, Any]) -> Any:
    """Replace ``{{ field }}`` placeholders in strings, recursively through lists and dicts."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole:
            found = resolve(context, whole.group(1))
            if found is _MISSING:
                raise TemplateError(f"unknown field {whole.group(1)!r} in {value!r}")
            return found

        def sub(match: re.Match[str]) -> str:
            found = resolve(context, match.group(1))
            if found is _MISSING:
                raise TemplateError(f"unknown field {match.group(1)!r} in {value!r}")
            return "" if found is None else str(found)

        return _PLACEHOLDER.sub(sub, value)
    if isinstance(value, list):
        return [render(item, context) for item in value]
    if isinstance(value, dict):
        return {key: render(item, context) for key, item in value.items()}
    return value
