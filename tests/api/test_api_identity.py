"""Users, sessions (cookie flags, CSRF, expiry keeping the form), login throttling, CLI, audit chain."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from soclite.api.sessions import SESSION_COOKIE
from soclite.cli import cli
from soclite.control.identity import UserStore, ensure_first_admin
from soclite.runtime import Runtime

Client = Any
PASSWORD = "correct-horse-battery"


def login(client: Client, username: str, password: str = PASSWORD, next_url: str = "/") -> Any:
    page = client.get(f"/login?next={next_url}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token.group(1),
                                       "next": next_url}, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_first_admin_is_created_once(runtime: Runtime) -> None:
    password = ensure_first_admin(runtime.users)
    assert password and len(password) >= 16
    assert ensure_first_admin(runtime.users) is None
    user = UserStore(runtime.control).verify("admin", password)
    assert user.role == "admin"
    stored = runtime.control.reader().execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$") and password not in stored


def test_login_sets_a_hardened_cookie_and_session_calls_need_csrf(seeded: dict[str, list[str]], runtime: Runtime,
                                                                  client: Client) -> None:
    UserStore(runtime.control).add("ana", PASSWORD, role="analyst", unit="HA")
    r = login(client, "ana", next_url="/alerts")
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Max-Age=28800" in cookie
    me = client.get("/api/v1/me").json()
    assert me == {"name": "ana", "role": "analyst", "unit": "HA", "kind": "session", "units": ["HA", "HA-XA"]}
    alert_id = seeded["HA"][0]
    r = client.patch(f"/api/v1/alerts/{alert_id}", json={"status": "acknowledged"})
    assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
    csrf = csrf_of(client.get("/alerts").text)
    r = client.patch(f"/api/v1/alerts/{alert_id}", json={"status": "acknowledged"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200


def test_secure_flag_follows_settings(tmp_path: Path) -> None:
    import warnings

    from soclite.config import AuthSettings, Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from soclite.api.app import create_app

    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="k" * 32, secure_cookies=True)))
    try:
        UserStore(rt.control).add("ana", PASSWORD, role="analyst")
        with TestClient(create_app(rt), base_url="https://testserver") as client:
            r = login(client, "ana")
            assert r.status_code == 303 and "; Secure" in r.headers["set-cookie"]
    finally:
        rt.close()


def test_wrong_password_and_throttling(runtime: Runtime, client: Client) -> None:
    UserStore(runtime.control).add("ana", PASSWORD, role="analyst")
    for _ in range(runtime.settings.auth.login_attempts_per_minute):
        r = login(client, "ana", "wrong-password!")
        assert r.status_code == 401
    r = login(client, "ana")  # even the right password waits: the budget of this minute is spent
    assert r.status_code == 429
    assert "Too many" in r.text or "quá nhiều" in r.text
    assert login(client, "someone-else", "whatever-123").status_code == 401  # per user + IP
    failures = [e for e in runtime.store.iter_audit() if e.action == "login.failure"]
    assert len(failures) == runtime.settings.auth.login_attempts_per_minute + 1


def test_disabled_user_and_password_reset_end_sessions(runtime: Runtime, client: Client) -> None:
    users = UserStore(runtime.control)
    users.add("ana", PASSWORD, role="analyst")
    assert login(client, "ana").status_code == 303
    assert client.get("/api/v1/me").status_code == 200
    users.set_password("ana", "another-password-1")
    assert client.get("/api/v1/me").status_code == 401
    assert login(client, "ana", "another-password-1").status_code == 303
    users.set_disabled("ana")
    assert client.get("/api/v1/me").status_code == 401
    assert login(client, "ana", "another-password-1").status_code == 401


def test_expired_session_redirects_to_login_and_keeps_the_form(seeded: dict[str, list[str]], runtime: Runtime,
                                                              client: Client) -> None:
    UserStore(runtime.control).add("ana", PASSWORD, role="analyst")
    assert login(client, "ana").status_code == 303
    alert_path = f"/alerts/{seeded['SO'][0]}"
    csrf = csrf_of(client.get(alert_path).text)
    # Replace the cookie with one signed by the same key but issued 9 hours ago (sessions last 8 hours).
    user = UserStore(runtime.control).get_by_name("ana")
    assert user is not None

    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 9 * 3600

    old = URLSafeTimedSerializer(runtime.settings.auth.secret_key.get_secret_value(), salt="soclite.session",
                                 signer=PastSigner).dumps(
        {"uid": user.id, "ver": user.session_version, "csrf": csrf})
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, old)
    assert client.get(alert_path, follow_redirects=False).status_code == 303
    r = client.post(f"{alert_path}/update", data={"csrf_token": csrf, "return_to": alert_path,
                                                   "comment": "Ghi chú chưa lưu"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Falerts%2F")
    assert "expired=1" in r.headers["location"]
    assert runtime.store.get_alert(seeded["SO"][0]).status == "new"
    page = login(client, "ana", next_url=alert_path)
    assert page.headers["location"] == alert_path
    html = client.get(alert_path).text
    assert "Ghi chú chưa lưu" in html  # the comment typed before expiry is back in the form


def test_ui_form_without_csrf_is_refused(seeded: dict[str, list[str]], runtime: Runtime, client: Client) -> None:
    UserStore(runtime.control).add("ana", PASSWORD, role="analyst")
    login(client, "ana")
    r = client.post(f"/alerts/{seeded['SO'][0]}/update", data={"status": "acknowledged"})
    assert r.status_code == 403
    assert runtime.store.get_alert(seeded["SO"][0]).status == "new"


def test_viewer_ui_write_is_403_and_audited(seeded: dict[str, list[str]], runtime: Runtime, client: Client) -> None:
    UserStore(runtime.control).add("boss", PASSWORD, role="viewer")
    login(client, "boss")
    alert_path = f"/alerts/{seeded['SO'][0]}"
    html = client.get(alert_path).text
    assert 'id="status-form"' not in html  # no write forms for a viewer
    csrf = csrf_of(client.get("/alerts").text)  # the logout form carries it
    r = client.post(f"{alert_path}/update", data={"csrf_token": csrf, "status": "acknowledged"})
    assert r.status_code == 403
    denied = [e for e in runtime.store.iter_audit() if e.action == "access.denied"]
    assert denied and denied[-1].actor == "session:boss"


def test_user_cli_and_token_cli(tmp_path: Path) -> None:
    from soclite.config import Settings
    from soclite.models import Unit

    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    # Issue 13 item 13: an unknown --unit is refused as `token create` refuses it (exit 2, nothing created).
    r = runner.invoke(cli, ["user", "add", "lan", "--role", "analyst", "--unit", "HA", *data])
    assert r.exit_code == 2 and "unknown unit 'HA'" in r.stderr
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path))
    try:
        assert rt.users.get_by_name("lan") is None
        rt.store.put_unit(Unit(code="HA", name="Huyện A"))
    finally:
        rt.close()
    r = runner.invoke(cli, ["user", "add", "lan", "--role", "analyst", "--unit", "HA", *data])
    assert r.exit_code == 0, r.output
    password = re.search(r"password: (\S+)", r.output)
    assert password
    r = runner.invoke(cli, ["user", "set-role", "lan", "--role", "viewer", *data])
    assert r.exit_code == 0 and "viewer" in r.output and "HA" in r.output
    r = runner.invoke(cli, ["user", "reset-password", "lan", "--password", "new-password-99", *data])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["user", "disable", "lan", *data])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["user", "add", "lan", "--role", "analyst", "--password", "short", *data])
    assert r.exit_code != 0
    r = runner.invoke(cli, ["user", "add", "boss", "--role", "admin", "--password", "aaaaaaaaaa", *data])
    assert r.exit_code != 0 and "too weak" in r.output
    r = runner.invoke(cli, ["user", "list", *data])
    assert "lan\tviewer\tHA\tdisabled" in r.output
    r = runner.invoke(cli, ["token", "create", "--role", "viewer", *data])
    assert r.exit_code == 0 and re.fullmatch(r"sl_[0-9a-f]{16}_\S+\n", r.output)


def test_audit_verify_detects_tampering(seeded: dict[str, list[str]], runtime: Runtime, client: Client,
                                        tokens: dict[str, str]) -> None:
    h = {"Authorization": f"Bearer {tokens['analyst']}"}
    for alert_id in seeded["SO"][:4]:
        assert client.patch(f"/api/v1/alerts/{alert_id}", headers=h, json={"status": "acknowledged"}).status_code == 200
    runner = CliRunner()
    data = ["--data-dir", str(runtime.settings.data_dir)]
    r = runner.invoke(cli, ["audit", "verify", *data])
    assert r.exit_code == 0 and "4 entries verified" in r.output
    # An insider edits the after-image of seq 2 directly in SQLite.
    db = next(p for p in Path(runtime.settings.data_dir).iterdir() if p.suffix == ".db" and _has_audit(p))
    with sqlite3.connect(db) as conn:
        doc = conn.execute("SELECT doc FROM audit WHERE seq = 2").fetchone()[0]
        assert '"acknowledged"' in doc
        conn.execute("UPDATE audit SET doc = ? WHERE seq = 2", (doc.replace('"acknowledged"', '"resolved"'),))
    r = runner.invoke(cli, ["audit", "verify", *data])
    assert r.exit_code == 1 and "first_broken_seq=2" in r.output


def _has_audit(path: Path) -> bool:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit'").fetchone() is not None


@pytest.mark.parametrize("url", ["/metrics", "/docs", "/openapi.json"])
def test_metrics_and_docs(url: str, client: Client, tokens: dict[str, str]) -> None:
    r = client.get(url, headers={"Authorization": f"Bearer {tokens['viewer']}"})
    assert r.status_code == 200
    if url == "/metrics":
        client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {tokens['viewer']}"})
        text = client.get(url, headers={"Authorization": f"Bearer {tokens['viewer']}"}).text
        assert 'soclite_http_requests_total{method="GET",route="/api/v1/alerts",status="2xx"}' in text


def test_token_cli_refuses_unknown_unit_and_audits_the_issue(tmp_path: Path) -> None:
    from soclite.config import Settings
    from soclite.models import Unit

    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    r = runner.invoke(cli, ["token", "create", "--role", "analyst", "--unit", "nosuchunit", *data])
    assert r.exit_code == 2 and "unknown unit 'nosuchunit'" in r.stderr and r.stdout == ""
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path))
    try:
        rt.store.put_unit(Unit(code="so-tc", name="Sở Tài chính"))
    finally:
        rt.close()
    r = runner.invoke(cli, ["token", "create", "--role", "analyst", "--unit", "so-tc", "--name", "lan", *data])
    assert r.exit_code == 0, r.output
    assert re.fullmatch(r"sl_[0-9a-f]{16}_\S+\n", r.stdout)  # only the token on stdout
    token = r.stdout.strip()
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path))
    try:
        entries = [e for e in rt.store.iter_audit() if e.action == "token.create"]
    finally:
        rt.close()
    assert len(entries) == 1
    entry = entries[0]
    assert entry.actor.startswith("cli:") and entry.target == f"token:{token.split('_')[1]}" and entry.unit == "so-tc"
    assert token.split("_", 2)[2] not in entry.model_dump_json()  # never the secret


def test_cli_creates_private_data_dir_and_files(tmp_path: Path) -> None:
    """The `soclite` entry point sets umask 077: data dir 0700, SQLite files 0600 (events, tokens, audit)."""
    import os
    import stat
    import subprocess
    import sys

    data_dir = tmp_path / "fresh" / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "soclite.cli", "token", "create", "--data-dir", str(data_dir), "--role", "admin"],
        capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("SOCLITE_")},
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files)
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {p.name: "0o600" for p in files}
