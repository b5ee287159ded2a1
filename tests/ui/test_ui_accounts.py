"""Forced password change, the caller's own password, and user administration by unit (TestClient, real app)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soclite.api.app import create_app
from soclite.application import Server
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore, ensure_first_admin
from soclite.models import Unit
from soclite.runtime import Runtime
from tests.ui.forms import csrf_of as csrf
from tests.ui.forms import sign_in

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

Client = Any
PASSWORD = "account-test-password"


def settings(tmp_path: Path) -> Settings:
    return Settings(environment="test", data_dir=tmp_path,
                    auth=AuthSettings(secret_key="accounts-secret-0123456789", secure_cookies=False))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Client, Runtime]]:
    rt = Runtime.build(settings(tmp_path))
    for unit in (Unit(code="PROV", name="Tỉnh"), Unit(code="SO", name="Sở", parent="PROV"),
                 Unit(code="HA", name="Huyện A", parent="PROV")):
        rt.store.put_unit(unit)
    rt.users.add("root", PASSWORD, role="admin")
    rt.users.add("admin-ha", PASSWORD, role="admin", unit="HA")
    with TestClient(create_app(rt)) as client:
        yield client, rt
    rt.close()


def login(client: Client, user: str, password: str = PASSWORD) -> Any:
    return sign_in(client, user, password)


def change_password(client: Client, current: str, new: str, confirm: str | None = None) -> Any:
    return client.post("/account/password", data={"csrf_token": csrf(client, "/account/password"), "current": current,
                                                  "new": new, "confirm": confirm or new}, follow_redirects=False)


def test_server_start_creates_a_first_admin_who_must_change_the_one_time_password(tmp_path: Path) -> None:
    # regression: Server.first_admin_password imported soclite.api.identity, which does not exist
    server = Server(settings(tmp_path))
    try:
        password = server.first_admin_password()
        assert password and server.first_admin_password() is None
        assert server.runtime.users.get_by_name("admin").must_change_password  # type: ignore[union-attr]
        with TestClient(create_app(server.runtime)) as client:
            assert login(client, "admin", password).status_code == 303
            r = client.get("/alerts", follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/account/password"
            assert client.get("/api/v1/alerts").status_code == 403  # the session cannot use the API either
            assert 'id="password-forced"' in client.get("/account/password").text
            assert change_password(client, password, "my-own-strong-passphrase").status_code == 303
            assert client.get("/alerts").status_code == 200  # the new cookie works, nothing forces any more
            assert client.get("/api/v1/alerts").status_code == 200
    finally:
        server.runtime.close()


def test_first_admin_helper_sets_the_flag(tmp_path: Path) -> None:
    rt = Runtime.build(settings(tmp_path))
    try:
        assert ensure_first_admin(rt.users)
        assert UserStore(rt.control).get_by_name("admin").must_change_password  # type: ignore[union-attr]
    finally:
        rt.close()


def test_own_password_change_checks_the_current_password(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    login(client, "root")
    r = change_password(client, "wrong-current-password", "another-long-password")
    assert r.status_code == 422 and "Sai tên đăng nhập hoặc mật khẩu" in r.text  # the reason, translated
    r = change_password(client, PASSWORD, "another-long-password", "a-different-one-typed")
    assert r.status_code == 422
    assert change_password(client, PASSWORD, "another-long-password").status_code == 303
    assert rt.users.verify("root", "another-long-password")
    assert "user.password_change" in [e.action for e in rt.store.iter_audit()]


def test_admin_creates_a_user_who_must_change_password_then_disables_them(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    login(client, "root")
    page = client.post("/admin/users", data={"csrf_token": csrf(client, "/admin/users"), "username": "lan",
                                             "role": "analyst", "unit": "SO"})  # fmt: skip
    assert page.status_code == 200
    found = re.search(r'<code id="one-time-password">([^<]+)</code>', page.text)
    assert found
    one_time = found.group(1)
    user = rt.users.get_by_name("lan")
    assert user is not None and user.unit == "SO" and user.must_change_password
    stored = rt.control.reader().execute("SELECT password_hash FROM users WHERE username='lan'").fetchone()[0]
    assert one_time not in stored
    lan = TestClient(client.app)
    assert login(lan, "lan", one_time).status_code == 303
    assert lan.get("/", follow_redirects=False).headers["location"] == "/account/password"
    assert change_password(lan, one_time, "lan-chose-this-one").status_code == 303
    assert lan.get("/alerts").status_code == 200
    r = client.post("/admin/users/lan/disable", data={"csrf_token": csrf(client, "/admin/users")},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert lan.get("/alerts", follow_redirects=False).status_code == 303  # the session died
    assert login(lan, "lan", "lan-chose-this-one").status_code == 401
    # a reset hands out a new one-time password and forces the change again
    client.post("/admin/users/lan/enable", data={"csrf_token": csrf(client, "/admin/users")})
    page = client.post("/admin/users/lan/reset", data={"csrf_token": csrf(client, "/admin/users")})
    found = re.search(r'<code id="one-time-password">([^<]+)</code>', page.text)
    assert found and rt.users.get_by_name("lan").must_change_password  # type: ignore[union-attr]
    actions = [e.action for e in rt.store.iter_audit()]
    assert {"user.create", "user.disable", "user.enable", "user.password_reset", "user.password_change"} <= set(actions)


def test_a_unit_admin_manages_only_its_subtree(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    rt.users.add("so-user", PASSWORD, role="viewer", unit="SO")
    rt.users.add("ha-user", PASSWORD, role="viewer", unit="HA")
    login(client, "admin-ha")
    listed = client.get("/admin/users").text
    assert 'id="user-ha-user"' in listed and 'id="user-so-user"' not in listed and 'id="user-root"' not in listed
    token = csrf(client, "/admin/users")
    assert client.post("/admin/users/so-user/disable", data={"csrf_token": token}).status_code == 404
    assert not rt.users.get_by_name("so-user").disabled  # type: ignore[union-attr]
    r = client.post("/admin/users", data={"csrf_token": token, "username": "x", "role": "admin", "unit": ""})
    assert r.status_code == 422 and rt.users.get_by_name("x") is None  # no province-wide account from a unit admin
    r = client.post("/admin/users/ha-user/role", data={"csrf_token": token, "role": "analyst", "unit": "SO"})
    assert r.status_code == 422 and rt.users.get_by_name("ha-user").unit == "HA"  # type: ignore[union-attr]
    r = client.post("/admin/users/ha-user/role", data={"csrf_token": token, "role": "analyst", "unit": "HA"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and rt.users.get_by_name("ha-user").role == "analyst"  # type: ignore[union-attr]


def test_non_admins_cannot_administer_users(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    rt.users.add("ana", PASSWORD, role="analyst")
    login(client, "ana")
    assert client.get("/admin/users").status_code == 403
    token = csrf(client, "/alerts")
    assert client.post("/admin/users", data={"csrf_token": token, "username": "y", "role": "admin"}).status_code == 403
    assert rt.users.get_by_name("y") is None
