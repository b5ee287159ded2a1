"""The response queue page and the UI's isolation requests, without a browser (TestClient, real app)."""

from __future__ import annotations

import re
from typing import Any

from soclite.control.identity import UserStore
from soclite.control.outbox import ActionStatus
from soclite.models import Host, HostType
from soclite.runtime import Runtime
from tests.ui.test_ui_pages import PASSWORD, app_client, login  # noqa: F401 - the fixture

Client = Any


def csrf_of(client: Client, path: str = "/actions") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_isolating_a_host_without_an_agent_from_the_ui_is_refused(
    app_client: tuple[Any, Runtime, str],  # noqa: F811 - the fixture
) -> None:
    client, rt, _alert = app_client
    rt.store.put_host(Host(id="ws2", name="WS2", type=HostType.WORKSTATION, unit="SO"))
    login(client, "admin")
    hosts = client.get("/hosts").text
    assert "No agent" in hosts or "Không có agent" in hosts
    r = client.post("/hosts/ws2/isolate", data={"csrf_token": csrf_of(client), "reason": "x"})
    assert r.status_code == 409
    assert "chưa đăng ký agent" in r.text  # the reason, in Vietnamese (the default language)
    assert rt.outbox.list_actions() == [] and rt.store.get_host("ws2").isolation == "none"


def test_queue_shows_the_request_and_another_admin_approves_it_under_the_two_person_rule(
    app_client: tuple[Any, Runtime, str],  # noqa: F811 - the fixture
) -> None:
    client, rt, _alert = app_client
    rt.settings.response.two_person_rule = True
    UserStore(rt.control).add("admin2", PASSWORD, role="admin")
    login(client, "admin")
    assert client.post("/hosts/ws1/isolate", data={"csrf_token": csrf_of(client), "reason": "worm"},
                       follow_redirects=False).status_code == 303  # fmt: skip
    [action] = rt.outbox.list_actions()
    page = client.get("/actions").text
    assert f'id="action-{action.id}"' in page and "needs another admin" not in page  # vi by default
    assert "cần quản trị viên khác duyệt" in page
    # posting the approval anyway is refused, and nothing moves
    r = client.post(f"/actions/{action.id}/approve", data={"csrf_token": csrf_of(client)})
    assert r.status_code == 403 and "Quy tắc hai người" in r.text
    assert rt.outbox.get(action.id).status == ActionStatus.AWAITING_APPROVAL
    client.post("/logout")
    login(client, "admin2")
    r = client.post(f"/actions/{action.id}/approve", data={"csrf_token": csrf_of(client)}, follow_redirects=False)
    assert r.status_code == 303
    after = rt.outbox.get(action.id)
    assert after.status == ActionStatus.PENDING and after.approved_by == "admin2"
    assert rt.store.get_host("ws1").isolation == "requested"
    history = client.get("/actions").text
    assert "approved by admin2" in history


def test_reject_needs_a_reason_and_viewers_cannot_change_the_queue(
    app_client: tuple[Any, Runtime, str],  # noqa: F811 - the fixture
) -> None:
    client, rt, _alert = app_client
    login(client, "admin")
    client.post("/hosts/ws1/isolate", data={"csrf_token": csrf_of(client), "reason": "worm"})
    [action] = rt.outbox.list_actions()
    assert client.post(f"/actions/{action.id}/reject", data={"csrf_token": csrf_of(client)}).status_code == 422
    client.post("/logout")
    login(client, "viewer")
    page = client.get("/actions").text
    assert f'id="action-{action.id}"' in page and f'/actions/{action.id}/approve' not in page
    assert client.post(f"/actions/{action.id}/approve", data={"csrf_token": csrf_of(client)}).status_code == 403
    client.post("/logout")
    login(client, "admin")
    r = client.post(f"/actions/{action.id}/reject", data={"csrf_token": csrf_of(client), "reason": "false positive"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and rt.outbox.get(action.id).status == ActionStatus.REJECTED
    assert rt.store.get_host("ws1").isolation == "none"


def test_an_analyst_asks_for_a_malware_scan_and_the_queue_shows_its_state(
    app_client: tuple[Any, Runtime, str],  # noqa: F811 - the fixture
) -> None:
    from soclite.playbooks.worker import Worker

    client, rt, _alert = app_client
    login(client, "analyst")
    assert 'action="/hosts/ws1/scan"' in client.get("/hosts").text
    csrf = csrf_of(client)
    r = client.post("/hosts/ws1/scan", data={"csrf_token": csrf, "paths": "home\n"})
    assert r.status_code == 422 and "đường dẫn tuyệt đối" in r.text
    r = client.post("/hosts/ws1/scan", data={"csrf_token": csrf, "paths": "/home\n/tmp\n"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/actions"
    [action] = rt.outbox.list_actions(action="scan_host")
    assert action.params["paths"] == ["/home", "/tmp"] and action.status == ActionStatus.PENDING  # no approval
    assert "Quét: chưa gửi" in client.get("/actions").text
    Worker(rt).run_once()
    page = client.get("/actions").text
    assert "Quét: đang chờ agent" in page
    assert rt.store.get_host("ws1").isolation == "none"  # a scan is not an isolation
    client.post("/logout")
    login(client, "viewer")
    r = client.post("/hosts/ws1/scan", data={"csrf_token": csrf_of(client, "/hosts"), "paths": "/home"})
    assert r.status_code == 403 and len(rt.outbox.list_actions(action="scan_host")) == 1
