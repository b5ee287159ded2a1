"""The HTML forms as a person fills them, for the TestClient page tests: the CSRF token a page carries, and the
login form. One copy here instead of one per test module."""

from __future__ import annotations

import re
from typing import Any

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: Any, path: str) -> str:
    """The CSRF token of the form on ``path`` (the page is fetched; a page without one fails the test)."""
    found = CSRF_FIELD.search(client.get(path).text)
    assert found, path
    return found.group(1)


def sign_in(client: Any, user: str, password: str) -> Any:
    """The login form sent; its response (303 when accepted), not followed."""
    return client.post("/login", data={"username": user, "password": password, "csrf_token": csrf_of(client, "/login")},
                       follow_redirects=False)  # fmt: skip


def login_as(client: Any, user: str, password: str) -> Any:
    """Logged in (the test fails when the login is refused); the client, its session cookie set."""
    assert sign_in(client, user, password).status_code == 303
    return client
