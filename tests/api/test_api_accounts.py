"""Issue 13: sessions end on the server, tokens expire and can be listed/revoked, logins are throttled
persistently with lockout, forwarded headers are believed only from configured proxies, and every
answer carries the security headers."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from soclite.api.app import create_app
from soclite.api.sessions import SESSION_COOKIE
from soclite.cli import cli
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import isoformat, utcnow
from soclite.runtime import Runtime
from tests.api.conftest import UNITS, TestClient, auth, make_settings
from tests.api.test_api_identity import PASSWORD, csrf_of, login

Client = Any


# --- item 4: logout ends the session on the server -----------------------------------------------


def test_logout_revokes_the_session_so_a_copied_cookie_is_dead(runtime: Runtime, client: Client) -> None:
    UserStore(runtime.control).add("ana", PASSWORD, role="analyst")
    assert login(client, "ana").status_code == 303
    stolen = client.cookies.get(SESSION_COOKIE)
    csrf = csrf_of(client.get("/alerts").text)
    # Logout needs the session's CSRF token: a cross-site form cannot log a user out (or in as someone).
    r = client.post("/logout", data={}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/api/v1/me").status_code == 200
    r = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    with TestClient(create_app(runtime)) as thief:  # the copy of the cookie someone kept
        thief.cookies.set(SESSION_COOKIE, stolen)
        assert thief.get("/api/v1/me").status_code == 401
    assert [e.action for e in runtime.store.iter_audit() if e.action.startswith("session.")] == ["session.logout"]


def test_logout_everywhere_ends_other_browsers_sessions(runtime: Runtime, client: Client) -> None:
    UserStore(runtime.control).add("ana", PASSWORD, role="analyst")
    with TestClient(create_app(runtime)) as laptop:
        assert login(laptop, "ana").status_code == 303
        assert login(client, "ana").status_code == 303
        csrf = csrf_of(client.get("/alerts").text)
        # API form: POST with X-CSRF-Token (a token caller has no sessions: 400)
        assert client.post("/api/v1/me/logout-everywhere").status_code == 403
        r = client.post("/api/v1/me/logout-everywhere", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json() == {"sessions_ended": 2}
        assert laptop.get("/api/v1/me").status_code == 401
        assert client.get("/api/v1/me").status_code == 401
    entries = [e for e in runtime.store.iter_audit() if e.action == "session.logout_everywhere"]
    assert len(entries) == 1 and entries[0].after == {"sessions_ended": 2}


def test_ui_has_a_log_out_everywhere_button(runtime: Runtime, client: Client) -> None:
    UserStore(runtime.control).add("ana", PASSWORD, role="analyst")
    login(client, "ana")
    page = client.get("/alerts").text
    assert 'action="/logout-everywhere"' in page
    csrf = csrf_of(page)
    r = client.post("/logout-everywhere", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/v1/me").status_code == 401


def test_password_and_role_change_revoke_session_rows(runtime: Runtime, client: Client) -> None:
    users = UserStore(runtime.control)
    users.add("ana", PASSWORD, role="analyst")
    login(client, "ana")
    user = users.get_by_name("ana")
    assert user is not None
    from soclite.control.sessions import SessionStore

    sessions = SessionStore(runtime.control)
    assert len(sessions.of_user(user.id)) == 1
    users.set_role("ana", "viewer")
    assert sessions.of_user(user.id) == [] and client.get("/api/v1/me").status_code == 401
    login(client, "ana")
    users.set_password("ana", "another-password-1")
    assert sessions.of_user(user.id) == [] and client.get("/api/v1/me").status_code == 401


# --- item 7: person tokens expire, can be listed and revoked ------------------------------------


def test_expired_token_is_refused(runtime: Runtime, client: Client) -> None:
    token = runtime.identity.create_token(role="analyst", days=1)
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 200
    with runtime.control.write() as conn:  # a day later
        conn.execute("UPDATE tokens SET expires_at = ?", (isoformat(utcnow() - timedelta(seconds=1)),))
    r = client.get("/api/v1/me", headers=auth(token))
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_token_cli_create_expires_list_and_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    r = runner.invoke(cli, ["token", "create", "--role", "viewer", "--name", "leader", *data])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    token_id = token.split("_")[1]
    r = runner.invoke(cli, ["token", "create", "--role", "viewer", "--days", "10000", *data])
    assert r.exit_code == 2 and "token_max_days" in r.stderr and r.stdout == ""
    r = runner.invoke(cli, ["token", "list", *data])
    assert r.exit_code == 0
    row = next(line.split("\t") for line in r.stdout.splitlines() if line.startswith(token_id))
    assert row[1:5] == ["leader", "viewer", "-", "active"]
    expires = row[5]
    assert expires != "never" and expires[:10] == (utcnow() + timedelta(days=90)).date().isoformat()
    assert token.split("_", 2)[2] not in r.stdout
    r = runner.invoke(cli, ["token", "revoke", token_id, *data])
    assert r.exit_code == 0 and "revoked" in r.stdout
    r = runner.invoke(cli, ["token", "revoke", token_id, *data])
    assert r.exit_code == 1 and "already revoked" in r.output
    r = runner.invoke(cli, ["token", "revoke", "ffffffffffffffff", *data])
    assert r.exit_code == 1 and "no token" in r.output
    assert token_id not in runner.invoke(cli, ["token", "list", *data]).stdout
    assert "revoked" in runner.invoke(cli, ["token", "list", "--all", *data]).stdout
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path))
    try:
        with pytest.raises(Exception, match="revoked"):
            rt.identity.authenticate_token(token)
        actions = [e.action for e in rt.store.iter_audit()]
    finally:
        rt.close()
    assert actions.count("token.create") == 1 and actions.count("token.revoke") == 1


def test_token_api_is_scoped_to_the_admins_subtree_and_audited(
    runtime: Runtime, client: Client, tokens: dict[str, str], seeded: dict[str, list[str]]
) -> None:
    listing = client.get("/api/v1/tokens", headers=auth(tokens["admin_ha"])).json()
    assert {t["name"] for t in listing["items"]} == {"agent-1", "ana-ha", "admin-ha"}
    assert all("secret" not in t and "hash" not in str(t) for t in listing["items"])
    province = client.get("/api/v1/tokens", headers=auth(tokens["admin"])).json()
    assert len(province["items"]) == len(tokens)
    so_token = tokens["viewer_so"].split("_")[1]
    # An HA admin cannot see or revoke an SO token (404: no existence leak), nor can an analyst.
    assert client.post(f"/api/v1/tokens/{so_token}/revoke", headers=auth(tokens["admin_ha"])).status_code == 404
    assert client.get("/api/v1/tokens", headers=auth(tokens["analyst"])).status_code == 403
    r = client.post(f"/api/v1/tokens/{so_token}/revoke", headers=auth(tokens["admin"]))
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert client.get("/api/v1/me", headers=auth(tokens["viewer_so"])).status_code == 401
    assert client.post(f"/api/v1/tokens/{so_token}/revoke", headers=auth(tokens["admin"])).status_code == 409
    entry = next(e for e in runtime.store.iter_audit() if e.action == "token.revoke")
    assert entry.target == f"token:{so_token}" and entry.unit == "SO" and "root" in entry.actor


# --- item 14: persistent throttle, lockout with admin unlock, trusted proxies --------------------


def test_throttle_survives_a_restart(runtime: Runtime) -> None:
    UserStore(runtime.control).add("ana", PASSWORD, role="analyst")
    with TestClient(create_app(runtime)) as first:
        for _ in range(runtime.settings.auth.login_attempts_per_minute):
            assert login(first, "ana", "wrong-password!").status_code == 401
    with TestClient(create_app(runtime)) as after_restart:  # a new app: the in-memory throttle was empty
        assert login(after_restart, "ana").status_code == 429


def test_lockout_after_n_failures_and_admin_unlock(tmp_path: Path) -> None:
    rt = Runtime.build(make_settings(tmp_path, lockout_failures=3, login_attempts_per_minute=50))
    try:
        for unit in UNITS:
            rt.store.put_unit(unit)
        rt.users.add("ana", PASSWORD, role="analyst", unit="HA")
        admin_so = rt.identity.create_token(role="admin", unit="SO")
        admin_ha = rt.identity.create_token(role="admin", unit="HA")
        with TestClient(create_app(rt)) as client:
            for _ in range(3):
                assert login(client, "ana", "wrong-password!").status_code == 401
            r = login(client, "ana")  # the right password no longer opens a locked account
            assert r.status_code == 423 and ("locked" in r.text or "khóa" in r.text)
            assert client.post("/api/v1/users/ana/unlock", headers=auth(admin_so)).status_code == 404
            r = client.post("/api/v1/users/ana/unlock", headers=auth(admin_ha))
            assert r.status_code == 200 and r.json() == {"username": "ana", "locked": False, "failed_logins": 0}
            assert login(client, "ana").status_code == 303
        actions = [e.action for e in rt.store.iter_audit()]
        assert "user.locked" in actions and "user.unlock" in actions and "login.locked" in actions
    finally:
        rt.close()
    runner = CliRunner()
    rt = Runtime.build(make_settings(tmp_path, lockout_failures=1))
    try:
        with TestClient(create_app(rt)) as client:
            login(client, "ana", "wrong-password!")
    finally:
        rt.close()
    r = runner.invoke(cli, ["user", "list", "--data-dir", str(tmp_path)])
    assert "ana\tanalyst\tHA\tlocked" in r.stdout
    r = runner.invoke(cli, ["user", "unlock", "ana", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "unlocked" in r.stdout
    assert "ana\tanalyst\tHA\tactive" in runner.invoke(cli, ["user", "list", "--data-dir", str(tmp_path)]).stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Runtime]]:
    """The app behind a real uvicorn on loopback, configured as `soclite server` configures it."""
    import uvicorn

    trusted: list[str] = getattr(request, "param", [])
    settings = Settings(environment="test", data_dir=tmp_path, auth=AuthSettings(
        secret_key="served-secret-0123456789", secure_cookies=False, trusted_proxies=trusted))
    rt = Runtime.build(settings)
    rt.users.add("ana", PASSWORD, role="analyst")
    from soclite.server import http_config

    port = _free_port()
    settings.server.http_host, settings.server.http_port = "127.0.0.1", port
    server = uvicorn.Server(http_config(create_app(rt), settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", rt
    finally:
        server.should_exit = True
        thread.join(30)
        rt.close()


def _login_over_http(base: str, password: str, forwarded: str) -> int:
    with httpx.Client(base_url=base) as http:
        page = http.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        r = http.post("/login", data={"username": "ana", "password": password, "csrf_token": token.group(1),
                                      "next": "/"}, headers={"X-Forwarded-For": forwarded})
        return r.status_code


def test_forged_forwarded_for_does_not_reset_the_throttle(served: tuple[str, Runtime]) -> None:
    base, rt = served
    budget = rt.settings.auth.login_attempts_per_minute
    codes = [_login_over_http(base, "wrong-password!", f"198.51.100.{i}") for i in range(budget + 2)]
    assert codes[:budget] == [401] * budget and codes[budget:] == [429, 429]
    failures = [e for e in rt.store.iter_audit() if e.action == "login.failure"]
    assert {e.actor for e in failures} == {"anonymous@127.0.0.1"}


@pytest.mark.parametrize("served", [["127.0.0.1/32"]], indirect=True)
def test_forwarded_for_is_believed_from_a_configured_proxy(served: tuple[str, Runtime]) -> None:
    base, rt = served
    assert _login_over_http(base, "wrong-password!", "203.0.113.7") == 401
    failures = [e for e in rt.store.iter_audit() if e.action == "login.failure"]
    assert [e.actor for e in failures] == ["anonymous@203.0.113.7"]


# --- item 8: security headers, docs behind login ------------------------------------------------


def test_security_headers_on_pages_and_api(runtime: Runtime, client: Client, tokens: dict[str, str]) -> None:
    for r in (client.get("/login"), client.get("/api/v1/me", headers=auth(tokens["viewer"])),
              client.get("/health")):
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "strict-transport-security" not in r.headers  # plain HTTP: HSTS means nothing here
    with TestClient(create_app(runtime), base_url="https://soc.example") as tls:
        assert tls.get("/health").headers["strict-transport-security"].startswith("max-age=31536000")


def test_templates_have_no_inline_script() -> None:
    from soclite.api.ui.web import TEMPLATES

    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline <script> in {path.name}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {path.name}"
        assert "javascript:" not in text, path.name


@pytest.mark.parametrize("url", ["/docs", "/openapi.json"])
def test_docs_need_login_unless_public(url: str, tmp_path: Path, client: Client, tokens: dict[str, str]) -> None:
    assert client.get(url).status_code == 401
    assert client.get(url, headers=auth(tokens["agent"])).status_code == 403
    assert client.get(url, headers=auth(tokens["viewer"])).status_code == 200
    rt = Runtime.build(make_settings(tmp_path / "public", public_docs=True))
    try:
        with TestClient(create_app(rt)) as anonymous:
            assert anonymous.get(url).status_code == 200
    finally:
        rt.close()
