"""`make run`'s script on a fresh data dir: within a minute the sample province shows alerts of every
severity, hosts grouped by units, and a report can be generated (issue: a living SOC out of the box).

Runs scripts/run.sh itself (the Makefile target only adds the installs around it), as a real process
group, and reads the result through the HTTP API as the dashboard does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.support import ROOT, cli, free_port, wait_for

pytestmark = pytest.mark.e2e


def test_make_run_shows_a_living_province_within_a_minute(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCLITE_")}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    log = (tmp_path / "run.log").open("w")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "scripts/run.sh", str(data_dir), str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: "ready at" in (tmp_path / "run.log").read_text(), 90, "run.sh to say it is ready")
        token = cli("token", "create", "--data-dir", str(data_dir), "--role", "viewer", env=env).strip()
        headers = {"Authorization": f"Bearer {token}"}

        def all_severities() -> dict | None:
            summary = httpx.get(f"{base}/api/v1/stats/summary", headers=headers, timeout=10).json()
            by = summary["alerts"]["by_severity"]
            return summary if all(by[s] > 0 for s in ("high", "medium", "low")) else None

        summary = wait_for(all_severities, 60, "alerts of all three severities")
        assert time.monotonic() - started < 60 + 30, "alerts must show within a minute of the server being up"
        assert summary["hosts"]["servers"] >= 4 and summary["hosts"]["workstations"] >= 16
        hosts = httpx.get(f"{base}/api/v1/hosts", headers=headers, params={"limit": 500}, timeout=10).json()["items"]
        units = {h["unit"] for h in hosts if h.get("unit")}
        assert {"ttdl", "so-tc", "ubnd-huyen-a", "ubnd-huyen-b", "so-tttt"} <= units
        # The first admin's one-time password was printed once, and the dashboard answers with a login page.
        assert "one-time password" in (tmp_path / "run.log").read_text()
        page = httpx.get(f"{base}/", timeout=10, follow_redirects=True)
        assert page.status_code == 200 and "password" in page.text.lower()
        # A report of this month can be generated from what was replayed.
        month = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m")
        out = tmp_path / "report"
        cli("report", "--data-dir", str(data_dir), "--period", month, "--lang", "vi", "--format", "html,csv",
            "--out", str(out), env=env)
        html = next(out.rglob("*.html")).read_text(encoding="utf-8")
        assert "cảnh báo mức độ cao" in html
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
