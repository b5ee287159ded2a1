"""Server-side web sessions and the login throttle, both in control.db.

A signed cookie alone cannot be taken back: logging out only deleted it from
the browser, and a copy kept working for ``auth.session_minutes``. Each login
now creates a row here, the cookie carries its id, and a request is let in only
while that row is neither revoked nor expired. Logout revokes the row; "log
out everywhere", a password change, a role change and disabling the account
revoke every row of the user (and bump ``users.session_version``, which the
cookie also carries, so a cookie of a session made before this table existed
dies as well).

The login throttle counts attempts per (user name, client address) over the
last minute in ``login_attempts``, so a restart or a second API process does
not hand an attacker a fresh budget. Consecutive failures per account are
counted on the user row; at ``auth.lockout_failures`` the account is locked
until an admin unlocks it (``soclite user unlock`` or the API).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from soclite.db import Database
from soclite.models import isoformat, parse_timestamp, utcnow


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    ip: str | None


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, user_id: str, *, minutes: int, ip: str | None = None) -> str:
        session_id = secrets.token_urlsafe(24)
        now = utcnow()
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO sessions (id, user_id, created_at, expires_at, ip) VALUES (?, ?, ?, ?, ?)",
                (session_id, user_id, isoformat(now), isoformat(now + timedelta(minutes=minutes)), ip),
            )
            # Keep the table small: rows expired a day ago serve no check.
            conn.execute("DELETE FROM sessions WHERE expires_at < ?", (isoformat(now - timedelta(days=1)),))
        return session_id

    def active(self, session_id: str, user_id: str) -> bool:
        row = self.db.reader().execute(
            "SELECT expires_at, revoked_at FROM sessions WHERE id = ? AND user_id = ?", (session_id, user_id)
        ).fetchone()
        if row is None or row["revoked_at"] is not None:
            return False
        return parse_timestamp(row["expires_at"]) > utcnow()

    def revoke(self, session_id: str, reason: str) -> bool:
        with self.db.write() as conn:
            changed = conn.execute(
                "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
                (isoformat(utcnow()), reason, session_id),
            ).rowcount
        return changed > 0

    def of_user(self, user_id: str) -> list[Session]:
        rows = self.db.reader().execute(
            "SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at",
            (user_id, isoformat(utcnow())),
        ).fetchall()
        return [
            Session(id=r["id"], user_id=r["user_id"], created_at=parse_timestamp(r["created_at"]),
                    expires_at=parse_timestamp(r["expires_at"]), revoked_at=None, ip=r["ip"])
            for r in rows
        ]


def revoke_user_sessions(conn: sqlite3.Connection, user_id: str, reason: str) -> int:
    """Revoke every open session of a user inside the caller's write transaction; the count revoked."""
    return int(conn.execute(
        "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL",
        (isoformat(utcnow()), reason, user_id),
    ).rowcount)


class LoginThrottle:
    """At most ``per_minute`` login attempts per (user name, client address) in any 60 seconds, persisted."""

    WINDOW_SECONDS = 60.0

    def __init__(self, db: Database, per_minute: int) -> None:
        self.db = db
        self.per_minute = per_minute

    def allow(self, username: str, ip: str) -> bool:
        """Record an attempt; False when the budget of this minute is spent (the refused try is not counted)."""
        key = username.strip().lower()[:128]
        now = time.time()  # wall clock: the window must survive a restart, which a monotonic clock does not
        with self.db.write() as conn:
            conn.execute("DELETE FROM login_attempts WHERE at < ?", (now - self.WINDOW_SECONDS,))
            used = int(conn.execute(
                "SELECT count(*) FROM login_attempts WHERE username = ? AND ip = ?", (key, ip)
            ).fetchone()[0])
            if used >= self.per_minute:
                return False
            conn.execute("INSERT INTO login_attempts (username, ip, at) VALUES (?, ?, ?)", (key, ip, now))
        return True

    def reset(self, username: str, ip: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM login_attempts WHERE username = ? AND ip = ?", (username.strip().lower()[:128], ip))
