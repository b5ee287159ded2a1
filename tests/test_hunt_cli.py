"""``soclite hunt-stored`` as a user runs it: a real process over a data dir whose events are partly in the
hot store and partly in the cold archive; hits as JSON lines, a unit filter, a progress bar on a terminal
only, and the run in the audit trail."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import orjson

from soclite.config import Settings
from soclite.models import Unit
from soclite.store.archive import EventArchive
from soclite.store.sqlite import SQLiteStore
from tests.control.test_retrohunt import RULE, T0, fixture_events

ENV = {**os.environ, "SOCLITE_ENVIRONMENT": "development"}


def _data_dir(tmp_path: Path) -> Path:
    store = SQLiteStore.from_settings(Settings(environment="test", data_dir=tmp_path))
    store.open()
    for code in ("u1", "u2"):
        store.put_unit(Unit(code=code, name=code))
    store.write_events(fixture_events()[0])
    # the first day goes to the archive; the rest stays hot
    store.archive_events_before(T0 + timedelta(days=1), EventArchive(tmp_path / "archive"))
    store.close()
    (tmp_path / "rule.yml").write_text(RULE, encoding="utf-8")
    return tmp_path


def _run(*args: str, stderr: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "soclite.cli", "hunt-stored", *args], stdout=subprocess.PIPE,
                          stderr=stderr, text=True, env=ENV, timeout=300)


def test_hunt_stored_reads_the_hot_store_and_the_archive(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    _, in_u1, in_u2 = fixture_events()
    base = ["--data-dir", str(data), "--rule", str(data / "rule.yml"), "--from", "2024-08-01", "--to", "2024-08-03"]
    run = _run(*base, "--stats")
    assert run.returncode == 0, run.stderr
    hits = {h["event_id"]: h for h in map(orjson.loads, run.stdout.splitlines())}
    assert set(hits) == in_u1 | in_u2
    assert hits["rh0001"]["source"] == "archive:20240801" and hits["rh0007"]["source"] == "store"
    assert hits["rh0007"]["rule_title"] == "Whoami with all groups" and hits["rh0007"]["severity"] == "high"
    assert "hits: 3" in run.stderr and "\r" not in run.stderr  # no progress bar when stderr is not a terminal

    scoped = _run(*base, "--unit", "u2")
    assert scoped.returncode == 0, scoped.stderr
    assert {orjson.loads(line)["event_id"] for line in scoped.stdout.splitlines()} == in_u2

    store = SQLiteStore.from_settings(Settings(environment="test", data_dir=data))
    store.open()
    runs = [e for e in store.iter_audit() if e.action == "hunt.run"]
    store.close()
    assert len(runs) == 2 and runs[1].after is not None and runs[1].after["units"] == ["u2"]
    assert runs[0].after is not None and runs[0].after["hits"] == 3 and runs[0].actor.startswith("cli:")


def test_hunt_stored_shows_progress_on_a_terminal_and_refuses_a_bad_rule(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    leader, follower = pty.openpty()
    try:
        run = _run("--data-dir", str(data), "--rule", str(data / "rule.yml"), "--from", "2024-08-01",
                   "--to", "2024-08-03", stderr=follower)
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert run.returncode == 0
    assert b"ev" in shown and b"hit(s)" in shown, shown
    bad = _run("--data-dir", str(data), "--rule", "no-such-rule-id", "--from", "2024-08-01", "--to", "2024-08-02")
    assert bad.returncode == 2 and "neither a rule file" in bad.stderr
    typo = _run("--data-dir", str(data), "--rule", str(data / "rule.yml"), "--from", "2024-08-01", "--to",
                "2024-08-02", "--unit", "u9")
    assert typo.returncode == 2 and "unknown unit(s): u9" in typo.stderr and typo.stdout == ""
