"""bench/api.py's concurrency run works end to end: both clients get answers and the figures are reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("client", ["raw", "httpx"])
def test_concurrency_run_reports_its_figures(tmp_path: Path, client: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "api.py"), "--alerts", "500", "--data-dir", str(tmp_path),
         "--concurrency", "4", "--seconds", "2", "--client", client, "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.stdout.strip(), done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["client"] == client
    assert result["errors"] == 0, result["first_errors"]
    for page in ("ui_queue", "ui_alert", "api_alerts", "api_alert"):
        assert result[page]["requests"] > 0, page  # every page answered 200, timed to its last byte
    assert result["requests"] == sum(result[p]["requests"] for p in ("ui_queue", "ui_alert", "api_alerts",
                                                                   "api_alert"))
    assert result["server_cpu_ms_per_request"] > 0 and result["client_cpu_ms_per_request"] > 0
    assert len(result["load_average_1m"]) == 2
