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
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from soclite.control.passwords import DEFAULT_MIN_SCORE, check_password
from soclite.control.sessions import revoke_user_sessions
from soclite.db import Database
from soclite.errors import AuthError
from soclite.models import isoformat, new_id, parse_timestamp, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    VIEWER = "viewer"
    AUDITOR = "auditor"
    AGENT = "agent"


class AccountLocked(AuthError):
    """The password was right but the account is locked after repeated failures."""


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
    #: the server-side session id (sessions only): what logout revokes
    session_id: str | None = None


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a token: never its secret (only its hash is stored anyway)."""

    id: str
    name: str
    role: Role
    unit: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str | None
    #: when the token last authenticated a request (to the minute: see ``LAST_USE_GRANULARITY``)
    last_used_at: datetime | None = None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "role": self.role.value, "unit": self.unit,
            "created_at": isoformat(self.created_at), "created_by": self.created_by,
            "expires_at": isoformat(self.expires_at) if self.expires_at else None,
            "revoked_at": isoformat(self.revoked_at) if self.revoked_at else None,
            "last_used_at": isoformat(self.last_used_at) if self.last_used_at else None,
            "state": self.state(now),
        }


def _ts(value: str | None) -> datetime | None:
    return parse_timestamp(value) if value else None


def _token(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row["id"], name=row["name"], role=Role(row["role"]), unit=row["unit"],
        created_at=parse_timestamp(row["created_at"]), expires_at=_ts(row["expires_at"]),
        revoked_at=_ts(row["revoked_at"]), created_by=row["created_by"], last_used_at=_ts(row["last_used_at"]),
    )


#: A token's last use is written at most this often: an agent posting a batch a second must not turn
#: every request into a write on control.db.
LAST_USE_GRANULARITY = timedelta(minutes=1)


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_token(self, *, role: Role | str, unit: str | None = None, name: str | None = None,
                     days: int | None = None, created_by: str | None = None) -> str:
        """Create a bearer token and return it; it is shown once and never stored in clear.

        ``days``: its lifetime (None: no expiry — the caller applies ``auth.token_days`` to
        people's tokens; see :func:`token_lifetime`).
        """
        role = Role(role)
        token_id = new_id()[:16]
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        expires = isoformat(now + timedelta(days=days)) if days is not None else None
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO tokens (id, name, role, unit, secret_hash, created_at, expires_at, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (token_id, name or f"{role.value}-{token_id[:6]}", role.value, unit, _hash_secret(secret),
                 isoformat(now), expires, created_by),
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
            "SELECT id, name, role, unit, secret_hash, revoked_at, expires_at, last_used_at FROM tokens WHERE id = ?",
            (token_id,),
        ).fetchone()
        if row is None or row["revoked_at"] is not None:
            raise AuthError("unknown or revoked token")
        if not hmac.compare_digest(row["secret_hash"], _hash_secret(secret)):
            raise AuthError("unknown or revoked token")
        if row["expires_at"] is not None and parse_timestamp(row["expires_at"]) <= utcnow():
            raise AuthError("token expired: ask an admin for a new one")
        self._mark_used(row["id"], row["last_used_at"])
        return Principal(id=row["id"], name=row["name"], role=Role(row["role"]), unit=row["unit"], kind="token")

    def _mark_used(self, token_id: str, last: str | None) -> None:
        now = utcnow()
        if last is not None and now - parse_timestamp(last) < LAST_USE_GRANULARITY:
            return
        with self.db.write() as conn:
            conn.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (isoformat(now), token_id))

    def get_token(self, token_id: str) -> TokenInfo | None:
        row = self.db.reader().execute("SELECT * FROM tokens WHERE id = ?", (token_id,)).fetchone()
        return _token(row) if row is not None else None

    def list_tokens(self, units: frozenset[str] | None = None, *, include_inactive: bool = False) -> list[TokenInfo]:
        """Tokens bound to ``units`` (None: all, province-wide ones included), newest first."""
        rows = self.db.reader().execute("SELECT * FROM tokens ORDER BY created_at DESC, id").fetchall()
        now = utcnow()
        tokens = [_token(r) for r in rows]
        if units is not None:
            tokens = [t for t in tokens if t.unit is not None and t.unit in units]
        if not include_inactive:
            tokens = [t for t in tokens if t.state(now) == "active"]
        return tokens

    def revoke_token(self, token_id: str, at: datetime | None = None) -> bool:
        """Revoke a token; False when there is no such token or it was revoked already."""
        with self.db.write() as conn:
            changed = conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (isoformat(at or utcnow()), token_id),
            ).rowcount
        return changed > 0


def token_lifetime(role: Role | str, days: int | None, *, default_days: int, max_days: int) -> int | None:
    """The lifetime in days a new token gets: a person's token always expires (``days`` or the
    default, at most ``max_days``); an agent's token lives until revoked unless ``days`` is given,
    since an unattended agent cannot fetch a new one. AuthError when ``days`` is out of range."""
    if days is not None and not 1 <= days <= max_days:
        raise AuthError(f"token lifetime must be 1-{max_days} days (auth.token_max_days), not {days}")
    if Role(role) is Role.AGENT:
        return days
    return days if days is not None else default_days


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
    #: set for a new account, after an admin's reset and for the first admin: the UI lets the user do
    #: nothing else until they chose their own password (their one-time password was seen by someone else)
    must_change_password: bool = False
    failed_logins: int = 0
    #: set when the account was locked after repeated failed logins (None: not locked)
    locked_at: str | None = None

    def principal(self, csrf: str | None = None, session_id: str | None = None) -> Principal:
        return Principal(
            id=self.id, name=self.username, role=self.role, unit=self.unit, kind="session", csrf=csrf,
            session_id=session_id,
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
        must_change_password=bool(row["must_change_password"]),
        failed_logins=int(row["failed_logins"]),
        locked_at=row["locked_at"],
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
            display_name: str | None = None, must_change_password: bool = False) -> User:
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
                "INSERT INTO users (id, username, display_name, role, unit, password_hash, must_change_password,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (user_id, username, display_name, role.value, unit, _hasher.hash(password), int(must_change_password),
                 isoformat(utcnow())),
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

    def end_sessions(self, username: str, reason: str = "logout-everywhere") -> int:
        """Log a user out everywhere: every session row revoked, every older cookie dead; the count revoked."""
        user = self._require(username)
        with self.db.write() as conn:
            conn.execute("UPDATE users SET session_version = session_version + 1 WHERE id = ?", (user.id,))
            return revoke_user_sessions(conn, user.id, reason)

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
            revoke_user_sessions(conn, user.id, "role-change")
        return self._require(username)

    def set_disabled(self, username: str, disabled: bool = True) -> User:
        user = self._require(username)
        with self.db.write() as conn:
            conn.execute(
                "UPDATE users SET disabled = ?, session_version = session_version + 1 WHERE id = ?",
                (1 if disabled else 0, user.id),
            )
            revoke_user_sessions(conn, user.id, "disabled")
        return self._require(username)

    def set_password(self, username: str, password: str, *, must_change: bool = False) -> User:
        """Set the password (its sessions end); ``must_change`` for a one-time password an admin handed out."""
        user = self._require(username)
        self._check_password(password, user.username, user.display_name, user.unit)
        with self.db.write() as conn:
            conn.execute(
                "UPDATE users SET password_hash = ?, must_change_password = ?, session_version = session_version + 1"
                " WHERE id = ?",
                (_hasher.hash(password), int(must_change), user.id),
            )
            revoke_user_sessions(conn, user.id, "password-change")
        return self._require(username)

    def change_own_password(self, user_id: str, current: str, new: str) -> User:
        """The user's own change: the current password first (a session left open is not enough)."""
        user = self.get(user_id)
        if user is None or user.disabled:
            raise AuthError("no such user")
        self.verify(user.username, current)
        if hmac.compare_digest(current, new):
            raise AuthError("the new password must differ from the current one")
        return self.set_password(user.username, new, must_change=False)

    def verify(self, username: str, password: str, *, lockout_failures: int = 0) -> User:
        """The user if the password is right and the account enabled and not locked; AuthError otherwise.

        A wrong password counts against the account; at ``lockout_failures`` consecutive ones
        (0: never) it is locked until :meth:`unlock`. A locked account is refused even with the
        right password — that is the point — and :class:`AccountLocked` says so only after the
        password was right, so the lock does not tell a guesser which names exist.
        """
        row = self.db.reader().execute("SELECT * FROM users WHERE username = ?", (username.strip(),)).fetchone()
        stored = row["password_hash"] if row is not None else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            if row is not None:
                self._count_failure(row["id"], lockout_failures)
            raise AuthError("wrong user name or password") from None
        if row is None:
            raise AuthError("wrong user name or password")
        user = _user(row)
        if user.disabled:
            raise AuthError("account disabled")
        if user.locked_at is not None:
            raise AccountLocked(f"account {user.username!r} is locked after repeated failed logins; an admin must unlock it")
        with self.db.write() as conn:
            if _hasher.check_needs_rehash(stored):
                conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (_hasher.hash(password), user.id))
            conn.execute("UPDATE users SET last_login_at = ?, failed_logins = 0 WHERE id = ?",
                         (isoformat(utcnow()), user.id))
        return user

    def _count_failure(self, user_id: str, lockout_failures: int) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ?", (user_id,))
            if lockout_failures > 0:
                conn.execute(
                    "UPDATE users SET locked_at = ? WHERE id = ? AND locked_at IS NULL AND failed_logins >= ?",
                    (isoformat(utcnow()), user_id, lockout_failures),
                )

    def unlock(self, username: str) -> User:
        user = self._require(username)
        with self.db.write() as conn:
            conn.execute("UPDATE users SET locked_at = NULL, failed_logins = 0 WHERE id = ?", (user.id,))
        return self._require(username)


FIRST_ADMIN = "admin"


def ensure_first_admin(users: UserStore) -> str | None:
    """Create the first admin when no user exists; return its one-time password (print it once)."""
    if users.count() > 0:
        return None
    password = generate_password()
    # printed once on the server's console: whoever saw it must not keep using it
    users.add(FIRST_ADMIN, password, role=Role.ADMIN, display_name="Administrator", must_change_password=True)
    return password
