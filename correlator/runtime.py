"""What generated rule functions use at run time: the lazily lower-cased event view and value helpers.

Kept apart from the compiler so the hot path (one call of a generated function
per candidate rule) reads only this module's small, dependency-free helpers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any

#: What ``lw[field]`` yields for a missing or null field. No rule literal equals
#: it or is contained in it (literals that could be are compiled to explicit checks).
MISS = "\x00\ufffe\x00"

#: Pseudo-field: every value of the event, lower-cased, joined by NUL (keyword searches).
ALL = "\x00all"
#: The same, not lower-cased (what the index scans case-insensitively).
RAW_ALL = "\x00rawall"


class Lowered(dict[str, str]):
    """Field → lower-cased string value, computed on first access (see module doc)."""

    __slots__ = ("ev",)

    def __init__(self, ev: dict[str, Any]) -> None:
        self.ev = ev

    def __missing__(self, key: str) -> str:
        if key == ALL:
            joined = self[RAW_ALL].lower()
            self[key] = joined
            return joined
        if key == RAW_ALL:
            # the values' order does not matter (no keyword literal holds the NUL separator): the
            # common all-strings case joins in one pass, other types are appended after the strings
            values = self.ev.values()
            strings = [v for v in values if type(v) is str]
            if len(strings) != len(values):
                others = [_json_value(v) for v in values if type(v) is not str]  # an Enum as its value
                strings += [
                    str(v) if type(v) is int else to_str(v) for v in others if v is not None and type(v) is not dict
                ]
            raw = "\x00".join(strings)
            self[key] = raw
            return raw
        value = self.ev.get(key)
        low = MISS if value is None else to_str(value).lower()
        self[key] = low
        return low


def _json_value(value: Any) -> Any:
    """An Enum as its value (what its JSON holds; a dict value is then not searched, as a dict is not)."""
    while isinstance(value, Enum):
        value = value.value
    return value


def to_str(value: Any) -> str:
    """The string form a Sigma string value is compared with (bools as true/false)."""
    if type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "\n".join(to_str(v) for v in value)
    if isinstance(value, Enum):  # as the event is stored and sent: JSON holds an Enum's value
        return to_str(value.value)
    return str(value)


def raw_str(ev: dict[str, Any], field: str) -> str | None:
    value = ev.get(field)
    return None if value is None else to_str(value)


_NUM_RE = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*")


def as_number(value: Any) -> float | int | None:
    """Numeric view of an event value: ints/floats as is, decimal strings parsed, anything else None."""
    t = type(value)
    if t is int or t is float:
        return value  # type: ignore[no-any-return]
    if t is str and _NUM_RE.fullmatch(value):
        text = value.strip()
        return float(text) if "." in text else int(text)
    return None


def num_eq(value: Any, number: float | int) -> bool:
    n = as_number(value)
    return n is not None and n == number


def cidr_match(value: Any, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    if value is None:
        return False
    try:
        return ipaddress.ip_address(to_str(value).strip()) in network
    except ValueError:
        return False


def ts_part(value: Any, part: str) -> int | None:
    if value is None:
        return None
    try:
        text = to_str(value).strip().replace(" ", "T")
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    if part == "week":
        return ts.isocalendar()[1]
    return int(getattr(ts, part))


def keyword(ev: dict[str, Any], match: Callable[[str], bool]) -> bool:
    """Unfielded (keyword) detection: any string/number value of the event, lower-cased."""
    for value in ev.values():
        if value is None or isinstance(value, dict):
            continue
        if match(to_str(value).lower()):
            return True
    return False


#: Names the generated code may use.
RUNTIME: dict[str, Any] = {
    "_MISS": MISS,
    "_raw": raw_str,
    "_num_eq": num_eq,
    "_as_number": as_number,
    "_cidr": cidr_match,
    "_ts_part": ts_part,
    "_keyword": keyword,
}


def _keyword_raw(ev: dict[str, Any], regex: Any) -> bool:
    """Keyword regex: searched in every value (not lower-cased; the regex's own flags apply)."""
    for value in ev.values():
        if value is None or isinstance(value, dict):
            continue
        if regex.search(to_str(value)) is not None:
            return True
    return False


RUNTIME["_keyword_raw"] = _keyword_raw
