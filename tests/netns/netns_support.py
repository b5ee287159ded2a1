"""What the netns tests share: the skip check, running commands in a namespace, waiting for a condition (the
skip check, ``sh``, ``free_port`` and ``wait`` are tests/e2e/support.py's, which the e2e scenario uses), and
the labs. ``Lab`` (test_isolation) has its own manager namespace; ``RootLab`` (the browser and scan tests) runs
the server in the root namespace, where chromium and the test run::

    [root ns: server] 10.79.N.1 ──veth── 10.79.N.2 [agent ns] 10.77.2.2 ──veth── 10.77.2.1 [peer ns]
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from tests.e2e.support import PYTHON, ROOT, free_port, sh, why_no_netns
from tests.e2e.support import wait_for as wait

__all__ = ["PEER_PORT", "PYTHON", "ROOT", "NsLab", "RootLab", "can_connect", "free_port", "in_ns", "sh", "wait",
           "why_skip"]

PEER_PORT = 19090
why_skip = why_no_netns


def in_ns(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *args, check=check)


def can_connect(ns: str, ip: str, port: int) -> bool:
    code = f"import socket; socket.create_connection(('{ip}', {port}), timeout=1.5).close()"
    return in_ns(ns, PYTHON, "-c", code, check=False).returncode == 0


class NsLab:
    """Namespaces named by one tag, the processes started in them; ``teardown`` ends both."""

    def __init__(self, tmp: Path) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.agent_ns, self.peer = f"sla{self.tag}", f"slp{self.tag}"
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def namespaces(self) -> tuple[str, ...]:
        return (self.agent_ns, self.peer)

    def spawn(self, ns: str, *args: str, log: str) -> subprocess.Popen[bytes]:
        out = open(self.tmp / log, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
        out.close()
        self.procs.append(proc)
        return proc

    def teardown(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for ns in self.namespaces():  # deleting the agent's namespace removes the root end of its veth
            sh("ip", "netns", "del", ns, check=False)


def _free_subnet() -> int:
    """A 10.79.N.0/24 no interface of the root namespace uses (other runs may hold theirs)."""
    taken = sh("ip", "-4", "-o", "addr").stdout
    for _ in range(50):
        n = int.from_bytes(os.urandom(1)) % 200 + 20
        if f"10.79.{n}." not in taken:
            return n
    raise RuntimeError("no free 10.79.N.0/24 in the root namespace")


class RootLab(NsLab):
    """The agent and peer namespaces, the agent's uplink ending in the root namespace."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.net = _free_subnet()
        self.server_ip = f"10.79.{self.net}.1"

    def build(self) -> None:
        for ns in (self.agent_ns, self.peer):
            sh("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        root_if, agent_if = f"vr{self.tag}", f"vra{self.tag}"
        sh("ip", "link", "add", root_if, "type", "veth", "peer", "name", agent_if, "netns", self.agent_ns)
        sh("ip", "addr", "add", f"{self.server_ip}/24", "dev", root_if)
        sh("ip", "link", "set", root_if, "up")
        in_ns(self.agent_ns, "ip", "addr", "add", f"10.79.{self.net}.2/24", "dev", agent_if)
        in_ns(self.agent_ns, "ip", "link", "set", agent_if, "up")
        outer, inner = f"vpa{self.tag}", f"vpb{self.tag}"
        sh("ip", "link", "add", outer, "netns", self.agent_ns, "type", "veth", "peer", "name", inner,
           "netns", self.peer)  # fmt: skip
        in_ns(self.agent_ns, "ip", "addr", "add", "10.77.2.2/24", "dev", outer)
        in_ns(self.agent_ns, "ip", "link", "set", outer, "up")
        in_ns(self.peer, "ip", "addr", "add", "10.77.2.1/24", "dev", inner)
        in_ns(self.peer, "ip", "link", "set", inner, "up")
