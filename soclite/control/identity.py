"""Identity: API tokens, local users and login throttling in the control database.

Tokens are ``sl_<id>_<secret>``; only SHA-256 of the secret is stored (the
secret is 256 random bits, so a fast hash is enough). Passwords are chosen by
people, so they get argon2id (argon2-cffi), which is slow on purpose.
Sessions themselves live in a signed cookie (:mod:`api.sessions`); a user's
``session_version`` is bumped on password reset / disable so old cookies die.

:class:`Role` and :class:`Principal` are domain types: who acts, with which rights, in which unit.
The tables are created by :mod:`soclite.control.schema` (versions 1-2).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from soclite.control.passwords import DEFAULT_MIN_SCORE, check_password
from soclite.db import Database
from soclite.errors import AuthError
from soclite.models import isoformat, new_id, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    VIEWER = "viewer"
    AUDITOR = "auditor"
    AGENT = "agent"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token, a user session or an agent key."""

    id: str
    name: str
    role: Role
    #: the unit the principal is bound to; None = the whole province
    unit: str | None
    #: "token", "session" (a logged-in user) or "agent"
    kind: str = "token"
    #: the session's CSRF token (sessions only)
    csrf: str | None = None


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


# --- users -------------------------------------------------------------------

_hasher = PasswordHasher()
#: Verified against when the user does not exist, so timing does not reveal user names.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class User:
    id: str
    username: str
    role: Role
    unit: str | None
    disabled: bool
    session_version: int
    display_name: str | None = None
    last_login_at: str | None = None

    def principal(self, csrf: str | None = None) -> Principal:
        return Principal(
            id=self.id, name=self.username, role=self.role, unit=self.unit, kind="session", csrf=csrf
        )


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        role=Role(row["role"]),
        unit=row["unit"],
        disabled=bool(row["disabled"]),
        session_version=int(row["session_version"]),
        display_name=row["display_name"],
        last_login_at=row["last_login_at"],
    )


def generate_password() -> str:
    return secrets.token_urlsafe(15)


class UserStore:
    """Users of the web UI. Agents never get a user: they have agent tokens.

    Every password set here passes :func:`soclite.control.passwords.check_password`
    at ``min_password_score`` (settings: ``auth.min_password_score``).
    """

    def __init__(self, db: Database, *, min_password_score: int = DEFAULT_MIN_SCORE) -> None:
        self.db = db
        self.min_password_score = min_password_score

    def _check_password(self, password: str, *inputs: str | None) -> None:
        check_password(password, min_score=self.min_password_score, user_inputs=[i for i in inputs if i])

    def add(self, username: str, password: str, *, role: Role | str, unit: str | None = None,
            display_name: str | None = None) -> User:
        role = Role(role)
        if role is Role.AGENT:
            raise AuthError("agents use agent tokens, not user accounts")
        username = username.strip()
        if not username or len(username) > 64 or any(ch.isspace() for ch in username):
            raise AuthError("username must be 1-64 characters without spaces")
        self._check_password(password, username, display_name, unit)
        if self.get_by_name(username) is not None:
            raise AuthError(f"user {username!r} already exists")
        user_id = new_id()[:16]
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO users (id, username, display_name, role, unit, password_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, username, display_name, role.value, unit, _hasher.hash(password), isoformat(utcnow())),
            )
        user = self.get(user_id)
        assert user is not None
        return user

    def get(self, user_id: str) -> User | None:
        row = self.db.reader().execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        return _user(row) if row is not None else None

    def get_by_name(self, username: str) -> User | None:
        row = self.db.reader().execute("SELECT * FROM users WHERE username = ?", (username.strip(),)).fetchone()
        return _user(row) if row is not None else None

    def all(self) -> list[User]:
        rows = self.db.reader().execute("SELECT * FROM users ORDER BY username").fetchall()
        return [_user(r) for r in rows]

    def count(self) -> int:
        return int(self.db.reader().execute("SELECT count(*) FROM users").fetchone()[0])

    def _require(self, username: str) -> User:
        user = self.get_by_name(username)
        if user is None:
            raise AuthError(f"no user {username!r}")
        return user

    def set_role(self, username: str, role: Role | str, unit: str | None = None, *, keep_unit: bool = True) -> User:
        user = self._require(username)
        role = Role(role)
        if role is Role.AGENT:
            raise AuthError("agents use agent tokens, not user accounts")
        new_unit = user.unit if keep_unit and unit is None else unit
        with self.db.write() as conn:
            conn.execute(
                "UPDATE users SET role = ?, unit = ?, session_version = session_version + 1 WHERE id = ?",
                (role.value, new_unit, user.id),
            )
        return self._require(username)

    def set_disabled(self, username: str, disabled: bool = True) -> User:
        user = self._require(username)
        with self.db.write() as conn:
            conn.execute(
                "UPDATE users SET disabled = ?, session_version = session_version + 1 WHERE id = ?",
                (1 if disabled else 0, user.id),
            )
        return self._require(username)

    def set_password(self, username: str, password: str) -> User:
        user = self._require(username)
        self._check_password(password, user.username, user.display_name, user.unit)
        with self.db.write() as conn:
            conn.execute(
                "UPDATE users SET password_hash = ?, session_version = session_version + 1 WHERE id = ?",
                (_hasher.hash(password), user.id),
            )
        return self._require(username)

    def verify(self, username: str, password: str) -> User:
        """The user if the password is right and the account enabled; AuthError otherwise (one message)."""
        row = self.db.reader().execute("SELECT * FROM users WHERE username = ?", (username.strip(),)).fetchone()
        stored = row["password_hash"] if row is not None else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            raise AuthError("wrong user name or password") from None
        if row is None:
            raise AuthError("wrong user name or password")
        user = _user(row)
        if user.disabled:
            raise AuthError("account disabled")
        with self.db.write() as conn:
            if _hasher.check_needs_rehash(stored):
                conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (_hasher.hash(password), user.id))
            conn.execute("UPDATE users SET last_login_at = ? WHERE id = ?", (isoformat(utcnow()), user.id))
        return user


class LoginThrottle:
    """At most N login attempts per minute per (user name, client IP), in memory.

    In memory is enough: one server process, and a restart only gives an
    attacker one more minute's worth of guesses.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._attempts: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, username: str, ip: str) -> bool:
        """Record an attempt; False when the budget of this minute is spent."""
        key = (username.strip().lower(), ip)
        now = time.monotonic()
        with self._lock:
            window = self._attempts.setdefault(key, deque())
            while window and now - window[0] > 60.0:
                window.popleft()
            if len(window) >= self.per_minute:
                return False
            window.append(now)
            if len(self._attempts) > 10000:  # bound memory under a spray
                for stale in [k for k, v in self._attempts.items() if not v or now - v[-1] > 60.0]:
                    del self._attempts[stale]
            return True

    def reset(self, username: str, ip: str) -> None:
        with self._lock:
            self._attempts.pop((username.strip().lower(), ip), None)


FIRST_ADMIN = "admin"


def ensure_first_admin(users: UserStore) -> str | None:
    """Create the first admin when no user exists; return its one-time password (print it once)."""
    if users.count() > 0:
        return None
    password = generate_password()
    users.add(FIRST_ADMIN, password, role=Role.ADMIN, display_name="Administrator")
    return password
