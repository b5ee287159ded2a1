"""SigmaHQ's 202 EVTX regression tests: each rule fires at least ``match_count`` times on its file."""

from __future__ import annotations

import pytest

from soclite.collectors.windows import iter_evtx
from soclite.correlator.engine import Engine
from tests.correlator.regression import SIGMA, RegressionCase, cases

CASES = cases() if SIGMA.exists() else []


def test_all_regression_cases_are_collected() -> None:
    if not CASES:
        pytest.skip("../shared/sigma is not available")
    assert len(CASES) == 202


@pytest.mark.parametrize("case", CASES, ids=[c.name.rsplit("/", 1)[-1] for c in CASES])
def test_sigmahq_regression(case: RegressionCase, regression_engine: Engine) -> None:
    assert not regression_engine.failures
    hits = 0
    for event in iter_evtx(case.evtx):
        hits += sum(1 for rule in regression_engine.match(event) if rule.id == case.rule_id)
    assert hits >= case.match_count, f"{case.rule_id} fired {hits} times, expected >= {case.match_count}"
