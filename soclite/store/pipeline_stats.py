"""data_dir/pipeline.db: what the pipeline child process reports to the server.

Rule and exception hit counts since the server started (deltas added by the child) and the child's
last status (heartbeat, events, errors), read by the API and /health. Its own file: the detection
process writes it every few seconds and the server empties it at every start, so it stays out of
control.db (whose rows people created and must keep).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from soclite.db import Database

MIGRATIONS = [
    """
CREATE TABLE rule_hits (rule_id TEXT PRIMARY KEY, hits INTEGER NOT NULL);
CREATE TABLE exception_hits (exception_id TEXT PRIMARY KEY, hits INTEGER NOT NULL);
CREATE TABLE worker_status (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    alerts_created INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
"""
]


class WorkerStatus(BaseModel):
    pid: int
    started_at: float
    heartbeat_at: float
    events: int = 0
    alerts_created: int = 0
    errors: int = 0
    last_error: str | None = None


class PipelineStats:
    """Hit counts since the server started, and the child's last status."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path, MIGRATIONS, name="pipeline")

    def reset_hits(self) -> None:
        """Called by the server at start: counts are "since the server started", as with an in-process engine."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM rule_hits")
            conn.execute("DELETE FROM exception_hits")

    def add_hits(self, rules: dict[str, int], exceptions: dict[str, int]) -> None:
        """Add deltas: a restarted child starts counting from zero without losing what was written."""
        sql = "INSERT INTO {t} ({k}, hits) VALUES (?, ?) ON CONFLICT({k}) DO UPDATE SET hits = hits + excluded.hits"
        with self.db.write() as conn:
            conn.executemany(sql.format(t="rule_hits", k="rule_id"), list(rules.items()))
            conn.executemany(sql.format(t="exception_hits", k="exception_id"), list(exceptions.items()))

    def rule_hits(self) -> dict[str, int]:
        return {str(r[0]): int(r[1]) for r in self.db.reader().execute("SELECT rule_id, hits FROM rule_hits")}

    def exception_hits(self) -> dict[str, int]:
        rows = self.db.reader().execute("SELECT exception_id, hits FROM exception_hits")
        return {str(r[0]): int(r[1]) for r in rows}

    def set_status(self, status: WorkerStatus) -> None:
        data = status.model_dump()
        with self.db.write() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO worker_status (id, {', '.join(data)}) VALUES (1, {', '.join('?' for _ in data)})",
                tuple(data.values()),
            )

    def status(self) -> WorkerStatus | None:
        row = self.db.reader().execute("SELECT * FROM worker_status WHERE id = 1").fetchone()
        if row is None:
            return None
        data = dict(row)
        data.pop("id", None)
        return WorkerStatus.model_validate(data)

    def close(self) -> None:
        self.db.close()


