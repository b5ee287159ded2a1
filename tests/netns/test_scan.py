"""On-demand malware scan end to end: `soclite server` (root namespace), the real agent in a network
namespace, the real clamscan with a signature database the test makes, the EICAR test file.

The API asks for a scan; the playbook worker queues the command; the agent runs clamscan, streams
the finding as an event (clamav parser → ``category: antivirus``), the correlator's antivirus rule
turns it into an alert, and the scan's state in the response queue ends "infected" with one finding.
A scan of a path that does not exist ends "error" with clamscan's reason.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.netns.netns_support import PYTHON, ROOT, RootLab, can_connect, free_port, wait, why_skip

pytestmark = pytest.mark.netns
SOCLITE = str(ROOT / ".venv" / "bin" / "soclite")
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _clamscan() -> str | None:
    """Why clamscan cannot be had (None when it is there); installs it the way `make test` does."""
    if shutil.which("clamscan"):
        return None
    subprocess.run(["bash", str(ROOT / "scripts" / "apt-ensure.sh"), "clamav"], capture_output=True, timeout=600)
    return None if shutil.which("clamscan") else "clamscan is missing and `apt-get install clamav` failed here"


class Server:
    def __init__(self, lab: RootLab, tmp: Path) -> None:
        self.data_dir = tmp / "data"
        self.port = free_port(lab.server_ip)
        self.url = f"http://{lab.server_ip}:{self.port}"
        self.env = {**os.environ, "SOCLITE_AUTH__SECRET_KEY": secrets.token_hex(32),
                    "SOCLITE_SERVER__HTTP_HOST": lab.server_ip}  # fmt: skip
        self.log = tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([SOCLITE, "server", "--data-dir", str(self.data_dir), "--http-port",
                                          str(self.port), "--syslog-port", "0"],
                                         stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("the server did not become healthy")

    def cli(self, *args: str) -> str:
        return subprocess.run([SOCLITE, *args], capture_output=True, text=True, check=True, env=self.env,
                              cwd=ROOT).stdout.strip()  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RootLab]:
    reason = why_skip() or _clamscan()
    if reason:
        pytest.skip(reason)
    lab = RootLab(tmp_path)
    try:
        lab.build()
        yield lab
    finally:
        lab.teardown()


def test_scan_asked_through_the_api_finds_eicar_on_the_agent_and_raises_an_alert(lab: RootLab, tmp_path: Path) -> None:
    server = Server(lab, tmp_path)
    server.start()
    try:
        admin = server.cli("token", "create", "--data-dir", str(server.data_dir), "--role", "admin")
        enroll = server.cli("agent", "enroll-token", "create", "--data-dir", str(server.data_dir), "--unit", "U1")
        h = {"Authorization": f"Bearer {admin}"}
        # the host's files: the EICAR test file in a user's downloads, and a clean one
        home = tmp_path / "home"
        (home / "lan" / "Downloads").mkdir(parents=True)
        (home / "lan" / "ghi-chu.txt").write_text("không có gì\n")
        sample = home / "lan" / "Downloads" / "hoa-don.com"
        sample.write_text(EICAR)
        database = tmp_path / "eicar.hdb"  # freshclam needs the internet: a signature made here, by MD5 and size
        database.write_text(f"{hashlib.md5(EICAR.encode()).hexdigest()}:{len(EICAR)}:Eicar-Test-Signature\n")
        config = tmp_path / "agent.yml"
        config.write_text("heartbeat_interval: 0.5\ncommand_poll_interval: 0.5\nbackoff_initial: 0.1\n"
                          f"backoff_max: 1\nflush_interval: 0.2\nscan:\n  database: {database}\n")  # fmt: skip
        wait(lambda: can_connect(lab.agent_ns, lab.server_ip, server.port), 30, "the server from the agent's namespace")
        lab.spawn(lab.agent_ns, PYTHON, "-m", "soclite.collectors.agent", "--server", server.url, "--state-dir",
                  str(tmp_path / "agent-state"), "--config", str(config), "--enroll-token", enroll, log="agent.log")
        hostname = os.uname().nodename.split(".")[0].lower()  # a netns shares the UTS name

        def host() -> dict[str, Any] | None:
            r = httpx.get(f"{server.url}/api/v1/hosts/{hostname}", headers=h, timeout=10)
            return r.json() if r.status_code == 200 else None

        wait(lambda: (host() or {}).get("agent") is not None, 60, "the agent's first heartbeat")
        r = httpx.post(f"{server.url}/api/v1/hosts/{hostname}/scan", headers=h, timeout=10,
                       json={"paths": [str(home)], "reason": "kiểm tra mã độc theo yêu cầu"})  # fmt: skip
        assert r.status_code == 202, r.text
        action_id = r.json()["action"]["id"]

        def scan(action: str) -> dict[str, Any]:
            data = httpx.get(f"{server.url}/api/v1/actions/{action}", headers=h, timeout=10).json()
            return dict(data.get("scan") or {})

        wait(lambda: scan(action_id).get("state") in ("infected", "clean", "error", "not_available"), 90,
             "the scan's result")  # fmt: skip
        state = scan(action_id)
        assert state["state"] == "infected" and state["findings"] == 1 and state["engine"] == "clamscan", state
        assert state["found"] == [{"path": str(sample), "signature": "Eicar-Test-Signature.UNOFFICIAL"}]
        # the queue lists it with its state too
        listed = httpx.get(f"{server.url}/api/v1/actions", params={"action": "scan_host"}, headers=h, timeout=10)
        assert [a["scan"]["state"] for a in listed.json()["items"]] == ["infected"]

        def eicar_alerts() -> list[dict[str, Any]]:
            r = httpx.get(f"{server.url}/api/v1/alerts", params={"host": hostname}, headers=h, timeout=10)
            return [a for a in r.json()["items"] if a["rule_title"] == "ClamAV EICAR Test File"]

        wait(lambda: bool(eicar_alerts()), 90, "the antivirus alert")
        [alert] = eicar_alerts()
        assert alert["unit"] == "U1" and alert["severity"] == "low"
        detail = httpx.get(f"{server.url}/api/v1/alerts/{alert['id']}", headers=h, timeout=10).json()
        event = detail.get("event") or {}
        assert event.get("Filename") == str(sample) and "Eicar" in str(event.get("Signature"))

        # a path that is not there: the scan ends in "error" with clamscan's reason, no alert
        r = httpx.post(f"{server.url}/api/v1/hosts/{hostname}/scan", headers=h, timeout=10,
                       json={"paths": [str(tmp_path / "khong-co")]})  # fmt: skip
        second = r.json()["action"]["id"]
        wait(lambda: scan(second).get("state") in ("infected", "clean", "error", "not_available"), 90, "the result")
        assert scan(second)["state"] == "error" and "clamscan exited with 2" in scan(second)["error"]
    finally:
        server.stop()
