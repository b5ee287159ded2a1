"""The durable outbox's storage: every action a playbook (or an admin) asks for, as a row in control.db.

Why a table and not a queue in memory: an action must survive a restart and an outage of hours, run at
least once, never twice for the same idempotency key, and stay visible (history, dead letters) to the
people who must trust it. The worker (:mod:`playbooks.worker`) claims due rows; a crash while a row is
``running`` makes it due again on the next start (at-least-once).

Statuses: ``awaiting_approval`` → ``pending`` → ``running`` → ``succeeded`` | ``failed`` (retry scheduled,
exponential backoff) → … → ``dead`` (dead letter, retryable by an admin); ``rejected`` by an admin;
``cancelled`` by an admin (any row not running and not finished: a request nobody wants any more, or a
dead letter dismissed). Under the site's two-person rule the requester of an action may not approve it.
Rows of a *lane* (the national connector) are delivered strictly in seq order: only the lane's oldest
unfinished row may run, so a failing row holds the later ones instead of letting them overtake it.

The connector's outage history (``connector_events``) is appended in the same transaction as the state
it explains; the periodic reports read it (:meth:`OutboxStore.connector_downtime`). A transition is
recorded only when the state changes: the first failure after a success marks the connector ``down``
(at the failure's time), the next success marks it ``up``. Downtime in a window is the time spent
``down`` inside it; a connector still down counts up to ``now``.

Tables in control.db (:mod:`soclite.control.schema`, version 7; outbox.db before). Validating an
action's parameters and waking the worker is :class:`playbooks.outbox.Outbox`, built on this class.
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

from soclite.control.connectors import ConnectorHistory
from soclite.control.iocs import IocLists
from soclite.control.schema import MIGRATIONS
from soclite.db import Database
from soclite.errors import AuthError, NotFoundError, PlaybookError
from soclite.models import isoformat, new_id


class ActionStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a retry is scheduled at next_attempt_at
    DEAD = "dead"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


#: a row an admin may still cancel: not running (the worker owns it) and not finished
CANCELLABLE = frozenset(
    {ActionStatus.AWAITING_APPROVAL, ActionStatus.PENDING, ActionStatus.FAILED, ActionStatus.DEAD}
)


class TwoPersonRule(AuthError):
    """The requester of an action tried to approve it under the two-person rule."""


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


class OutboxStore(IocLists, ConnectorHistory):
    """See the module docstring. Thread-safe: writes go through :meth:`Database.write`.

    ``db`` is the shared control database; a path opens a database of its own at that path (tests, tools).
    """

    def __init__(
        self,
        db: Database | Path | str,
        *,
        clock: Callable[[], float] = time.time,
        connector: str | None = None,
    ) -> None:
        self._owns_db = not isinstance(db, Database)
        self.db = db if isinstance(db, Database) else Database(db, MIGRATIONS, name="control")
        #: the national connector whose state health_warnings() reports (None = disabled)
        self.connector = connector
        self.clock = clock
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._owns_db:
            self.db.close()

    def _changed(self) -> None:
        """Called after each new or transitioned row (the playbook outbox wakes its worker)."""

    # --- submitting ---------------------------------------------------------------------------------
    def insert(
        self,
        action: str,
        params: dict[str, Any],
        *,
        idempotency_key: str,
        lane: str | None,
        alert_id: str | None = None,
        requested_by: str,
        requires_approval: bool = False,
        playbook_id: str | None = None,
        step: str | None = None,
        payload: dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
    ) -> ActionRecord:
        """Add an action with already validated ``params``; the same idempotency key returns the existing row."""
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
                    orjson.dumps(params).decode(),
                    orjson.dumps(payload).decode() if payload is not None else None,
                    alert_id,
                    playbook_id,
                    step,
                    lane,
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
        self._changed()
        return _row(row)

    # --- approval and dead letters -----------------------------------------------------------------
    def approve(self, action_id: str, approver: str, *, two_person: bool = False) -> ActionRecord:
        """Let an awaiting action run; with ``two_person`` its requester may not be the approver."""
        if two_person and self.get(action_id).requested_by == approver:  # requested_by never changes
            raise TwoPersonRule(
                f"two-person rule: {approver} requested action {action_id} and may not approve it; "
                "another admin must"
            )
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

    def cancel(self, action_id: str, by: str, reason: str) -> ActionRecord:
        """Withdraw an action that has not run (or dismiss a dead letter): it will never run."""
        return self._transition(
            action_id,
            set(CANCELLABLE),
            ActionStatus.CANCELLED,
            f"cancelled by {by}: {reason}",
            last_error=f"cancelled: {reason}",
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
        self._changed()
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

    def failures(self, since: str | None = None) -> list[dict[str, Any]]:
        """Failing actions grouped by action and status (failed = retry scheduled, dead = gave up), newest
        error first: what the notification centre and /health show ("7 notify_email dead: Connection refused")."""
        sql = (
            "SELECT action, status, count(*) AS n, max(updated_at) AS last_at FROM actions"
            " WHERE status IN ('failed', 'dead')"
            + (" AND updated_at >= ?" if since else "")
            + " GROUP BY action, status ORDER BY last_at DESC"
        )
        reader = self.db.reader()
        out: list[dict[str, Any]] = []
        for row in reader.execute(sql, (since,) if since else ()):
            last = reader.execute(
                "SELECT last_error FROM actions WHERE action = ? AND status = ? ORDER BY updated_at DESC LIMIT 1",
                (row["action"], row["status"]),
            ).fetchone()
            out.append({"action": row["action"], "status": row["status"], "count": int(row["n"]),
                        "last_at": row["last_at"], "last_error": last[0] if last else None})  # fmt: skip
        return out

    def count(self, status: str, lane: str | None = None) -> int:
        sql = "SELECT count(*) FROM actions WHERE status = ?"
        args: list[Any] = [status]
        if lane is not None:
            sql += " AND lane = ?"
            args.append(lane)
        return int(self.db.reader().execute(sql, args).fetchone()[0])

    # --- connector state (its up/down history: ConnectorHistory) ----------------------------------------------------------------
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

    def succeeded_between(self, action: str, start: datetime, end: datetime) -> int:
        """Rows of ``action`` whose success was recorded in [start, end) (the time it was sent, not asked)."""
        row = (
            self.db.reader()
            .execute(
                "SELECT count(DISTINCT h.action_id) FROM action_history h JOIN actions a ON a.id = h.action_id"
                " WHERE a.action = ? AND h.status = 'succeeded' AND h.at >= ? AND h.at < ?",
                (action, isoformat(start), isoformat(end)),
            )
            .fetchone()
        )
        return int(row[0])

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
