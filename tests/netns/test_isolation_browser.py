"""Isolation end to end in a real browser with a real agent in a network namespace (issue 16).

An admin asks for the isolation on the hosts page, a second admin approves it in the response
queue (two-person rule), the playbook worker sends it, the real agent in its namespace applies
nftables and reads the ruleset back, and the hosts page shows the host isolated and verified with
that ruleset. Then the release goes the same way. The agent path is the netns scenario's
(:mod:`tests.netns.test_isolation`); here the server runs in this process, in the root namespace,
so chromium reaches it directly::

    [root ns: server + chromium] 10.79.N.1 ──veth── 10.79.N.2 [agent ns] 10.77.2.2 ──veth── 10.77.2.1 [peer ns]
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.control.identity import UserStore
from soclite.models import IsolationState, Unit
from soclite.playbooks.worker import Worker
from soclite.runtime import Runtime
from tests.netns.netns_support import (
    PEER_PORT,
    PYTHON,
    RootLab,
    can_connect,
    free_port,
    in_ns,
    wait,
    why_skip,
)
from tests.ui.test_ui_browser import browser, shot  # noqa: F401 - the module-scoped browser fixture

pytestmark = [pytest.mark.netns, pytest.mark.browser]
PASSWORD = "admin-password-netns"


@dataclass
class World:
    url: str
    runtime: Runtime
    agent_ns: str
    server_ip: str
    port: int
    hostname: str


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    reason = why_skip()
    if reason:
        pytest.skip(reason)
    lab = RootLab(tmp_path)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    runtime = Runtime.build(Settings(environment="test", data_dir=data_dir,
                                     auth=AuthSettings(secret_key="netns-ui-secret-0123456789", secure_cookies=False)))
    runtime.settings.response.two_person_rule = True
    runtime.store.put_unit(Unit(code="PROV", name="Tỉnh"))
    runtime.store.put_unit(Unit(code="U1", name="Sở Xây dựng", parent="PROV"))
    users = UserStore(runtime.control)
    users.add("hung", PASSWORD, role="admin", display_name="Trần Văn Hùng")
    users.add("mai", PASSWORD, role="admin", display_name="Lê Thị Mai")
    worker = Worker(runtime, poll_seconds=0.2)
    server: uvicorn.Server | None = None
    try:
        lab.build()
        port = free_port(lab.server_ip)
        server = uvicorn.Server(uvicorn.Config(create_app(runtime), host=lab.server_ip, port=port,
                                               log_level="warning"))  # fmt: skip
        threading.Thread(target=server.run, daemon=True).start()
        wait(lambda: bool(server and server.started), 30, "the server")
        worker.start()
        lab.spawn(lab.peer, PYTHON, "-m", "http.server", str(PEER_PORT), "--bind", "10.77.2.1", log="peer.log")
        wait(lambda: can_connect(lab.agent_ns, lab.server_ip, port), 30, "the server from the agent's namespace")
        wait(lambda: can_connect(lab.agent_ns, "10.77.2.1", PEER_PORT), 30, "the peer listener")
        token = runtime.agents.create_enroll_token(unit="U1")
        config = tmp_path / "agent.yml"
        config.write_text("heartbeat_interval: 0.5\ncommand_poll_interval: 0.5\nbackoff_initial: 0.1\nbackoff_max: 1\n")
        lab.spawn(lab.agent_ns, PYTHON, "-m", "soclite.collectors.agent", "--server", f"http://{lab.server_ip}:{port}",
                  "--state-dir", str(tmp_path / "agent-state"), "--config", str(config), "--enroll-token", token,
                  log="agent.log")  # fmt: skip
        hostname = os.uname().nodename.split(".")[0].lower()  # a netns shares the UTS name
        wait(lambda: runtime.store.find_host(hostname) is not None, 60, "the agent's first heartbeat")
        yield World(f"http://{lab.server_ip}:{port}", runtime, lab.agent_ns, lab.server_ip, port, hostname)
    finally:
        worker.stop()
        if server is not None:
            server.should_exit = True
        lab.teardown()
        runtime.close()


def log_in(browser: Any, world: World, user: str) -> tuple[Any, Any]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() of isolate/release
    page.goto(f"{world.url}/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()
    return context, page


def approve_in_queue(browser: Any, world: World, action: str) -> None:  # noqa: F811
    """The requester sees no approve button (two-person rule); the second admin approves."""
    [record] = [a for a in world.runtime.outbox.list_actions(action=action) if a.approved_by is None]
    context, page = log_in(browser, world, "hung")
    page.goto(f"{world.url}/actions")
    assert page.locator(f"#action-{record.id} button.approve").count() == 0
    context.close()
    context, page = log_in(browser, world, "mai")
    page.goto(f"{world.url}/actions")
    page.locator(f"#action-{record.id} button.approve").click()
    page.wait_for_load_state()
    assert world.runtime.outbox.get(record.id).approved_by == "mai"
    context.close()


def host_state(world: World) -> IsolationState:
    host = world.runtime.store.find_host(world.hostname)
    assert host is not None
    return host.isolation


def test_isolation_asked_in_the_ui_approved_in_the_queue_applied_by_the_agent_and_shown_verified(
    browser: Any, world: World  # noqa: F811
) -> None:
    host = world.runtime.store.find_host(world.hostname)
    assert host is not None
    context, page = log_in(browser, world, "hung")
    page.goto(f"{world.url}/hosts")
    row = page.locator("tr", has=page.locator(f"text={host.name}"))
    assert "Agent trực tuyến" in row.inner_text()
    row.locator("button.isolate-host").click()
    page.wait_for_url(re.compile(r".*/hosts$"))
    assert "Chờ phê duyệt cô lập" in page.locator("tr", has=page.locator(f"text={host.name}")).inner_text()
    context.close()
    assert can_connect(world.agent_ns, "10.77.2.1", PEER_PORT)  # nothing applied before the approval

    approve_in_queue(browser, world, "isolate_host")
    wait(lambda: host_state(world) in (IsolationState.ISOLATED, IsolationState.FAILED), 60, "the agent's result")
    assert host_state(world) is IsolationState.ISOLATED, world.runtime.store.find_host(world.hostname)
    assert not can_connect(world.agent_ns, "10.77.2.1", PEER_PORT), "the peer is still reachable"
    assert can_connect(world.agent_ns, world.server_ip, world.port), "isolation cut the server off"

    context, page = log_in(browser, world, "hung")
    page.goto(f"{world.url}/hosts")
    row = page.locator("tr", has=page.locator(f"text={host.name}"))
    assert "Đã cô lập" in row.locator(".iso").inner_text()
    verified = row.locator("details.iso-ruleset")
    assert "Agent đã kiểm tra" in verified.locator("summary").inner_text()
    verified.locator("summary").click()  # opens the ruleset
    ruleset = verified.locator("pre").inner_text()
    # what the page shows is what the kernel of the agent's namespace holds
    listed = in_ns(world.agent_ns, "nft", "list", "table", "inet", "soclite_isolation").stdout
    assert "table inet soclite_isolation" in ruleset and ruleset.strip() == listed.strip()
    shot(page, "30-isolation-verified-by-agent")

    # the release: asked in the UI, approved by the other admin, confirmed by the agent
    row.locator("button.release-host").click()
    page.wait_for_url(re.compile(r".*/hosts$"))
    context.close()
    approve_in_queue(browser, world, "release_host")
    wait(lambda: host_state(world) in (IsolationState.NONE, IsolationState.RELEASE_FAILED), 60, "the release")
    assert host_state(world) is IsolationState.NONE
    deadline = time.monotonic() + 10
    while not can_connect(world.agent_ns, "10.77.2.1", PEER_PORT) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert can_connect(world.agent_ns, "10.77.2.1", PEER_PORT), "the peer is unreachable after the release"
    context, page = log_in(browser, world, "hung")
    page.goto(f"{world.url}/hosts")
    assert "Chưa cô lập" in page.locator("tr", has=page.locator(f"text={host.name}")).locator(".iso").inner_text()
    context.close()
