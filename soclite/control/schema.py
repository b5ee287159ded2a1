"""The one schema of ``data_dir/control.db``: every low-write control table, one migration history.

Versions 1-4 are the control.db of earlier releases (identity and triage state), so an existing
control.db upgrades in place; later versions are appended, never edited. What used to live in
files of its own (agents.db, commands.db, outbox.db, reports.db) is created here from version 5
on, and :func:`open_control_db` copies an old file's rows in once (see :data:`LEGACY_FILES`).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from soclite.control._migrations import LEGACY_SCHEMAS, MIGRATIONS
from soclite.db import Database, Migration, connect, migrate
from soclite.errors import SchemaError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LegacyFile:
    """A database file of an earlier release whose tables now live in control.db."""

    name: str
    migrations: list[Migration]
    tables: tuple[str, ...]


LEGACY_FILES = (
    LegacyFile("commands.db", LEGACY_SCHEMAS["commands.db"], ("commands",)),
    LegacyFile("agents.db", LEGACY_SCHEMAS["agents.db"], ("enroll_tokens", "agents")),
    LegacyFile(
        "outbox.db",
        LEGACY_SCHEMAS["outbox.db"],
        ("actions", "action_history", "connector_state", "ioc_values", "connector_events", "ioc_received"),
    ),
    LegacyFile("reports.db", LEGACY_SCHEMAS["reports.db"], ("reports", "deliveries")),
)


def open_control_db(data_dir: Path) -> Database:
    """data_dir/control.db at the current schema, with the rows of any legacy file imported once."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(data_dir / "control.db", MIGRATIONS, name="control")
    try:
        if any((data_dir / legacy.name).exists() for legacy in LEGACY_FILES):
            # The server, its pipeline child and a CLI may open control.db at once: one imports, the
            # others wait and then find the old files renamed.
            with _import_lock(data_dir):
                for legacy in LEGACY_FILES:
                    if (data_dir / legacy.name).exists():
                        import_legacy(db, data_dir / legacy.name, legacy)
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def _import_lock(data_dir: Path) -> Iterator[None]:
    with (data_dir / "control.import.lock").open("ab") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def import_legacy(db: Database, path: Path, legacy: LegacyFile) -> None:
    """Copy the rows of an old per-subsystem file into control.db, then rename it ``*.imported``.

    The old file is first brought to its own last schema (it may come from an older release); rows
    whose key control.db already holds are kept as they are. One transaction: a crash imports all or nothing.
    """
    old = connect(path, create=False)
    try:
        migrate(old, legacy.migrations, name=str(path))
        old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        old.close()
    copied = 0
    with db.attached(path, "legacy") as conn:
        for table in legacy.tables:
            columns = [str(r[1]) for r in conn.execute(f"PRAGMA legacy.table_info({table})").fetchall()]
            if not columns:
                raise SchemaError(f"{path}: table {table} missing; refusing to import it into control.db")
            names = ", ".join(columns)
            copied += conn.execute(
                f"INSERT OR IGNORE INTO main.{table} ({names}) SELECT {names} FROM legacy.{table}"
            ).rowcount
    target = path.with_name(path.name + ".imported")
    n = 1
    while target.exists():  # never overwrite an earlier import's copy
        n += 1
        target = path.with_name(f"{path.name}.imported.{n}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists():
            sidecar.unlink()
    log.warning(
        "imported %d row(s) of %s into control.db; the old file is kept as %s", copied, path, target.name
    )


__all__ = ["LEGACY_FILES", "MIGRATIONS", "LegacyFile", "import_legacy", "open_control_db"]
