"""Helpers to run SigmaHQ's EVTX regression tests (shared by the tests and the equivalence check)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

#: ../shared/sigma next to the project root (see /work/shared/README.md)
SIGMA = Path(__file__).resolve().parents[2].parent / "shared" / "sigma"

_ID = re.compile(r"^id:\s*['\"]?([0-9a-fA-F-]{36})", re.MULTILINE)


@dataclass(frozen=True)
class RegressionCase:
    name: str
    rule_id: str
    evtx: Path
    match_count: int


def cases() -> list[RegressionCase]:
    out = []
    for info in sorted((SIGMA / "regression_data").rglob("info.yml")):
        data = yaml.safe_load(info.read_text(encoding="utf-8"))
        rule_id = data["rule_metadata"][0]["id"]
        for test in data.get("regression_tests_info") or []:
            if test.get("type") != "evtx":
                continue
            out.append(
                RegressionCase(
                    name=str(info.parent.relative_to(SIGMA / "regression_data")),
                    rule_id=rule_id,
                    evtx=SIGMA / test["path"],
                    match_count=int(test.get("match_count") or 1),
                )
            )
    return out


def rule_files() -> dict[str, Path]:
    """SigmaHQ rule id → file."""
    out: dict[str, Path] = {}
    for folder in SIGMA.glob("rules*"):
        for path in folder.rglob("*.yml"):
            m = _ID.search(path.read_text(encoding="utf-8"))
            if m:
                out[m.group(1)] = path
    return out
