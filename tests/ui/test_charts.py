"""The UI's SVG charts: integer, evenly spaced y ticks that end at or above the tallest bar."""

from __future__ import annotations

import re

import pytest

from soclite.api.ui.charts import nice_ticks, stacked_bars


@pytest.mark.parametrize(("peak", "ticks"), [
    (0, [0, 1]), (1, [0, 1]), (3, [0, 1, 2, 3]), (5, [0, 1, 2, 3, 4, 5]), (7, [0, 2, 4, 6, 8]),
    (10, [0, 2, 4, 6, 8, 10]), (11, [0, 5, 10, 15]), (37, [0, 10, 20, 30, 40]), (980, [0, 200, 400, 600, 800, 1000]),
    (12345, [0, 5000, 10000, 15000]),
])
def test_nice_ticks(peak: int, ticks: list[int]) -> None:
    assert nice_ticks(peak) == ticks


def _y_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end" class="axis">([^<]+)</text>', svg)


def test_axis_labels_of_a_chart_are_the_nice_ticks() -> None:
    ten = stacked_bars([("01/12", {"high": 10})], ["high"], {"high": "Cao"}, "vi")
    assert _y_labels(ten) == ["0", "2", "4", "6", "8", "10"]
    one = stacked_bars([("01/12", {"high": 1}), ("02/12", {})], ["high"], {"high": "Cao"}, "vi")
    assert _y_labels(one) == ["0", "1"]
    big = stacked_bars([("01/12", {"high": 1200, "low": 300})], ["high", "low"], {}, "vi")
    assert _y_labels(big) == ["0", "500", "1.000", "1.500"]  # Vietnamese thousands separator
