"""Session fixtures: the SigmaHQ rules the regression tests need, loaded once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soclite.correlator.engine import Engine
from soclite.correlator.loader import RuleSet, load_paths
from tests.correlator.regression import SIGMA, cases, rule_files


@pytest.fixture(scope="session")
def regression_ruleset() -> RuleSet:
    if not SIGMA.exists():
        if os.environ.get("CI"):
            # In CI the SigmaHQ data is beside the clone: its absence is a broken setup, not a skip.
            pytest.fail(f"{SIGMA} is missing: the 202 SigmaHQ regression tests cannot run")
        pytest.skip("../shared/sigma is not available")
    files = rule_files()
    needed = sorted({files[c.rule_id] for c in cases()})
    return load_paths(needed)


#: the shared OTRF Windows attack data (a benchmark input, see ../shared/README.md)
DATASET = SIGMA.parent / "datasets" / "otrf-windows-atomic-a.jsonl.gz"


@pytest.fixture(scope="session")
def windows_ruleset() -> RuleSet:
    """Every SigmaHQ rule of ``product: windows``, for tests over the shared attack data."""
    if not DATASET.exists():
        pytest.skip("benchmark dataset not available")

    def keep(doc: dict[str, Any]) -> bool:
        ls = doc.get("logsource") or {}
        return isinstance(ls, dict) and ls.get("product") == "windows"

    return load_paths(sorted(Path(SIGMA).glob("rules*")), keep=keep)


@pytest.fixture(scope="session")
def regression_engine(regression_ruleset: RuleSet) -> Iterator[Engine]:
    yield Engine(regression_ruleset)


@pytest.fixture()
def tmp_state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture(autouse=True)
def _cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """``soclite hunt`` and ``rules check`` cache compiled rules under XDG_CACHE_HOME: not the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
