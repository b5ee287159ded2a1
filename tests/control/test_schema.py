"""control.db: one migration history, upgraded in place, legacy per-subsystem files imported once."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

from soclite.control import schema
from soclite.control.agents import AgentRegistry
from soclite.control.commands import CommandQueue
from soclite.control.identity import IdentityStore
from soclite.control.iocs import IocLists
from soclite.db import Database, connect, migrate
from soclite.errors import SchemaError


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_an_existing_control_db_upgrades_in_place(tmp_path: Path) -> None:
    # control.db of the previous release: versions 1-4 only, with a token in it.
    old = Database(tmp_path / "control.db", schema.MIGRATIONS[:4], name="control")
    # The token as the previous release wrote it (today's create_token also fills later columns).
    token = "sl_0123456789abcdef_old-secret"
    with old.write() as conn:
        conn.execute("INSERT INTO tokens (id, name, role, unit, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                     ("0123456789abcdef", "old", "analyst", "HN", hashlib.sha256(b"old-secret").hexdigest(),
                      "2025-01-01T00:00:00+00:00"))
    old.close()
    db = schema.open_control_db(tmp_path)
    try:
        assert _version(tmp_path / "control.db") == len(schema.MIGRATIONS)
        assert IdentityStore(db).authenticate_token(token).unit == "HN"
        CommandQueue(db).enqueue("ws-01", "isolate", {}, 60, "k1")  # the new tables are there
    finally:
        db.close()


def _legacy(path: Path, legacy: schema.LegacyFile) -> sqlite3.Connection:
    conn = connect(path)
    migrate(conn, legacy.migrations, name=str(path))
    return conn


def test_legacy_files_are_imported_once_and_renamed(tmp_path: Path) -> None:
    by_name = {f.name: f for f in schema.LEGACY_FILES}
    # agents.db and outbox.db as an earlier release left them (the outbox one version behind its last).
    agents = Database(tmp_path / "agents.db", by_name["agents.db"].migrations, name="agents")
    enroll = AgentRegistry(agents).create_enroll_token(unit="HN", uses=2)
    agents.close()
    conn = _legacy(tmp_path / "outbox.db", schema.LegacyFile("outbox.db", by_name["outbox.db"].migrations[:2], ()))
    conn.execute("INSERT INTO ioc_values (list, kind, value, source_id) VALUES ('national:x', 'ip', '192.0.2.1', NULL)")
    conn.close()

    db = schema.open_control_db(tmp_path)
    try:
        assert AgentRegistry(db).consume(enroll).unit == "HN"
        stored = IocLists(db)
        assert stored.ioc_values("national:x") == ["192.0.2.1"]
        assert stored.ioc_list_level("national:x") == "high"  # the old file was migrated before the copy
    finally:
        db.close()
    assert not (tmp_path / "agents.db").exists() and (tmp_path / "agents.db.imported").exists()
    assert not (tmp_path / "outbox.db").exists() and (tmp_path / "outbox.db.imported").exists()
    # Opening again imports nothing twice: the enrollment token still has one use left, not three.
    db = schema.open_control_db(tmp_path)
    try:
        AgentRegistry(db).consume(enroll)
        with pytest.raises(Exception, match="already used"):
            AgentRegistry(db).consume(enroll)
    finally:
        db.close()


def test_a_legacy_file_newer_than_its_last_schema_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "commands.db")
    conn.execute("PRAGMA user_version=9")
    conn.close()
    with pytest.raises(SchemaError):
        schema.open_control_db(tmp_path)
    assert (tmp_path / "commands.db").exists()


def test_nested_writes_commit_together_and_an_inner_error_undoes_only_its_part(tmp_path: Path) -> None:
    db = schema.open_control_db(tmp_path)
    try:
        stored = IocLists(db)
        with db.write():
            stored.add_ioc_values("l1", "ip", ["192.0.2.1"])
            with pytest.raises(RuntimeError), db.write() as conn:
                conn.execute("INSERT INTO rule_state VALUES ('r1', 1, 'x', 'now')")
                raise RuntimeError("inner")
            assert stored.ioc_values("l1") == []  # a reader sees nothing before the outer commit
        assert stored.ioc_values("l1") == ["192.0.2.1"]
        assert db.reader().execute("SELECT count(*) FROM rule_state").fetchone()[0] == 0
        with pytest.raises(RuntimeError), db.write():
            stored.add_ioc_values("l2", "ip", ["192.0.2.2"])
            raise RuntimeError("outer")
        assert stored.ioc_values("l2") == []
    finally:
        db.close()


def test_threads_opening_one_new_file_at_once_all_get_it(tmp_path: Path) -> None:
    # A reader opening a day file the writer has just created met "database is locked" while the
    # writer was switching it to WAL; SQLite does not run the busy handler for that. 4 threads on
    # 300 new files failed 5 times before the retry.
    failures: list[BaseException] = []

    def open_and_create(path: Path) -> None:
        try:
            conn = connect(path)
            conn.execute("CREATE TABLE IF NOT EXISTS t (a)")
            conn.close()
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    for n in range(300):
        path = tmp_path / f"{n}.db"
        threads = [threading.Thread(target=open_and_create, args=(path,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
