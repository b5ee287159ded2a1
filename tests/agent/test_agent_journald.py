"""journald following: entries become RFC 5424 lines, and the cursor stored with each spooled batch
makes a restart resume right after the last entry. No journald runs in CI containers, so a stand-in
`journalctl` (same arguments, same JSON output) is put first on PATH — the external program faked at
its interface."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from soclite.collectors.agent.config import AgentConfig
from soclite.collectors.agent.runner import Agent

from .agent_support import FakeSoc, ServerThread, wait_for

FAKE = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
assert args[:3] == ["-o", "json", "--follow"], args
after = args[args.index("--after-cursor") + 1] if "--after-cursor" in args else None
with open(os.environ["FAKE_JOURNAL"]) as fh:
    entries = [json.loads(line) for line in fh if line.strip()]
# without a cursor the agent asks for new entries only (--lines 0): the stand-in treats every entry as new
if after is not None:
    idx = [e["__CURSOR"] for e in entries].index(after)
    entries = entries[idx + 1:]
for e in entries:
    print(json.dumps(e), flush=True)
time.sleep(3600)
"""


def entry(i: int) -> dict[str, str]:
    return {"__CURSOR": f"s=abc;i={i}", "__REALTIME_TIMESTAMP": str(1732356000000000 + i), "PRIORITY": "6",
            "_HOSTNAME": "ws-01", "SYSLOG_IDENTIFIER": "sshd", "_PID": "9", "MESSAGE": f"msg {i}"}  # fmt: skip


@pytest.fixture
def fake_journalctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "journalctl"
    script.write_text(FAKE.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    journal = tmp_path / "journal.jsonl"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_JOURNAL", str(journal))
    return journal


def run_until(agent: Agent, soc: FakeSoc, count: int) -> None:
    import threading

    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: len(soc.lines()) >= count, 15)
    finally:
        agent.stop()
        thread.join(15)


def test_journal_entries_are_shipped_and_resumed_after_the_cursor(
    tmp_path: Path, fake_journalctl: Path
) -> None:
    soc = FakeSoc()
    server = ServerThread(soc).start()
    try:
        fake_journalctl.write_text("".join(json.dumps(entry(i)) + "\n" for i in range(5)))
        config = AgentConfig(journald=True, flush_interval=0.1, poll_interval=0.02, heartbeat_interval=5)
        run_until(Agent(server.url, tmp_path / "state", config, enroll_token="se_good"), soc, 5)
        assert soc.lines() == [
            f"<30>1 2024-11-23T10:00:00.00000{i}Z ws-01 sshd 9 - - msg {i}" for i in range(5)
        ]
        assert all(r["log.source"] == "journald" for r in soc.records)
        # restart with more entries: only the new ones come
        with open(fake_journalctl, "a") as fh:
            fh.write("".join(json.dumps(entry(i)) + "\n" for i in range(5, 8)))
        run_until(Agent(server.url, tmp_path / "state", config), soc, 8)
        assert [line.rsplit(" ", 1)[1] for line in soc.lines()] == [str(i) for i in range(8)]
    finally:
        server.stop()
