"""Issue 13, item 10: start-up checks every database and refuses a damaged one, naming it.

Real ``soclite server`` processes on real (damaged) files; the damage is done the way a failed
disk or a bad restore does it: truncation to zero, overwritten pages, a file that is not SQLite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from soclite.config import Settings
from soclite.runtime import Runtime
from tests.collectors.conftest import free_port


def make_data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    Runtime.build(Settings(environment="test", data_dir=data)).close()
    assert (data / "events.db").stat().st_size > 8192
    return data


def soclite(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOCLITE_ENVIRONMENT": "development"}
    return subprocess.run([sys.executable, "-m", "soclite.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip


def start(data: Path) -> subprocess.CompletedProcess[str]:
    return soclite("server", "--data-dir", str(data), "--http-port", str(free_port()), "--syslog-port", "0")


def corrupt_pages(path: Path) -> None:
    with path.open("r+b") as f:
        f.seek(4096 * 2)  # page 3 onwards: b-tree pages of the schema's tables, not the header
        f.write(b"\xde\xad\xbe\xef" * 2048)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("events.db", lambda p: p.write_bytes(b"")),
        ("events.db", corrupt_pages),
        ("agents.db", lambda p: p.write_bytes(b"garbage, not a database\n" * 200)),
    ],
    ids=["zero-length", "page-corruption", "garbage-agents-file"],
)
def test_the_server_refuses_a_damaged_database_and_names_it(tmp_path: Path, name: str, damage: object) -> None:
    data = make_data_dir(tmp_path)
    target = data / name
    damage(target)  # type: ignore[operator]
    result = start(data)
    assert result.returncode == 3, result.stderr[-3000:]
    assert str(target) in result.stderr and "restore" in result.stderr, result.stderr[-3000:]
    checked = soclite("db", "check", "--data-dir", str(data))
    assert checked.returncode == 1 and f"{target}: " in checked.stdout and f"{data / 'control.db'}: ok" in checked.stdout


def test_db_check_passes_a_sound_data_dir(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path)
    checked = soclite("db", "check", "--data-dir", str(data))
    assert checked.returncode == 0, checked.stderr
    assert all(line.endswith(": ok") for line in checked.stdout.splitlines()) and "events.db" in checked.stdout
