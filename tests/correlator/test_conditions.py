"""Every condition form: and/or/not, parentheses, 1 of/all of with wildcards and `them`."""

from __future__ import annotations

from tests.correlator.helpers import fires

SELS = """
sel_a:
    A: 1
sel_b:
    B: 1
filter_c:
    C: 1
"""


def det(cond: str) -> str:
    return SELS + f"condition: {cond}"


def test_and_or_not() -> None:
    assert fires(det("sel_a and sel_b"), {"A": 1, "B": 1})
    assert not fires(det("sel_a and sel_b"), {"A": 1})
    assert fires(det("sel_a or sel_b"), {"B": 1})
    assert fires(det("sel_a and not filter_c"), {"A": 1})
    assert not fires(det("sel_a and not filter_c"), {"A": 1, "C": 1})
    assert fires(det("not filter_c"), {"Z": 1})  # a pure negation runs on every event


def test_parentheses_and_precedence() -> None:
    assert fires(det("sel_a or sel_b and filter_c"), {"A": 1})  # and binds tighter
    assert not fires(det("(sel_a or sel_b) and filter_c"), {"A": 1})
    assert fires(det("(sel_a or sel_b) and filter_c"), {"B": 1, "C": 1})
    assert fires(det("not (sel_a or sel_b)"), {"C": 1})


def test_one_of_and_all_of_patterns() -> None:
    assert fires(det("1 of sel_*"), {"B": 1})
    assert not fires(det("1 of sel_*"), {"C": 1})
    assert fires(det("all of sel_*"), {"A": 1, "B": 1})
    assert not fires(det("all of sel_*"), {"A": 1})
    assert fires(det("all of sel_* and not 1 of filter_*"), {"A": 1, "B": 1})
    assert not fires(det("all of sel_* and not 1 of filter_*"), {"A": 1, "B": 1, "C": 1})


def test_them() -> None:
    assert fires(det("1 of them"), {"C": 1})
    assert fires(det("all of them"), {"A": 1, "B": 1, "C": 1})
    assert not fires(det("all of them"), {"A": 1, "B": 1})


def test_map_in_list_is_or_and_map_keys_are_and() -> None:
    d = """
sel:
    - A: 1
      B: 2
    - C: 3
condition: sel
"""
    assert fires(d, {"A": 1, "B": 2})
    assert fires(d, {"C": 3})
    assert not fires(d, {"A": 1, "C": 4})
