"""CSV cells that spreadsheet programs will not run as formulas (CSV/formula injection).

Alert fields come from attacker-controlled logs (a user name, a command line): a cell
starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel/LibreOffice (``=HYPERLINK(...)``, DDE). Such text cells get a leading single
quote, the OWASP-recommended neutralisation; numbers are written as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` unchanged unless it is text (or an object written as text) that starts a formula."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in row]
