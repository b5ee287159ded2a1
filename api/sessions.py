"""Web sessions: a signed cookie (itsdangerous), bound to the user's session version.

The cookie carries ``{"uid", "ver", "sid", "csrf"}`` signed with ``auth.secret_key``
and a timestamp; it is refused after ``auth.session_minutes``, once the
user's ``session_version`` changed (password reset, disable, role change, "log
out everywhere") or once its server-side session row ``sid`` was revoked
(logout): see :mod:`soclite.control.sessions`. A signature alone cannot be
taken back, so a copy of a logged-out cookie must fail on the row.
It is HttpOnly, SameSite=Lax and Secure unless ``auth.secure_cookies`` is off.
CSRF protection is session-bound: every form carries the session's ``csrf``
value and every unsafe request made with the cookie must echo it (form field
``csrf_token`` or header ``X-CSRF-Token``). The login form, which has no
session yet, uses a double-submit cookie instead.

A form posted after the session expired is not lost: its fields are kept in a
short-lived signed "draft" cookie and pre-filled after the user logs in again.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from soclite.config import Settings
from soclite.control.identity import Principal, UserStore
from soclite.control.sessions import SessionStore
from soclite.db import Database

SESSION_COOKIE = "soclite_session"
LOGIN_CSRF_COOKIE = "soclite_login_csrf"
DRAFT_COOKIE = "soclite_draft"
LANG_COOKIE = "soclite_lang"
DRAFT_SECONDS = 1800


class SessionCodec:
    def __init__(self, settings: Settings) -> None:
        secret = settings.auth.secret_key.get_secret_value()
        self.settings = settings
        self.max_age = settings.auth.session_minutes * 60
        self._session = URLSafeTimedSerializer(secret, salt="soclite.session")
        self._login = URLSafeTimedSerializer(secret, salt="soclite.login-csrf")
        self._draft = URLSafeTimedSerializer(secret, salt="soclite.draft")

    # --- session cookie -----------------------------------------------------
    def issue(self, response: Response, user_id: str, version: int, session_id: str) -> str:
        csrf = secrets.token_urlsafe(24)
        value = self._session.dumps({"uid": user_id, "ver": version, "sid": session_id, "csrf": csrf})
        self._set(response, SESSION_COOKIE, value, self.max_age)
        return csrf

    def principal(self, request: Request, control: Database) -> Principal | None:
        """The logged-in user of this request, or None (no cookie, bad signature, expired, revoked)."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self._session.loads(raw, max_age=self.max_age)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict):
            return None
        user = UserStore(control).get(str(data.get("uid", "")))
        if user is None or user.disabled or user.session_version != data.get("ver"):
            return None
        session_id = str(data.get("sid", ""))
        if not session_id or not SessionStore(control).active(session_id, user.id):
            return None
        return user.principal(csrf=str(data.get("csrf", "")), session_id=session_id)

    def clear(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/")

    # --- login form CSRF (double submit) ------------------------------------
    def login_csrf(self, request: Request) -> str:
        """The current login CSRF value from its cookie, or a new one (set it with set_login_csrf)."""
        raw = request.cookies.get(LOGIN_CSRF_COOKIE)
        if raw:
            try:
                value = self._login.loads(raw, max_age=3600)
                if isinstance(value, str):
                    return value
            except (BadSignature, SignatureExpired):
                pass
        return secrets.token_urlsafe(24)

    def set_login_csrf(self, response: Response, value: str) -> None:
        self._set(response, LOGIN_CSRF_COOKIE, self._login.dumps(value), 3600)

    def check_login_csrf(self, request: Request, submitted: str) -> bool:
        raw = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not raw or not submitted:
            return False
        try:
            value = self._login.loads(raw, max_age=3600)
        except (BadSignature, SignatureExpired):
            return False
        return isinstance(value, str) and hmac.compare_digest(value, submitted)

    # --- drafts of forms posted after expiry ----------------------------------
    def save_draft(self, response: Response, path: str, fields: dict[str, str]) -> None:
        clean = {k: v[:20000] for k, v in fields.items() if k != "csrf_token"}
        self._set(response, DRAFT_COOKIE, self._draft.dumps({"path": path, "fields": clean}), DRAFT_SECONDS)

    def draft(self, request: Request, path: str) -> dict[str, str]:
        raw = request.cookies.get(DRAFT_COOKIE)
        if not raw:
            return {}
        try:
            data: Any = self._draft.loads(raw, max_age=DRAFT_SECONDS)
        except (BadSignature, SignatureExpired):
            return {}
        if not isinstance(data, dict) or data.get("path") != path or not isinstance(data.get("fields"), dict):
            return {}
        return {str(k): str(v) for k, v in data["fields"].items()}

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.settings.auth.secure_cookies,
        )


def csrf_ok(principal: Principal, submitted: str | None) -> bool:
    return bool(principal.csrf) and bool(submitted) and hmac.compare_digest(principal.csrf or "", submitted or "")
