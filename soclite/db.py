"""SQLite helpers shared by every embedded table set: WAL, pragmas, versioned migrations.

Every file under the data dir that is SQLite, and why it is a file of its own:

=================  ==========================================  ==========================================
file               what is in it                               why it is separate
=================  ==========================================  ==========================================
control.db         everything people and playbooks decide and  one migration history
                   must keep: tokens, users, comments, alert   (:mod:`soclite.control.schema`), low write
                   history, cases, exceptions, rule states,    rate; the one database of every control
                   agent enrollment and register, agent        repository (:mod:`soclite.control`), so
                   commands, the outbox (actions, history,     what changes together commits together
                   connector state and outages), IoC lists,    (e.g. an IoC value and its receipt time).
                   the report archive's index and deliveries
events.db          events, alerts, hosts, units, the hash-     the data path's bulk store
                   chained audit trail (sqlite store;          (:mod:`soclite.store.sqlite`), high write
                   OpenSearch replaces it when configured)     rate, replaceable by OpenSearch; sized and
                                                               retained on its own.
journal.db         the ingest journal (acknowledged batches    fsync-per-batch queue written by every
                   not yet consumed) and the dead letters      input and emptied by compaction
                                                               (:mod:`soclite.store.journal`); its disk
                                                               bound must never block control writes.
pipeline.db        rule/exception hit counts and the pipeline  written every few seconds by the pipeline
                   child's status                              child and emptied at each server start
                                                               (:mod:`soclite.store.pipeline_stats`):
                                                               disposable telemetry, not control data.
scheduler.db       the report scheduler's job store            owned by APScheduler's SQLAlchemy job store
                                                               (its own schema, not ours to migrate).
=================  ==========================================  ==========================================

agents.db, commands.db, outbox.db and reports.db of earlier releases are imported into control.db
once and renamed ``*.imported``. The endpoint agent (:mod:`collectors.agent`) keeps its own spool
and state on the workstation; it never opens a server file.

Each file has its own list of migrations. A database whose recorded version is
newer than the code knows, or that is not a database at all, stops start-up with
:class:`~soclite.errors.SchemaError` instead of being touched.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from soclite.errors import SchemaError

Migration = str  # one SQL script per schema version, applied in order


def connect(path: Path | str, *, check_same_thread: bool = False, create: bool = True) -> sqlite3.Connection:
    """Open with WAL, full durability on commit, and a busy timeout for concurrent writers.

    ``create=False`` opens an existing file only (sqlite3.OperationalError when it is missing).
    """
    if str(path) != ":memory:" and create:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    target = str(path) if create else f"file:{quote(str(Path(path).resolve()))}?mode=rw"
    conn = sqlite3.connect(target, timeout=30.0, check_same_thread=check_same_thread, isolation_level=None,
                           uri=not create)
    try:
        _set_wal(conn)
        # synchronous=FULL: a commit that returned is on disk even after a power loss (ingest acks depend on it).
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise SchemaError(f"{path}: not a usable SQLite database ({exc}); refusing to touch it") from exc
    conn.row_factory = sqlite3.Row
    return conn


def _set_wal(conn: sqlite3.Connection, *, wait_s: float = 30.0) -> None:
    """Switch to WAL, waiting out another connection that is switching the same new file.

    SQLite answers "database is locked" at once, without the busy handler, while a second
    connection is creating the WAL of a file (a reader opening a day file the writer has just
    created); the mode persists in the file, so a short retry sees it done.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


#: what an operator can do about a damaged database (start-up refusal and ``soclite db check``)
REMEDY = (
    "stop soclite, restore this file from the last backup (or move it aside to start it empty, losing "
    "its data), then run 'soclite db check --data-dir DIR' until every file is ok"
)


def check_file(path: Path) -> str | None:
    """What is wrong with one SQLite file (None: absent, or ``PRAGMA quick_check`` says ok).

    A zero-length file is refused too: SQLite would take it as a new empty database and start
    silently without the data it had (a truncated copy, a failed restore).
    """
    if not path.exists():
        return None
    if path.stat().st_size == 0:
        return "the file is empty (zero length): SQLite would start it as a new, empty database"
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=rw", uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        return f"cannot be opened: {exc}"
    try:
        rows = [str(row[0]) for row in conn.execute("PRAGMA quick_check(5)").fetchall()]
    except sqlite3.DatabaseError as exc:
        return f"not a usable SQLite database: {exc}"
    finally:
        conn.close()
    if rows != ["ok"]:
        return "integrity check failed: " + "; ".join(rows)
    return None


def check_data_dir(data_dir: Path) -> dict[Path, str | None]:
    """Every SQLite file of a data directory (``*.db``) with what is wrong with it (None: ok)."""
    if not data_dir.is_dir():
        return {}
    return {path: check_file(path) for path in sorted(data_dir.glob("*.db"))}


def require_sound_data_dir(data_dir: Path) -> None:
    """Refuse to start on a damaged database: SchemaError naming each file, what is wrong and what to do."""
    problems = {path: why for path, why in check_data_dir(data_dir).items() if why}
    if problems:
        listed = "; ".join(f"{path}: {why}" for path, why in problems.items())
        raise SchemaError(f"{listed}. To recover: {REMEDY}")


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], *, name: str) -> int:
    """Bring the schema to ``len(migrations)``; return the version reached.

    The version lives in ``PRAGMA user_version``. Each migration runs in its own
    transaction together with the version bump, so a crash leaves a consistent schema.
    """
    try:
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise SchemaError(f"{name}: database is corrupt ({exc}); refusing to touch it") from exc
    target = len(migrations)
    if current > target:
        raise SchemaError(
            f"{name}: schema version {current} is newer than this soclite knows ({target}); "
            "upgrade soclite instead of running an older version on this data"
        )
    for version in range(current, target):
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _split_sql(migrations[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={version + 1}")
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            conn.execute("ROLLBACK")
            raise SchemaError(f"{name}: migration {version + 1} failed: {exc}") from exc
    return target


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on a connection in autocommit mode: committed on success, rolled back on error.

    SQLite has already rolled back after some errors (SQLITE_FULL, SQLITE_IOERR): a second ROLLBACK
    would fail and hide the error that matters.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _split_sql(script: str) -> Iterator[str]:
    """Split a migration script into statements (sqlite3.execute runs one at a time)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if statement:
                yield statement
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


class Database:
    """One SQLite file shared by threads: a lock serialises writers, readers use their own connection."""

    def __init__(self, path: Path | str, migrations: Sequence[Migration], *, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or self.path.name
        self._lock = threading.RLock()
        self._local = threading.local()
        self._write_conn = connect(self.path)
        migrate(self._write_conn, migrations, name=str(self.path))

    def reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
        return conn

    def data_version(self) -> int:
        """SQLite's ``data_version`` on this thread's reader: it changes when another connection committed."""
        return int(self.reader().execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on success, rolled back on any error.

        Nested in a write of the same thread it is a savepoint of that transaction: what several
        repositories over this database write together commits together (``with db.write(): ...``),
        and an inner error the caller handles undoes only the inner part.
        """
        with self._lock:
            conn = self._write_conn
            depth: int = getattr(self._local, "write_depth", 0)
            if depth:
                savepoint = f"sp{depth}"
                conn.execute(f"SAVEPOINT {savepoint}")
                self._local.write_depth = depth + 1
                try:
                    yield conn
                except BaseException:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
                    raise
                finally:
                    self._local.write_depth = depth
                conn.execute(f"RELEASE {savepoint}")
                return
            self._local.write_depth = 1
            try:
                with transaction(conn):
                    yield conn
            finally:
                self._local.write_depth = 0

    @contextmanager
    def attached(self, path: Path | str, alias: str) -> Iterator[sqlite3.Connection]:
        """A write transaction with another file attached as ``alias`` (ATTACH cannot run inside one)."""
        if not alias.isidentifier():
            raise ValueError(f"invalid alias {alias!r}")
        with self._lock:
            conn = self._write_conn
            conn.execute(f"ATTACH DATABASE ? AS {alias}", (str(path),))
            try:
                with transaction(conn):
                    yield conn
            finally:
                conn.execute(f"DETACH DATABASE {alias}")

    def close(self) -> None:
        self._write_conn.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
