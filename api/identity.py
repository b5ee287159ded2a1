"""Identity: API tokens (and, with the workspace, users and sessions) in the control database.

Tokens are ``sl_<id>_<secret>``; only SHA-256 of the secret is stored (the
secret is 256 random bits, so a fast hash is enough; passwords use argon2).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from soclite.db import Database
from soclite.errors import AuthError
from soclite.models import isoformat, new_id, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    VIEWER = "viewer"
    AUDITOR = "auditor"
    AGENT = "agent"


MIGRATIONS = [
    """
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        unit TEXT,
        secret_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        last_used_at TEXT
    );
    """,
]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token, a user session or an agent key."""

    id: str
    name: str
    role: Role
    #: the unit the principal is bound to; None = the whole province
    unit: str | None
    kind: str = "token"


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_token(self, *, role: Role | str, unit: str | None = None, name: str | None = None) -> str:
        """Create a bearer token and return it; it is shown once and never stored in clear."""
        role = Role(role)
        token_id = new_id()[:16]
        secret = secrets.token_urlsafe(32)
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO tokens (id, name, role, unit, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (token_id, name or f"{role.value}-{token_id[:6]}", role.value, unit, _hash_secret(secret), isoformat(utcnow())),
            )
        return f"sl_{token_id}_{secret}"

    def authenticate_token(self, token: str) -> Principal:
        try:
            prefix, token_id, secret = token.split("_", 2)
        except ValueError:
            raise AuthError("malformed token") from None
        if prefix != "sl":
            raise AuthError("malformed token")
        row = self.db.reader().execute(
            "SELECT id, name, role, unit, secret_hash, revoked_at FROM tokens WHERE id = ?", (token_id,)
        ).fetchone()
        if row is None or row["revoked_at"] is not None:
            raise AuthError("unknown or revoked token")
        if not hmac.compare_digest(row["secret_hash"], _hash_secret(secret)):
            raise AuthError("unknown or revoked token")
        return Principal(id=row["id"], name=row["name"], role=Role(row["role"]), unit=row["unit"], kind="token")

    def revoke_token(self, token_id: str, at: datetime | None = None) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (isoformat(at or utcnow()), token_id))
