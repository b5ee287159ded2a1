"""The soak's short mode: the contract of bench/soak.py and 0 lost / 0 duplicated (not its speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ("offered", "acknowledged", "stored", "lost", "duplicated", "alert_latency_p99_s", "max_journal_lag",
            "final_journal_lag", "rss_mb_max", "disk_bytes_per_million_events")


@pytest.mark.slow
@pytest.mark.e2e
def test_soak_short_mode_keeps_every_acknowledged_event_once() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--rate", "500", "--minutes", "1", "--store", "sqlite",
         "--drain-minutes", "5", "--json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(CONTRACT) <= set(result)
    assert result["offered"] >= 500 * 60 * 0.9
    assert result["acknowledged"] == result["offered"]
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["stored"] == result["acknowledged"]
    assert result["final_journal_lag"] == 0
    assert result["probes"] >= 50 and result["probes_alerted"] == result["probes"]
    assert result["alert_latency_p99_s"] is not None and result["rss_mb_max"] > 0
    # where the bytes go: the store's compression ratio over the raw JSON read back, the transient journal beside it
    assert result["compression_ratio"] > 1
    assert result["journal_bytes_max"] > 0
    assert set(result["disk_bytes_by_part_per_million_events"]) == {"event_day_files", "events_db", "journal"}
