"""The Administration pages (issue 16: tokens, agents, units; issue 17: information systems), TestClient on the
real app: permissions, unit scope (a unit admin neither sees nor touches another unit's objects), CSRF, audit."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.models import Host, HostType, Unit, utcnow
from soclite.runtime import Runtime
from tests.ui.forms import csrf_of as csrf
from tests.ui.forms import login_as

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

Client = Any
PASSWORD = "admin-console-password"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Client, Runtime]]:
    rt = Runtime.build(Settings(environment="test", data_dir=tmp_path,
                                auth=AuthSettings(secret_key="console-secret-0123456789", secure_cookies=False)))
    for unit in (Unit(code="PROV", name="Tỉnh"), Unit(code="SO", name="Sở", parent="PROV"),
                 Unit(code="HA", name="Huyện A", parent="PROV"), Unit(code="XA", name="Xã A", parent="HA")):
        rt.store.put_unit(unit)
    rt.store.put_host(Host(id="so-ws1", name="SO-WS1", type=HostType.WORKSTATION, unit="SO", last_seen=utcnow()))
    rt.store.put_host(Host(id="ha-ws1", name="HA-WS1", type=HostType.WORKSTATION, unit="HA", last_seen=utcnow()))
    rt.users.add("root", PASSWORD, role="admin")
    rt.users.add("admin-ha", PASSWORD, role="admin", unit="HA")
    rt.users.add("lan", PASSWORD, role="analyst", unit="SO")
    with TestClient(create_app(rt)) as client:
        yield client, rt
    rt.close()


def login(client: Client, user: str) -> Client:
    return login_as(client, user, PASSWORD)


def post(client: Client, path: str, page: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf(client, page), **data}, follow_redirects=False)


def actions(rt: Runtime) -> list[str]:
    return [e.action for e in rt.store.iter_audit()]


def test_administration_is_one_top_link_with_sub_links_and_admins_only(app: tuple[Client, Runtime]) -> None:
    client, _rt = app
    login(client, "root")
    page = client.get("/admin")
    assert page.status_code == 200 and 'id="nav-admin"' in page.text and "Quản trị" in page.text
    for link in ("/admin/users", "/account/tokens", "/admin/agents", "/admin/units", "/admin/systems"):
        assert f'href="{link}"' in page.text
        assert client.get(link).status_code == 200, link
    analyst = login(TestClient(client.app), "lan")
    assert 'id="nav-admin"' not in analyst.get("/").text
    for link in ("/admin", "/admin/agents", "/admin/units", "/admin/systems"):
        assert analyst.get(link).status_code == 403, link
    assert analyst.get("/account/tokens").status_code == 200  # everyone manages their own tokens


def test_own_token_is_shown_once_works_and_is_revoked(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    login(client, "lan")
    page = post(client, "/account/tokens", "/account/tokens", name="script", days="7")
    assert page.status_code == 200
    secret = re.search(r'<code id="new-token-secret">([^<]+)</code>', page.text)
    assert secret
    token_id = secret.group(1).split("_", 2)[1]
    assert secret.group(1) not in client.get("/account/tokens").text  # shown once
    api = TestClient(client.app)
    assert api.get("/api/v1/alerts", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code == 200
    info = rt.identity.get_token(token_id)
    assert info is not None and info.role.value == "analyst" and info.unit == "SO" and info.last_used_at is not None
    assert f'id="token-{token_id}"' in client.get("/account/tokens").text
    assert post(client, f"/account/tokens/{token_id}/revoke", "/account/tokens").status_code == 303
    assert api.get("/api/v1/alerts", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code == 401
    assert {"token.create", "token.revoke"} <= set(actions(rt))
    # over the site's maximum lifetime: refused with the reason, nothing created
    before = len(rt.identity.list_tokens(include_inactive=True))
    assert post(client, "/account/tokens", "/account/tokens", name="x", days="100000").status_code == 422
    assert len(rt.identity.list_tokens(include_inactive=True)) == before


def test_unit_admin_sees_and_revokes_only_tokens_of_its_subtree(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    so = rt.identity.create_token(role="analyst", unit="SO", name="so-script", days=5).split("_", 2)[1]
    xa = rt.identity.create_token(role="viewer", unit="XA", name="xa-script", days=5).split("_", 2)[1]
    login(client, "admin-ha")
    page = client.get("/account/tokens").text
    assert f'id="token-{xa}"' in page and f'id="token-{so}"' not in page
    assert post(client, f"/account/tokens/{so}/revoke", "/account/tokens").status_code == 404
    assert rt.identity.get_token(so).revoked_at is None  # type: ignore[union-attr]
    assert post(client, f"/account/tokens/{xa}/revoke", "/account/tokens").status_code == 303
    assert rt.identity.get_token(xa).revoked_at is not None  # type: ignore[union-attr]
    # an analyst cannot revoke someone else's token, even in its own unit
    lan = login(TestClient(client.app), "lan")
    assert post(lan, f"/account/tokens/{so}/revoke", "/account/tokens").status_code == 404


def test_forms_without_the_csrf_token_are_refused(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    login(client, "root")
    for path in ("/admin/units", "/admin/agents/enroll-tokens", "/admin/systems", "/account/tokens"):
        r = client.post(path, data={"csrf_token": "forged", "code": "X", "name": "X"}, follow_redirects=False)
        assert r.status_code == 403, path
    assert "X" not in {u.code for u in rt.store.list_units()}


def test_enrolment_tokens_and_agents_scoped_revoked_and_rekeyed(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    login(client, "admin-ha")
    # a unit admin cannot bind a token to another unit or to the whole province
    assert post(client, "/admin/agents/enroll-tokens", "/admin/agents", unit="SO", uses="1",
                hours="24").status_code == 422
    assert post(client, "/admin/agents/enroll-tokens", "/admin/agents", unit="", uses="1",
                hours="24").status_code == 422
    page = post(client, "/admin/agents/enroll-tokens", "/admin/agents", unit="XA", uses="2", hours="24")
    assert page.status_code == 200
    secret = re.search(r'<code id="enroll-token-secret">([^<]+)</code>', page.text)
    assert secret
    # the real enrolment endpoint accepts it: the agent lands in XA
    api = TestClient(client.app)
    enrolled = api.post("/api/v1/agents/enroll", json={"enroll_token": secret.group(1), "hostname": "xa-pc1",
                                                       "agent_version": "9.9"}).json()  # fmt: skip
    assert enrolled["unit"] == "XA"
    old_key, agent_id = enrolled["api_key"], enrolled["agent_id"]
    other = rt.agents.create_enroll_token(unit="SO")
    other_agent = api.post("/api/v1/agents/enroll", json={"enroll_token": other, "hostname": "so-pc9"}).json()
    listing = client.get("/admin/agents").text
    assert f'id="agent-{agent_id}"' in listing and "9.9" in listing
    assert f'id="agent-{other_agent["agent_id"]}"' not in listing  # another unit's agent is invisible
    assert other.split("_", 2)[1] not in listing
    assert post(client, f"/admin/agents/{other_agent['agent_id']}/revoke", "/admin/agents").status_code == 404
    assert post(client, f"/admin/agents/{other.split('_', 2)[1]}/revoke-enroll-token",
                "/admin/agents").status_code == 404
    # re-key: a one-use token; the host enrolls again with it and the old key stops working
    page = post(client, f"/admin/agents/{agent_id}/rekey", "/admin/agents")
    rekey = re.search(r'<code id="enroll-token-secret">([^<]+)</code>', page.text)
    assert rekey
    again = api.post("/api/v1/agents/enroll", json={"enroll_token": rekey.group(1), "hostname": "xa-pc1"})
    assert again.status_code == 200 and again.json()["api_key"] != old_key
    beat = {"hostname": "xa-pc1"}
    assert api.post("/api/v1/agents/heartbeat", json=beat,
                    headers={"Authorization": f"Bearer {old_key}"}).status_code == 401
    new_key = again.json()["api_key"]
    assert api.post("/api/v1/agents/heartbeat", json=beat,
                    headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    # revoke the new agent: cut off at once
    assert post(client, f"/admin/agents/{again.json()['agent_id']}/revoke", "/admin/agents").status_code == 303
    assert api.post("/api/v1/agents/heartbeat", json=beat,
                    headers={"Authorization": f"Bearer {new_key}"}).status_code == 401
    token_id = secret.group(1).split("_", 2)[1]
    assert post(client, f"/admin/agents/{token_id}/revoke-enroll-token", "/admin/agents").status_code == 303
    assert rt.agents.get_enroll_token(token_id).revoked_at is not None  # type: ignore[union-attr]
    assert {"enroll_token.create", "agent.rekey", "agent.revoke", "enroll_token.revoke"} <= set(actions(rt))


def test_units_tree_create_rename_move_cycles_and_delete(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    login(client, "admin-ha")
    assert post(client, "/admin/units", "/admin/units", code="XB", name="Xã B", name_en="Commune B",
                parent="HA").status_code == 303
    units = {u.code: u for u in rt.store.list_units()}
    assert units["XB"].parent == "HA" and units["XB"].name_en == "Commune B"
    page = client.get("/admin/units").text
    assert 'id="unit-XB"' in page and "Commune B" in page and 'id="unit-SO"' not in page  # its subtree only
    # rename, move below a sibling, refuse a cycle, refuse another unit's
    assert post(client, "/admin/units", "/admin/units", code="XB", name="Xã Bình", parent="XA").status_code == 303
    assert {u.code: u for u in rt.store.list_units()}["XB"].parent == "XA"
    assert post(client, "/admin/units", "/admin/units", code="XA", name="Xã A", parent="XB").status_code == 422
    assert post(client, "/admin/units", "/admin/units", code="SO", name="Sở mới", parent="HA").status_code == 422
    assert post(client, "/admin/units", "/admin/units", code="HA", name="Huyện A", parent="SO").status_code == 422
    assert {u.code: u for u in rt.store.list_units()}["SO"].name == "Sở"
    # delete: an empty unit goes; one with a host, a user or a child stays, with the reason
    rt.users.add("xa-user", PASSWORD, role="viewer", unit="XA")
    r = post(client, "/admin/units/XA/delete", "/admin/units")
    assert r.status_code == 409 and "child" in r.text
    assert post(client, "/admin/units/XB/delete", "/admin/units").status_code == 303
    r = post(client, "/admin/units/XA/delete", "/admin/units")
    assert r.status_code == 409 and "users" in r.text
    assert post(client, "/admin/units/SO/delete", "/admin/units").status_code == 404  # outside its subtree
    assert post(client, "/admin/units/HA/delete", "/admin/units").status_code == 422  # its own unit
    root = login(TestClient(client.app), "root")
    r = post(root, "/admin/units/HA/delete", "/admin/units")
    assert r.status_code == 409 and "hosts" in r.text
    codes = {u.code for u in rt.store.list_units()}
    assert "XB" not in codes and {"XA", "HA", "SO"} <= codes
    assert {"unit.put", "unit.delete"} <= set(actions(rt))


def test_information_systems_created_edited_retired_and_scoped(app: tuple[Client, Runtime]) -> None:
    client, rt = app
    login(client, "admin-ha")
    r = post(client, "/admin/systems", "/admin/systems", name="Cổng dịch vụ công huyện", owner="UBND huyện A",
             operator="Phòng VH-TT", level="3", approval_status="approved", approval_decision="12/QĐ-UBND",
             deployment_state="operating", hosts="ha-ws1", units="XA", unit="HA")
    assert r.status_code == 303
    [system] = rt.systems.list_systems(None)
    assert system["unit"] == "HA" and system["level"] == 3 and system["hosts"] == ["ha-ws1"]
    assert system["units"] == ["XA"] and system["approval_decision"] == "12/QĐ-UBND"
    page = client.get("/admin/systems").text
    assert "Cổng dịch vụ công huyện" in page
    # a host of another unit is refused on the form, nothing created
    r = post(client, "/admin/systems", "/admin/systems", name="x", owner="o", operator="p", level="2",
             approval_status="submitted", hosts="so-ws1", unit="HA")
    assert r.status_code == 422 and len(rt.systems.list_systems(None)) == 1
    assert post(client, f"/admin/systems/{system['id']}/edit", "/admin/systems", name="Cổng DVC", owner="UBND",
                operator="VH", level="4", approval_status="approved").status_code == 303
    assert rt.systems.get(system["id"], None)["level"] == 4
    assert post(client, f"/admin/systems/{system['id']}/retire", "/admin/systems").status_code == 303
    assert rt.systems.get(system["id"], None)["deployment_state"] == "retired"
    # the Sở's system is not another admin's to see or change
    so = rt.systems.create(__import__("soclite.control.systems", fromlist=["SystemCreate"]).SystemCreate(
        name="Hệ thống Sở", owner="Sở", operator="Sở", level=2, unit="SO"), actor="test", unit="SO", scope=None)
    assert "Hệ thống Sở" not in client.get("/admin/systems").text
    assert client.get(f"/admin/systems?edit={so['id']}").status_code == 404
    assert post(client, f"/admin/systems/{so['id']}/retire", "/admin/systems").status_code == 404
    assert post(client, f"/admin/systems/{so['id']}/edit", "/admin/systems", level="5").status_code == 404
    assert rt.systems.get(so["id"], None)["level"] == 2
    assert {"system.create", "system.update"} <= set(actions(rt))
