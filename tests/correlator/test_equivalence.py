"""The index changes speed, never results: indexed and exhaustive evaluation give identical detections."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from soclite.collectors.windows import from_json_record, iter_evtx
from soclite.correlator.engine import Engine
from soclite.correlator.loader import RuleSet, load_paths
from tests.correlator.conftest import DATASET
from tests.correlator.regression import SIGMA, cases
from tests.correlator.test_log_cleared import CLEARED, FORMATS, RULES

SAMPLE_LINES = 20_000


def _detections(engine: Engine, events: list[dict[str, Any]]) -> list[list[str]]:
    return [[r.id for r in engine.match(dict(e))] for e in events]


@pytest.mark.parametrize("prefilter", ["auto", "aho"])
def test_regression_data_identical(regression_ruleset: RuleSet, prefilter: str) -> None:
    cleared_rules = load_paths([SIGMA / r for r in RULES])
    ruleset = RuleSet(
        rules=regression_ruleset.rules + cleared_rules.rules,
        correlations=regression_ruleset.correlations,
        filters=regression_ruleset.filters,
    )
    indexed = Engine(ruleset, prefilter=prefilter)
    exhaustive = Engine(ruleset, indexed=False)
    events = [e for c in cases() for e in iter_evtx(c.evtx)]
    # event 104, whose UserData Channel (the cleared log) shadows the System Channel, in every input format
    events += [make(cleared) for make in FORMATS.values() for cleared in CLEARED]
    got = _detections(indexed, events)
    want = _detections(exhaustive, events)
    assert got == want
    assert sum(map(len, want)) >= 202 + len(FORMATS) * len(CLEARED)


def test_benchmark_sample_identical(windows_ruleset: RuleSet) -> None:
    events: list[dict[str, Any]] = []
    malformed = 0
    with gzip.open(DATASET, "rb") as fh:
        for i, line in enumerate(fh):
            if i >= SAMPLE_LINES:
                break
            try:
                events.append(from_json_record(orjson.loads(line)))
            except orjson.JSONDecodeError:
                malformed += 1
    indexed = Engine(windows_ruleset)
    aho = Engine(windows_ruleset, prefilter="aho")
    exhaustive = Engine(windows_ruleset, indexed=False)
    want = _detections(exhaustive, events)
    assert _detections(indexed, events) == want
    assert _detections(aho, events) == want
    assert sum(map(len, want)) > 0
    assert len(windows_ruleset.rules) > 2800
    # the hit-rate learning switched anchors while running (and results stayed identical)
    assert any(index.rebuilds for index in indexed._indexes.values())
