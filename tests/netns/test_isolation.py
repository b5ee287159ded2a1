"""Host isolation for real: network namespaces, veth pairs, the real agent and real nftables.

Topology (names unique per run)::

    [manager ns] 10.77.1.1 ──veth── 10.77.1.2 [agent ns] 10.77.2.2 ──veth── 10.77.2.1 [peer ns]

The manager namespace runs the soclite API app; the agent namespace runs ``python -m
collectors.agent``; the peer runs a plain TCP listener. The test isolates the agent through
the command channel, proves the manager is still reachable and the peer is not, simulates a
reboot (table flushed, agent restarted → isolation re-applied), releases, and proves the
peer is reachable again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns.netns_support import PEER_PORT, PYTHON, ROOT, NsLab, can_connect, in_ns, sh, wait, why_skip

MANAGER_PORT = 18080

pytestmark = pytest.mark.netns


class Lab(NsLab):
    """The manager, agent and peer namespaces; the agent's two veths join it to the other two."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.manager = f"slm{self.tag}"

    def namespaces(self) -> tuple[str, ...]:
        return (self.manager, self.agent_ns, self.peer)

    def build(self) -> None:
        for ns in self.namespaces():
            sh("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        for side, ns, net in (("m", self.manager, "1"), ("p", self.peer, "2")):
            outer, inner = f"v{side}a{self.tag}", f"v{side}b{self.tag}"
            sh(
                "ip",
                "link",
                "add",
                outer,
                "netns",
                self.agent_ns,
                "type",
                "veth",
                "peer",
                "name",
                inner,
                "netns",
                ns,
            )
            in_ns(self.agent_ns, "ip", "addr", "add", f"10.77.{net}.2/24", "dev", outer)
            in_ns(self.agent_ns, "ip", "link", "set", outer, "up")
            in_ns(ns, "ip", "addr", "add", f"10.77.{net}.1/24", "dev", inner)
            in_ns(ns, "ip", "link", "set", inner, "up")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    reason = why_skip()
    if reason:
        pytest.skip(reason)
    lab = Lab(tmp_path)
    try:
        lab.build()
        yield lab
    finally:
        lab.teardown()


def test_isolation_keeps_the_manager_cuts_the_peer_survives_restart_and_releases(
    lab: Lab, tmp_path: Path
) -> None:
    from soclite.config import Settings
    from soclite.control.agents import AgentRegistry
    from soclite.control.commands import CommandQueue
    from soclite.models import IsolationState
    from soclite.store import open_store

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server_url = f"http://10.77.1.1:{MANAGER_PORT}"
    lab.spawn(lab.manager, PYTHON, str(ROOT / "tests/netns/netns_manager_app.py"), str(data_dir), "10.77.1.1",
              str(MANAGER_PORT), log="manager.log")  # fmt: skip
    lab.spawn(lab.peer, PYTHON, "-m", "http.server", str(PEER_PORT), "--bind", "10.77.2.1", log="peer.log")
    wait(lambda: can_connect(lab.agent_ns, "10.77.1.1", MANAGER_PORT), 60, "the manager app")
    wait(lambda: can_connect(lab.agent_ns, "10.77.2.1", PEER_PORT), 20, "the peer listener")

    registry = AgentRegistry.open(data_dir)
    token = registry.create_enroll_token(unit="U1")
    registry.close()
    state_dir = tmp_path / "agent-state"
    config = tmp_path / "agent.yml"
    config.write_text(
        "heartbeat_interval: 0.5\ncommand_poll_interval: 0.5\nbackoff_initial: 0.1\nbackoff_max: 1\n"
    )
    agent_cmd = (PYTHON, "-m", "soclite.collectors.agent", "--server", server_url, "--state-dir", str(state_dir),
                 "--config", str(config))  # fmt: skip
    agent = lab.spawn(lab.agent_ns, *agent_cmd, "--enroll-token", token, log="agent.log")

    settings = Settings(environment="test", data_dir=data_dir)
    store = open_store(settings)
    queue = CommandQueue.open(data_dir, store)
    try:
        hostname = os.uname().nodename.split(".")[0].lower()  # a netns shares the UTS name
        wait(lambda: store.find_host(hostname) is not None, 30, "the agent's first heartbeat")

        cmd = queue.enqueue(hostname, "isolate", {"reason": "test"}, 600, f"isolate-{lab.tag}")
        wait(lambda: queue.get(cmd.id).status in ("done", "failed"), 30, "the isolate result")
        assert queue.get(cmd.id).status == "done", queue.get(cmd.id).detail
        host = store.get_host(hostname)
        assert host.isolation == IsolationState.ISOLATED
        assert "table inet soclite_isolation" in (host.isolation_detail or "")
        assert f"ip daddr 10.77.1.1 tcp dport {MANAGER_PORT} accept" in (host.isolation_detail or "")
        # the reported ruleset is what the kernel holds in the agent's namespace
        listed = in_ns(lab.agent_ns, "nft", "list", "table", "inet", "soclite_isolation").stdout
        assert listed == host.isolation_detail

        assert can_connect(lab.agent_ns, "10.77.1.1", MANAGER_PORT), "isolation cut the manager off"
        assert not can_connect(lab.agent_ns, "10.77.2.1", PEER_PORT), "the peer is still reachable"
        seen = store.get_host(hostname).last_seen
        wait(lambda: store.get_host(hostname).last_seen != seen, 10, "a heartbeat through the isolation")

        # "reboot": the kernel forgets the table, the agent starts again and re-applies it
        agent.terminate()
        agent.wait(10)
        in_ns(lab.agent_ns, "nft", "delete", "table", "inet", "soclite_isolation")
        assert can_connect(lab.agent_ns, "10.77.2.1", PEER_PORT)
        agent = lab.spawn(lab.agent_ns, *agent_cmd, log="agent2.log")
        wait(lambda: in_ns(lab.agent_ns, "nft", "list", "table", "inet", "soclite_isolation", check=False).returncode == 0,
             20, "isolation re-applied at start")  # fmt: skip
        assert not can_connect(lab.agent_ns, "10.77.2.1", PEER_PORT)

        rel = queue.enqueue(hostname, "release", {}, 600, f"release-{lab.tag}")
        wait(lambda: queue.get(rel.id).status in ("done", "failed"), 30, "the release result")
        assert queue.get(rel.id).status == "done", queue.get(rel.id).detail
        assert store.get_host(hostname).isolation == IsolationState.NONE
        assert (
            in_ns(lab.agent_ns, "nft", "list", "table", "inet", "soclite_isolation", check=False).returncode
            != 0
        )
        assert can_connect(lab.agent_ns, "10.77.2.1", PEER_PORT), "the peer is unreachable after release"
        assert can_connect(lab.agent_ns, "10.77.1.1", MANAGER_PORT)
    finally:
        queue.close()
        store.close()
