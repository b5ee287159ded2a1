"""The durable outbox: every action a playbook (or an admin) asks for, as a row in ``data_dir/outbox.db``.

Why a table and not a queue in memory: an action must survive a restart and an outage of hours, run at
least once, never twice for the same idempotency key, and stay visible (history, dead letters) to the
people who must trust it. The worker (:mod:`playbooks.worker`) claims due rows; a crash while a row is
``running`` makes it due again on the next start (at-least-once).

Statuses: ``awaiting_approval`` → ``pending`` → ``running`` → ``succeeded`` | ``failed`` (retry scheduled,
exponential backoff) → … → ``dead`` (dead letter, retryable by an admin); ``rejected`` by an admin.
Rows of a *lane* (the national connector) are delivered strictly in seq order: only the lane's oldest
unfinished row may run, so a failing row holds the later ones instead of letting them overtake it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from soclite.config import Settings
from soclite.db import Database
from soclite.errors import NotFoundError, PlaybookError
from soclite.models import isoformat, new_id
from soclite.playbooks import outbox_history as ohist
from soclite.playbooks.outbox_iocs import IocLists

MIGRATIONS = [
    """
CREATE TABLE actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    payload TEXT,
    alert_id TEXT,
    playbook_id TEXT,
    step TEXT,
    lane TEXT,
    requested_by TEXT NOT NULL,
    requires_approval INTEGER NOT NULL,
    status TEXT NOT NULL,
    approved_by TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    backoff_seconds REAL NOT NULL,
    backoff_factor REAL NOT NULL,
    max_backoff_seconds REAL NOT NULL,
    timeout_seconds REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    result TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX actions_due ON actions(status, next_attempt_at);
CREATE INDEX actions_alert ON actions(alert_id);
CREATE INDEX actions_lane ON actions(lane, status, seq);
CREATE TABLE action_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id TEXT NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX history_action ON action_history(action_id);
CREATE TABLE connector_state (
    name TEXT PRIMARY KEY,
    last_success TEXT,
    last_error TEXT,
    last_error_at TEXT,
    last_heartbeat TEXT,
    sent INTEGER NOT NULL DEFAULT 0,
    cursor TEXT
);
CREATE TABLE ioc_values (
    list TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    source_id TEXT,
    PRIMARY KEY (list, value)
);
""",
    ohist.MIGRATION,
    # 3: the level an IoC list's hits alert at, so a restored list (or the detection process's copy)
    # alerts at the level it was created with
    "ALTER TABLE ioc_values ADD COLUMN level TEXT NOT NULL DEFAULT 'high';",
]


class ActionStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a retry is scheduled at next_attempt_at
    DEAD = "dead"
    REJECTED = "rejected"


class RetryPolicy(BaseModel):
    """``count`` attempts in all; the n-th retry waits backoff·factor^(n-1) seconds, at most max_backoff."""

    count: int = Field(5, ge=1, le=1000)
    backoff: float = Field(30.0, ge=0)
    factor: float = Field(2.0, ge=1)
    max_backoff: float = Field(3600.0, ge=0)


class ActionRecord(BaseModel):
    seq: int
    id: str
    idempotency_key: str
    action: str
    params: dict[str, Any]
    payload: dict[str, Any] | None = None
    alert_id: str | None = None
    playbook_id: str | None = None
    step: str | None = None
    lane: str | None = None
    requested_by: str
    requires_approval: bool
    status: ActionStatus
    approved_by: str | None = None
    attempts: int
    max_attempts: int
    backoff_seconds: float
    backoff_factor: float
    max_backoff_seconds: float
    timeout_seconds: float
    next_attempt_at: float
    last_error: str | None = None
    result: str | None = None
    created_at: str
    updated_at: str


class HistoryEntry(BaseModel):
    action_id: str
    at: str
    status: str
    detail: str | None = None


class ConnectorStatus(BaseModel):
    name: str
    enabled: bool = True
    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    last_heartbeat: str | None = None
    sent: int = 0
    backlog: int = 0
    dead: int = 0
    cursor: str | None = None


_OPEN = (ActionStatus.PENDING.value, ActionStatus.FAILED.value)
_UNFINISHED = (*_OPEN, ActionStatus.RUNNING.value)


def _now_iso() -> str:
    return isoformat(datetime.now(UTC))


def _row(row: Any) -> ActionRecord:
    data = dict(row)
    data["params"] = orjson.loads(data["params"])
    data["payload"] = orjson.loads(data["payload"]) if data["payload"] else None
    data["requires_approval"] = bool(data["requires_approval"])
    return ActionRecord.model_validate(data)


class Outbox(IocLists):
    """See the module docstring. Thread-safe: writes go through :meth:`Database.write`."""

    def __init__(
        self, path: Path | str, *, clock: Callable[[], float] = time.time, connector: str | None = None
    ) -> None:
        self.db = Database(path, MIGRATIONS, name="outbox")
        #: the national connector whose state health_warnings() reports (None = disabled)
        self.connector = connector
        self.clock = clock
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Outbox:
        national = settings.national
        return cls(settings.data_dir / "outbox.db", connector=national.kind if national.enabled else None)

    def close(self) -> None:
        self.db.close()

    def on_submit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each new row (the worker wakes up instead of polling)."""
        self._listeners.append(listener)

    # --- submitting ---------------------------------------------------------------------------------
    def submit(
        self,
        action: str,
        params: dict[str, Any],
        *,
        idempotency_key: str,
        alert_id: str | None = None,
        requested_by: str,
        requires_approval: bool = False,
        playbook_id: str | None = None,
        step: str | None = None,
        payload: dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
    ) -> ActionRecord:
        """Add an action; the same idempotency key returns the existing row unchanged."""
        from soclite.playbooks.actions import get_action

        cls = get_action(action)
        try:
            options = cls.options.model_validate(params)
        except ValueError as exc:
            raise PlaybookError(f"invalid parameters for {action}: {exc}") from exc
        policy = retry or RetryPolicy()
        now_iso = _now_iso()
        status = ActionStatus.AWAITING_APPROVAL if requires_approval else ActionStatus.PENDING
        with self.db.write() as conn:
            existing = conn.execute(
                "SELECT * FROM actions WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if existing is not None:
                return _row(existing)
            action_id = new_id()
            conn.execute(
                "INSERT INTO actions (id, idempotency_key, action, params, payload, alert_id, playbook_id, step,"
                " lane, requested_by, requires_approval, status, max_attempts, backoff_seconds, backoff_factor,"
                " max_backoff_seconds, timeout_seconds, next_attempt_at, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    action_id,
                    idempotency_key,
                    action,
                    orjson.dumps(options.model_dump(mode="json")).decode(),
                    orjson.dumps(payload).decode() if payload is not None else None,
                    alert_id,
                    playbook_id,
                    step,
                    cls.lane,
                    requested_by,
                    int(requires_approval),
                    status.value,
                    policy.count,
                    policy.backoff,
                    policy.factor,
                    policy.max_backoff,
                    timeout,
                    self.clock(),
                    now_iso,
                    now_iso,
                ),
            )
            self._history(conn, action_id, status.value, f"submitted by {requested_by}")
            row = conn.execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
        for listener in list(self._listeners):
            listener()
        return _row(row)

    # --- approval and dead letters -----------------------------------------------------------------
    def approve(self, action_id: str, approver: str) -> ActionRecord:
        return self._transition(
            action_id,
            {ActionStatus.AWAITING_APPROVAL},
            ActionStatus.PENDING,
            f"approved by {approver}",
            approved_by=approver,
        )

    def reject(self, action_id: str, approver: str, reason: str) -> ActionRecord:
        return self._transition(
            action_id,
            {ActionStatus.AWAITING_APPROVAL},
            ActionStatus.REJECTED,
            f"rejected by {approver}: {reason}",
            approved_by=approver,
            last_error=f"rejected: {reason}",
        )

    def retry(self, action_id: str, requested_by: str = "admin") -> ActionRecord:
        """Give a dead letter a new round of attempts."""
        return self._transition(
            action_id,
            {ActionStatus.DEAD},
            ActionStatus.PENDING,
            f"retry requested by {requested_by}",
            attempts=0,
        )

    def _transition(
        self, action_id: str, allowed: set[ActionStatus], to: ActionStatus, detail: str, **columns: Any
    ) -> ActionRecord:
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"action {action_id} not found")
            if row["status"] not in {s.value for s in allowed}:
                raise PlaybookError(
                    f"action {action_id} is {row['status']}; only {', '.join(sorted(allowed))} can become {to.value}"
                )
            sets = {"status": to.value, "updated_at": _now_iso(), "next_attempt_at": self.clock(), **columns}
            assignments = ", ".join(f"{name} = ?" for name in sets)
            conn.execute(f"UPDATE actions SET {assignments} WHERE id = ?", (*sets.values(), action_id))
            self._history(conn, action_id, to.value, detail)
            row = conn.execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
        for listener in list(self._listeners):
            listener()
        return _row(row)

    # --- the worker's side ---------------------------------------------------------------------------
    def recover(self) -> int:
        """Rows left ``running`` by a crash become due again (at-least-once)."""
        with self.db.write() as conn:
            rows = conn.execute("SELECT id FROM actions WHERE status = 'running'").fetchall()
            for row in rows:
                self._history(conn, row["id"], ActionStatus.FAILED.value, "interrupted (restart); due again")
            conn.execute(
                "UPDATE actions SET status = 'failed', next_attempt_at = ?, updated_at = ? WHERE status = 'running'",
                (self.clock(), _now_iso()),
            )
        return len(rows)

    def claim_due(self, limit: int = 16) -> list[ActionRecord]:
        """Mark due rows ``running`` and return them: independent rows by age, plus each lane's head."""
        now = self.clock()
        claimed: list[ActionRecord] = []
        with self.db.write() as conn:
            rows = list(
                conn.execute(
                    "SELECT * FROM actions WHERE lane IS NULL AND status IN (?, ?) AND next_attempt_at <= ?"
                    " ORDER BY next_attempt_at, seq LIMIT ?",
                    (*_OPEN, now, limit),
                )
            )
            lanes = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT lane FROM actions WHERE lane IS NOT NULL AND status IN (?, ?)", _OPEN
                )
            ]
            for lane in lanes:
                head = conn.execute(
                    "SELECT * FROM actions WHERE lane = ? AND status IN (?, ?, ?) ORDER BY seq LIMIT 1",
                    (lane, *_UNFINISHED),
                ).fetchone()
                if head is not None and head["status"] != "running" and head["next_attempt_at"] <= now:
                    rows.append(head)
            stamp = _now_iso()
            for row in rows:
                conn.execute(
                    "UPDATE actions SET status = 'running', attempts = attempts + 1, updated_at = ? WHERE id = ?",
                    (stamp, row["id"]),
                )
                self._history(conn, row["id"], "running", f"attempt {row['attempts'] + 1}")
                claimed.append(
                    _row(conn.execute("SELECT * FROM actions WHERE id = ?", (row["id"],)).fetchone())
                )
        return claimed

    def complete(self, action_id: str, result: str, *, attempt: int | None = None) -> bool:
        """Mark a running row succeeded. With ``attempt``, only if that attempt still owns the row (an action
        that overran its timeout was already failed and may have been claimed again): returns whether it did."""
        with self.db.write() as conn:
            sql = "UPDATE actions SET status = 'succeeded', result = ?, last_error = NULL, updated_at = ? WHERE id = ?"
            args: list[Any] = [result, _now_iso(), action_id]
            if attempt is not None:
                sql += " AND status = 'running' AND attempts = ?"
                args.append(attempt)
            if conn.execute(sql, args).rowcount == 0:
                return False
            self._history(conn, action_id, ActionStatus.SUCCEEDED.value, result)
        return True

    def fail(
        self, action_id: str, error: str, *, permanent: bool, attempt: int | None = None
    ) -> ActionRecord:
        """Schedule a retry with exponential backoff, or dead-letter the row.

        A lane's row is never dead-lettered for a retryable error: it holds the lane (ordered delivery after
        an outage of hours) and keeps retrying at most every ``max_backoff_seconds``.
        """
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"action {action_id} not found")
            if attempt is not None and (row["status"] != "running" or int(row["attempts"]) != attempt):
                return _row(row)  # a late result of an attempt that already timed out: the row moved on
            attempts = int(row["attempts"])
            exhausted = attempts >= int(row["max_attempts"]) and row["lane"] is None
            if permanent or exhausted:
                status, when = ActionStatus.DEAD, self.clock()
                detail = f"dead letter after {attempts} attempt(s): {error}"
            else:
                delay = float(row["backoff_seconds"]) * float(row["backoff_factor"]) ** max(attempts - 1, 0)
                delay = min(delay, float(row["max_backoff_seconds"]))
                status, when = ActionStatus.FAILED, self.clock() + delay
                detail = f"attempt {attempts} failed, retry in {delay:.1f}s: {error}"
            conn.execute(
                "UPDATE actions SET status = ?, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?",
                (status.value, error[:2000], when, _now_iso(), action_id),
            )
            self._history(conn, action_id, status.value, detail[:2000])
            updated = conn.execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
        return _row(updated)

    def next_due_in(self) -> float | None:
        """Seconds until the earliest open row is due (None when nothing is open)."""
        row = (
            self.db.reader()
            .execute("SELECT min(next_attempt_at) FROM actions WHERE status IN (?, ?)", _OPEN)
            .fetchone()
        )
        if row is None or row[0] is None:
            return None
        return max(0.0, float(row[0]) - self.clock())

    # --- reading ----------------------------------------------------------------------------------
    def get(self, action_id: str) -> ActionRecord:
        row = self.db.reader().execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"action {action_id} not found")
        return _row(row)

    def get_by_key(self, idempotency_key: str) -> ActionRecord | None:
        row = (
            self.db.reader()
            .execute("SELECT * FROM actions WHERE idempotency_key = ?", (idempotency_key,))
            .fetchone()
        )
        return _row(row) if row is not None else None

    def list_actions(
        self,
        *,
        alert_id: str | None = None,
        status: str | Iterable[str] | None = None,
        action: str | None = None,
        lane: str | None = None,
        limit: int = 100,
        before_seq: int | None = None,
        oldest_first: bool = False,
    ) -> list[ActionRecord]:
        where: list[str] = []
        args: list[Any] = []
        if alert_id is not None:
            where.append("alert_id = ?")
            args.append(alert_id)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            args.extend(statuses)
        if action is not None:
            where.append("action = ?")
            args.append(action)
        if lane is not None:
            where.append("lane = ?")
            args.append(lane)
        if before_seq is not None:
            where.append("seq < ?" if not oldest_first else "seq > ?")
            args.append(before_seq)
        sql = "SELECT * FROM actions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {'ASC' if oldest_first else 'DESC'} LIMIT ?"
        args.append(limit)
        return [_row(r) for r in self.db.reader().execute(sql, args)]

    def history(self, action_id: str) -> list[HistoryEntry]:
        rows = self.db.reader().execute(
            "SELECT action_id, at, status, detail FROM action_history WHERE action_id = ? ORDER BY id",
            (action_id,),
        )
        return [HistoryEntry.model_validate(dict(r)) for r in rows]

    def count(self, status: str, lane: str | None = None) -> int:
        sql = "SELECT count(*) FROM actions WHERE status = ?"
        args: list[Any] = [status]
        if lane is not None:
            sql += " AND lane = ?"
            args.append(lane)
        return int(self.db.reader().execute(sql, args).fetchone()[0])

    # --- connector state and IoC lists ----------------------------------------------------------------
    def connector_update(self, name: str, **fields: Any) -> None:
        """Record last_success/last_error/last_heartbeat/cursor; ``sent_increment`` adds to ``sent``.

        An error marks the connector down and a success (or ``reachable=True``) up, in its history."""
        increment = int(fields.pop("sent_increment", 0))
        #: True = the peer answered (e.g. refused one object): an error, but no outage
        reachable = fields.pop("reachable", None)
        with self.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO connector_state (name) VALUES (?)", (name,))
            # the outage history the reports compute downtime from (playbooks.outbox_history)
            if reachable is True:
                ohist.record_transition(
                    conn, name, "up", str(fields.get("last_error_at") or _now_iso()), None
                )
            elif fields.get("last_error"):
                at = str(fields.get("last_error_at") or _now_iso())
                ohist.record_transition(conn, name, "down", at, str(fields["last_error"]))
            elif fields.get("last_success") or fields.get("last_heartbeat"):
                at = str(fields.get("last_success") or fields.get("last_heartbeat"))
                ohist.record_transition(conn, name, "up", at, None)
            if fields:
                assignments = ", ".join(f"{key} = ?" for key in fields)
                conn.execute(
                    f"UPDATE connector_state SET {assignments} WHERE name = ?", (*fields.values(), name)
                )
            if increment:
                conn.execute("UPDATE connector_state SET sent = sent + ? WHERE name = ?", (increment, name))

    def connector_status(self, name: str, lane: str = "national") -> ConnectorStatus:
        row = self.db.reader().execute("SELECT * FROM connector_state WHERE name = ?", (name,)).fetchone()
        data: dict[str, Any] = dict(row) if row is not None else {"name": name}
        backlog = (
            self.db.reader()
            .execute(
                "SELECT count(*) FROM actions WHERE lane = ? AND status IN (?, ?, ?)", (lane, *_UNFINISHED)
            )
            .fetchone()[0]
        )
        data["backlog"] = int(backlog)
        data["dead"] = self.count(ActionStatus.DEAD.value, lane)
        return ConnectorStatus.model_validate(data)

    def connector_events(self, name: str) -> list[ohist.ConnectorEvent]:
        """Up/down transitions of connector ``name``, oldest first."""
        return ohist.events(self.db.reader(), name)

    def connector_downtime(
        self, name: str, start: datetime, end: datetime, now: datetime | None = None
    ) -> tuple[float, int]:
        """Seconds the connector was down within [start, end) (up to ``now``) and how many outages."""
        return ohist.downtime_seconds(self.connector_events(name), start, end, now or datetime.now(UTC))

    def succeeded_between(self, action: str, start: datetime, end: datetime) -> int:
        return ohist.succeeded_between(self.db.reader(), action, start, end)

    # --- health -------------------------------------------------------------------------------------
    def health_warnings(self, *, connector: str | None = None) -> list[str]:
        warnings: list[str] = []
        connector = connector or self.connector
        dead = self.count(ActionStatus.DEAD.value)
        if dead:
            warnings.append(f"{dead} action(s) in the dead-letter list")
        waiting = self.count(ActionStatus.AWAITING_APPROVAL.value)
        if waiting:
            warnings.append(f"{waiting} action(s) awaiting approval")
        late = (
            self.db.reader()
            .execute(
                "SELECT count(*) FROM actions WHERE status IN (?, ?) AND next_attempt_at < ?",
                (*_OPEN, self.clock() - 600),
            )
            .fetchone()[0]
        )
        if late:
            warnings.append(
                f"{late} action(s) overdue by more than 10 minutes (is the playbook worker running?)"
            )
        if connector is not None:
            state = self.connector_status(connector)
            if state.last_error and (
                state.last_success is None or (state.last_error_at or "") > state.last_success
            ):
                warnings.append(
                    f"national connector {connector}: {state.last_error} (backlog {state.backlog})"
                )
            elif state.backlog > 100:
                warnings.append(f"national connector {connector}: backlog {state.backlog}")
        return warnings

    @staticmethod
    def _history(conn: Any, action_id: str, status: str, detail: str) -> None:
        conn.execute(
            "INSERT INTO action_history (action_id, at, status, detail) VALUES (?, ?, ?, ?)",
            (action_id, _now_iso(), status, detail),
        )
