"""Server side of enrollment: one-time enrollment tokens and the register of enrolled agents.

Tables in control.db (:mod:`soclite.control.schema`, version 6; agents.db before).
Enrollment tokens are ``se_<id>_<secret>``; only SHA-256 of the secret is kept (256
random bits need no slow hash). A token is bound to a unit, has a number of uses and
an expiry; using it is one atomic decrement, so two agents racing for the last use
cannot both win. The per-agent key it is exchanged for is an ordinary
:mod:`soclite.control.identity` token of role ``agent``: revoking it cuts the agent off.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from soclite.control.schema import open_control_db
from soclite.db import Database
from soclite.errors import AuthError
from soclite.models import isoformat, new_id, parse_timestamp, utcnow


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EnrollGrant:
    token_id: str
    unit: str | None


@dataclass(frozen=True)
class EnrollTokenInfo:
    """What may be shown of an enrollment token: never its secret."""

    id: str
    unit: str | None
    uses_left: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active" if self.uses_left > 0 else "used"


@dataclass(frozen=True)
class AgentInfo:
    """One enrolled agent as the register knows it (its host, version and key state are elsewhere)."""

    id: str
    hostname: str
    unit: str | None
    enroll_token_id: str
    enrolled_at: datetime
    last_heartbeat: datetime | None


def _agent(r: Any) -> AgentInfo:
    return AgentInfo(id=r["id"], hostname=r["hostname"], unit=r["unit"], enroll_token_id=r["enroll_token_id"],
                     enrolled_at=parse_timestamp(r["enrolled_at"]),
                     last_heartbeat=parse_timestamp(r["last_heartbeat"]) if r["last_heartbeat"] else None)


def _in(unit: str | None, units: frozenset[str] | None) -> bool:
    return units is None or (unit is not None and unit in units)


class AgentRegistry:
    def __init__(self, db: Database, *, owns_db: bool = False) -> None:
        self.db = db
        self._owns_db = owns_db

    @classmethod
    def open(cls, data_dir: Path) -> AgentRegistry:
        """A register on its own connection to data_dir/control.db (the CLI; the server shares one)."""
        return cls(open_control_db(data_dir), owns_db=True)

    def close(self) -> None:
        if self._owns_db:
            self.db.close()

    def create_enroll_token(self, *, unit: str | None, uses: int = 1, expires_hours: float = 24.0) -> str:
        if uses < 1:
            raise ValueError("uses must be at least 1")
        token_id = new_id()[:16]
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO enroll_tokens (id, secret_hash, unit, uses_left, expires_at, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    token_id,
                    _hash(secret),
                    unit,
                    uses,
                    isoformat(now + timedelta(hours=expires_hours)),
                    isoformat(now),
                ),
            )
        return f"se_{token_id}_{secret}"

    def consume(self, token: str, now: datetime | None = None) -> EnrollGrant:
        """Use one use of an enrollment token; AuthError if unknown, revoked, expired or used up."""
        try:
            prefix, token_id, secret = token.strip().split("_", 2)
        except ValueError:
            raise AuthError("malformed enrollment token") from None
        if prefix != "se":
            raise AuthError("malformed enrollment token")
        now = now or utcnow()
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT secret_hash, unit, uses_left, expires_at, revoked_at FROM enroll_tokens WHERE id = ?",
                (token_id,),
            ).fetchone()
            if row is None or row["revoked_at"] or not hmac.compare_digest(row["secret_hash"], _hash(secret)):
                raise AuthError("unknown or revoked enrollment token")
            if parse_timestamp(row["expires_at"]) <= now:
                raise AuthError("enrollment token expired")
            if row["uses_left"] < 1:
                raise AuthError("enrollment token already used")
            conn.execute("UPDATE enroll_tokens SET uses_left = uses_left - 1 WHERE id = ?", (token_id,))
        return EnrollGrant(token_id=token_id, unit=row["unit"])

    def register(self, agent_id: str, hostname: str, unit: str | None, token_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO agents (id, hostname, unit, enroll_token_id, enrolled_at) VALUES (?, ?, ?, ?, ?)",
                (agent_id, hostname, unit, token_id, isoformat(utcnow())),
            )

    def heartbeat(self, agent_id: str, *, dropped: int, spool_batches: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE agents SET last_heartbeat = ?, dropped_total = dropped_total + ?, spool_batches = ? WHERE id = ?",
                (isoformat(utcnow()), max(dropped, 0), max(spool_batches, 0), agent_id),
            )

    def last_heartbeats(self, agent_ids: list[str]) -> dict[str, str | None]:
        """Agent id → its last heartbeat (ISO UTC, None before the first), for the agents registered."""
        out: dict[str, str | None] = {}
        reader = self.db.reader()
        for start in range(0, len(agent_ids), 500):  # SQLite's bound-parameter limit
            chunk = agent_ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in reader.execute(f"SELECT id, last_heartbeat FROM agents WHERE id IN ({marks})", chunk):
                out[row[0]] = row[1]
        return out

    def hostname(self, agent_id: str) -> str | None:
        """The host name an agent enrolled as (its events are that host's), None for an unknown agent."""
        row = self.db.reader().execute("SELECT hostname FROM agents WHERE id = ?", (agent_id,)).fetchone()
        return str(row[0]) if row else None

    def list_enroll_tokens(self, units: frozenset[str] | None = None) -> list[EnrollTokenInfo]:
        """Enrollment tokens bound to ``units`` (None: all), newest first."""
        rows = self.db.reader().execute("SELECT * FROM enroll_tokens ORDER BY created_at DESC, id").fetchall()
        tokens = [
            EnrollTokenInfo(id=r["id"], unit=r["unit"], uses_left=int(r["uses_left"]),
                            created_at=parse_timestamp(r["created_at"]), expires_at=parse_timestamp(r["expires_at"]),
                            revoked_at=parse_timestamp(r["revoked_at"]) if r["revoked_at"] else None)
            for r in rows
        ]  # fmt: skip
        return [t for t in tokens if _in(t.unit, units)]

    def get_enroll_token(self, token_id: str) -> EnrollTokenInfo | None:
        return next((t for t in self.list_enroll_tokens() if t.id == token_id), None)

    def revoke_enroll_token(self, token_id: str) -> bool:
        """Revoke an enrollment token; False when unknown or revoked already."""
        with self.db.write() as conn:
            changed = conn.execute(
                "UPDATE enroll_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (isoformat(utcnow()), token_id),
            ).rowcount
        return changed > 0

    def list_agents(self, units: frozenset[str] | None = None) -> list[AgentInfo]:
        """Enrolled agents of ``units`` (None: all), by host name."""
        rows = self.db.reader().execute("SELECT * FROM agents ORDER BY hostname, enrolled_at").fetchall()
        return [a for a in map(_agent, rows) if _in(a.unit, units)]

    def get_agent(self, agent_id: str) -> AgentInfo | None:
        row = self.db.reader().execute("SELECT * FROM agents WHERE id = ?", (agent_id,)).fetchone()
        return _agent(row) if row is not None else None

    def dropped_total(self, agent_id: str) -> int:
        row = (
            self.db.reader().execute("SELECT dropped_total FROM agents WHERE id = ?", (agent_id,)).fetchone()
        )
        return int(row[0]) if row else 0
