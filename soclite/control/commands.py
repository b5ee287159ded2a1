"""The command channel to agents: isolate/release requests, delivered by polling, confirmed by result.

A command's life: ``pending`` (queued) → ``delivered`` (an agent fetched it; it is
handed out again until a result arrives, because the agent may crash between
applying and reporting — isolation commands are idempotent) → ``done`` or
``failed`` (the agent's report). A command nobody fetched within its TTL becomes
``expired``: an isolation that never reached the host must not look in progress.

The Host in the store mirrors it, so the console shows verified state (the states are
:class:`soclite.models.IsolationState`; this module is the one place that moves them):
``awaiting_approval``/``requested`` when asked (:meth:`CommandQueue.requested`), ``pending``
on enqueue, ``isolated`` only with the ruleset the agent read back from the kernel,
``failed`` with the agent's (or the action's) reason, ``expired`` when nobody fetched the
command in time, ``none`` after a confirmed release; a rejected or cancelled request goes
back (:meth:`CommandQueue.withdrawn`).

Tables in control.db (:mod:`soclite.control.schema`, version 5; commands.db before).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from soclite.control.schema import open_control_db
from soclite.db import Database
from soclite.errors import NotFoundError
from soclite.models import Host, IsolationState, isoformat, new_id, parse_timestamp, utcnow
from soclite.store.base import Store

log = logging.getLogger(__name__)

CommandKind = Literal["isolate", "release", "scan"]
KINDS: frozenset[str] = frozenset({"isolate", "release", "scan"})
#: commands that move the host's isolation state (a scan does not: its state is its own, see scan_state)
ISOLATION_KINDS: frozenset[str] = frozenset({"isolate", "release"})

_ISOLATING = frozenset({IsolationState.AWAITING_APPROVAL, IsolationState.REQUESTED, IsolationState.PENDING})
_RELEASING = frozenset(
    {IsolationState.RELEASE_AWAITING_APPROVAL, IsolationState.RELEASE_REQUESTED, IsolationState.RELEASE_PENDING}
)


def under_way(state: IsolationState, kind: str) -> bool:
    """Whether a request of ``kind`` is already in flight in ``state`` (a second one is refused)."""
    return state in (_ISOLATING if kind == "isolate" else _RELEASING)

@dataclass
class Command:
    id: str
    host_id: str
    kind: str
    params: dict[str, Any]
    idempotency_key: str
    status: str  # pending | delivered | done | failed | expired
    created_at: datetime
    expires_at: datetime
    delivered_at: datetime | None = None
    delivered_to: str | None = None
    completed_at: datetime | None = None
    ok: bool | None = None
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_agent(self) -> dict[str, Any]:
        """What an agent receives."""
        return {"id": self.id, "kind": self.kind, "params": self.params}

    def to_dict(self) -> dict[str, Any]:
        def ts(value: datetime | None) -> str | None:
            return isoformat(value) if value else None

        return {
            "id": self.id, "host_id": self.host_id, "kind": self.kind, "params": self.params,
            "idempotency_key": self.idempotency_key, "status": self.status, "created_at": ts(self.created_at),
            "expires_at": ts(self.expires_at), "delivered_at": ts(self.delivered_at),
            "delivered_to": self.delivered_to, "completed_at": ts(self.completed_at), "ok": self.ok,
            "detail": self.detail,
        }  # fmt: skip


def _ts(value: str | None) -> datetime | None:
    return parse_timestamp(value) if value else None


def _row_to_command(row: Any) -> Command:
    return Command(
        id=row["id"], host_id=row["host_id"], kind=row["kind"], params=json.loads(row["params"]),
        idempotency_key=row["idempotency_key"], status=row["status"], created_at=parse_timestamp(row["created_at"]),
        expires_at=parse_timestamp(row["expires_at"]), delivered_at=_ts(row["delivered_at"]),
        delivered_to=row["delivered_to"], completed_at=_ts(row["completed_at"]),
        ok=None if row["ok"] is None else bool(row["ok"]), detail=row["detail"],
    )  # fmt: skip


class CommandQueue:
    def __init__(self, db: Database, store: Store | None = None, *, owns_db: bool = False) -> None:
        self.db = db
        self.store = store
        self._owns_db = owns_db

    @classmethod
    def open(cls, data_dir: Path, store: Store | None = None) -> CommandQueue:
        """A queue on its own connection to data_dir/control.db (tools and tests; the server shares one)."""
        return cls(open_control_db(data_dir), store, owns_db=True)

    def close(self) -> None:
        if self._owns_db:
            self.db.close()

    # --- host mirror ------------------------------------------------------------------
    def _host(self, host_id: str) -> Host | None:
        if self.store is None:
            return None
        try:
            return self.store.get_host(host_id)
        except NotFoundError:
            return self.store.find_host(host_id)

    def _set_isolation(
        self,
        host_id: str,
        state: IsolationState,
        detail: str | None,
        *,
        only_from: set[IsolationState] | None = None,
    ) -> None:
        host = self._host(host_id)
        if host is None or self.store is None:
            return

        def change(current: Host) -> dict[str, Any]:  # decided on the host as stored, atomically
            if only_from is not None and current.isolation not in only_from:
                return {}
            return {"isolation": state, "isolation_detail": detail, "isolation_updated_at": utcnow()}

        self.store.update_host(host.id, change)

    # --- the request's side of the state machine ----------------------------------------------
    def requested(self, host_id: str, kind: CommandKind, *, awaiting_approval: bool) -> None:
        """An isolation/release was asked for: ``[release_]awaiting_approval`` or ``[release_]requested``."""
        if kind == "isolate":
            state = IsolationState.AWAITING_APPROVAL if awaiting_approval else IsolationState.REQUESTED
            self._set_isolation(host_id, state, None)
        else:  # the ruleset stays shown until the agent confirms its removal
            state = IsolationState.RELEASE_AWAITING_APPROVAL if awaiting_approval else IsolationState.RELEASE_REQUESTED
            self._set_isolation(host_id, state, self._detail_of(host_id))

    def approved(self, host_id: str, kind: str) -> None:
        """An admin approved: waiting for the worker to send it (never over a state that moved on)."""
        if kind == "isolate":
            self._set_isolation(host_id, IsolationState.REQUESTED, None,
                                only_from={IsolationState.AWAITING_APPROVAL})  # fmt: skip
        else:
            self._set_isolation(host_id, IsolationState.RELEASE_REQUESTED, self._detail_of(host_id),
                                only_from={IsolationState.RELEASE_AWAITING_APPROVAL})  # fmt: skip

    def withdrawn(self, host_id: str, kind: str) -> None:
        """A request rejected or cancelled before it was sent: the host goes back to where it was."""
        if kind == "isolate":
            self._set_isolation(host_id, IsolationState.NONE, None,
                                only_from={IsolationState.AWAITING_APPROVAL, IsolationState.REQUESTED})  # fmt: skip
        else:
            self._set_isolation(
                host_id, IsolationState.ISOLATED, self._detail_of(host_id),
                only_from={IsolationState.RELEASE_AWAITING_APPROVAL, IsolationState.RELEASE_REQUESTED},
            )  # fmt: skip

    def action_failed(self, host_id: str, kind: str, reason: str) -> None:
        """The action could not even be sent (no agent, the firewall refused): show why on the host."""
        if kind == "isolate":
            self._set_isolation(host_id, IsolationState.FAILED, reason)
        else:
            previous = self._detail_of(host_id)
            self._set_isolation(host_id, IsolationState.RELEASE_FAILED, f"{reason}\n{previous or ''}".strip())

    def applied_by_network(self, host_id: str, kind: str, detail: str) -> None:
        """A network-level action (the firewall webhook) answered that it applied the change."""
        if kind == "isolate":
            self._set_isolation(host_id, IsolationState.ISOLATED, detail)
        else:
            self._set_isolation(host_id, IsolationState.NONE, None)

    # --- the queue -------------------------------------------------------------------------
    def enqueue(
        self, host_id: str, kind: CommandKind, params: dict[str, Any], ttl_seconds: int, idempotency_key: str
    ) -> Command:
        """Queue a command; the same idempotency key returns the command already queued."""
        if kind not in KINDS:
            raise ValueError(f"unknown command kind {kind!r}; known: {sorted(KINDS)}")
        host_id = host_id.lower()
        now = utcnow()
        command_id = new_id()
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT * FROM commands WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if row is not None:
                return _row_to_command(row)
            conn.execute(
                "INSERT INTO commands (id, host_id, kind, params, idempotency_key, status, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                (command_id, host_id, kind, json.dumps(params), idempotency_key, isoformat(now),
                 isoformat(now + timedelta(seconds=ttl_seconds))),
            )  # fmt: skip
        if kind == "isolate":
            self._set_isolation(host_id, IsolationState.PENDING, None)
        elif kind == "release":  # the ruleset stays shown until the agent confirms its removal
            self._set_isolation(host_id, IsolationState.RELEASE_PENDING, self._detail_of(host_id))
        return self.get(command_id)

    def by_key(self, idempotency_key: str) -> Command | None:
        """The command an outbox action queued (they share the idempotency key)."""
        row = self.db.reader().execute(
            "SELECT * FROM commands WHERE idempotency_key = ?", (idempotency_key,)
        ).fetchone()
        return _row_to_command(row) if row is not None else None

    def get(self, command_id: str) -> Command:
        row = self.db.reader().execute("SELECT * FROM commands WHERE id = ?", (command_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no command {command_id}")
        return _row_to_command(row)

    def list_for_host(self, host_id: str, limit: int = 50) -> list[Command]:
        rows = (
            self.db.reader()
            .execute(
                "SELECT * FROM commands WHERE host_id = ? ORDER BY created_at DESC LIMIT ?",
                (host_id.lower(), limit),
            )
            .fetchall()
        )
        return [_row_to_command(r) for r in rows]

    def pending_for(self, agent_id: str, host_id: str | None = None) -> list[Command]:
        """Commands for the agent's host not yet reported, oldest first; marks them delivered.

        ``host_id`` defaults to the host the store knows for ``agent_id``.
        """
        self.expire()
        if host_id is None:
            host = self.store.find_host(agent_id) if self.store is not None else None
            if host is None:
                return []
            host_id = host.id
        now = isoformat(utcnow())
        select = "SELECT * FROM commands WHERE host_id = ? AND status IN ('pending', 'delivered') ORDER BY created_at, id"
        # Thousands of agents poll: the common "nothing for you" answer is a read, never a write transaction.
        rows = self.db.reader().execute(select, (host_id.lower(),)).fetchall()
        if not any(r["status"] == "pending" for r in rows):
            return [_row_to_command(r) for r in rows]
        with self.db.write() as conn:
            rows = conn.execute(select, (host_id.lower(),)).fetchall()
            conn.execute(
                "UPDATE commands SET status = 'delivered', delivered_at = coalesce(delivered_at, ?), delivered_to = ? "
                "WHERE host_id = ? AND status = 'pending'",
                (now, agent_id, host_id.lower()),
            )
        return [_row_to_command(r) for r in rows]

    def report(self, command_id: str, ok: bool, detail: str) -> Command:
        """Record an agent's result and mirror it on the Host (isolated/failed/none)."""
        command = self.get(command_id)
        if command.status in ("done", "failed"):
            return command  # a repeated report (the agent retried after a lost answer)
        with self.db.write() as conn:
            conn.execute(
                "UPDATE commands SET status = ?, ok = ?, detail = ?, completed_at = ? WHERE id = ?",
                ("done" if ok else "failed", int(ok), detail, isoformat(utcnow()), command_id),
            )
        if command.kind == "scan":
            pass  # the result (a JSON summary) is the command's detail; the host's isolation is untouched
        elif command.kind == "isolate":
            self._set_isolation(
                command.host_id, IsolationState.ISOLATED if ok else IsolationState.FAILED, detail
            )
        elif ok:
            self._set_isolation(command.host_id, IsolationState.NONE, None)
        else:
            # a failed release leaves the host isolated as far as we know; keep the error visible
            host = self._host(command.host_id)
            previous = host.isolation_detail if host else None
            self._set_isolation(
                command.host_id, IsolationState.RELEASE_FAILED, f"release failed: {detail}\n{previous or ''}".strip()
            )
        return self.get(command_id)

    def expire(self, now: datetime | None = None) -> list[Command]:
        """Expire commands nobody fetched in time; the Host stops looking 'pending'."""
        stamp = isoformat(now or utcnow())
        due = "SELECT 1 FROM commands WHERE status = 'pending' AND expires_at <= ? LIMIT 1"
        if self.db.reader().execute(due, (stamp,)).fetchone() is None:
            return []
        with self.db.write() as conn:
            rows = conn.execute(
                "SELECT * FROM commands WHERE status = 'pending' AND expires_at <= ?", (stamp,)
            ).fetchall()
            conn.execute(
                "UPDATE commands SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?",
                (stamp,),
            )
        expired = [_row_to_command(r) for r in rows]
        for command in expired:
            log.warning(
                "command %s (%s for %s) expired undelivered", command.id, command.kind, command.host_id
            )
            if command.kind == "scan":
                continue
            if command.kind == "isolate":
                self._set_isolation(
                    command.host_id, IsolationState.EXPIRED,
                    f"isolation command expired: the agent did not fetch it before {isoformat(command.expires_at)}",
                    only_from={IsolationState.PENDING, IsolationState.REQUESTED},
                )  # fmt: skip
            else:  # the host is still isolated as far as anyone knows: say so, with the ruleset
                previous = self._detail_of(command.host_id)
                self._set_isolation(
                    command.host_id, IsolationState.RELEASE_EXPIRED,
                    f"release command expired: the agent did not fetch it before {isoformat(command.expires_at)}"
                    f"\n{previous or ''}".strip(),
                    only_from={IsolationState.RELEASE_PENDING},
                )  # fmt: skip
        return expired

    def expire_stalled_scans(self, timeout: timedelta, now: datetime | None = None) -> list[Command]:
        """Scans an agent fetched but never reported on within ``timeout`` become ``expired`` with the reason
        (the agent died for good mid-scan): a scan must not look "running" forever. A late result still wins
        (:meth:`report` records it over ``expired``)."""
        at = now or utcnow()
        cutoff = isoformat(at - timeout)
        due = "SELECT 1 FROM commands WHERE kind = 'scan' AND status = 'delivered' AND delivered_at <= ? LIMIT 1"
        if self.db.reader().execute(due, (cutoff,)).fetchone() is None:
            return []
        minutes = timeout.total_seconds() / 60
        with self.db.write() as conn:
            rows = conn.execute(
                "SELECT * FROM commands WHERE kind = 'scan' AND status = 'delivered' AND delivered_at <= ?", (cutoff,)
            ).fetchall()
            for row in rows:
                reason = (f"no result from the agent {minutes:g} min after it fetched the scan at {row['delivered_at']}:"
                          " the agent or the host stopped before the scan finished")  # fmt: skip
                conn.execute(
                    "UPDATE commands SET status = 'expired', detail = ?, completed_at = ? WHERE id = ? "
                    "AND status = 'delivered'", (reason, isoformat(at), row["id"]),
                )  # fmt: skip
        expired = [self.get(r["id"]) for r in rows]
        for command in expired:
            log.warning("scan %s on %s expired: %s", command.id, command.host_id, command.detail)
        return expired

    def _detail_of(self, host_id: str) -> str | None:
        host = self._host(host_id)
        return host.isolation_detail if host else None


def scan_state(command: Command | None) -> dict[str, Any]:
    """Where a scan stands, for the response queue: queued → running (the agent fetched it) → clean /
    infected (with the number of findings) / not_available (no ClamAV on the host) / error / expired."""
    if command is None:
        return {"state": "not_sent"}
    if command.status == "pending":
        return {"state": "queued"}
    if command.status == "delivered":
        return {"state": "running", "since": isoformat(command.delivered_at) if command.delivered_at else None}
    if command.status == "expired":  # never fetched (no detail), or fetched and never reported on
        reason = command.detail or (f"the agent did not fetch the scan before {isoformat(command.expires_at)}")
        return {"state": "expired", "error": reason}
    try:
        summary = json.loads(command.detail or "")
    except ValueError:
        summary = None
    if not isinstance(summary, dict):
        return {"state": "error", "error": command.detail}
    return {"state": str(summary.get("scan") or "error"), "findings": int(summary.get("findings") or 0),
            "engine": summary.get("engine"), "found": summary.get("found") or [], "error": summary.get("error"),
            "completed_at": isoformat(command.completed_at) if command.completed_at else None}  # fmt: skip
