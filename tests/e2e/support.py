"""Real peers for the end-to-end scenario: `soclite server`, medallion (TAXII 2.1), an aiosmtpd sink,
a veth-connected network namespace for the agent, and a plain TCP listener standing for "another host".

Kept apart from the test so each peer's start/stop (and its log, shown when it fails) is in one place.
Every start polls for readiness with a deadline; nothing sleeps a fixed long time.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiosmtpd.controller import Controller
from taxii2client.v21 import Collection, as_pages

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SOCLITE = str(Path(sys.executable).with_name("soclite"))
T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def why_no_netns() -> str | None:
    """The reason network namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian packages iproute2, nftables)"
    probe = f"sleprobe{uuid.uuid4().hex[:6]}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
        return "`ip netns add` is not permitted here"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=60)


class AgentNamespace:
    """One namespace joined to the host (root namespace) by a veth pair on a /24 of its own.

    host side: ``host_ip`` (the manager listens there); namespace side: ``ns_ip``.
    """

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.name = f"sle{self.tag}"
        self.host_if, self.ns_if = f"veh{self.tag}", f"ven{self.tag}"
        used = sh("ip", "-4", "-o", "addr").stdout
        subnet = next(n for n in range(231, 251) if f" 10.{n}." not in used)
        self.host_ip, self.ns_ip = f"10.{subnet}.7.1", f"10.{subnet}.7.2"

    def build(self) -> None:
        sh("ip", "netns", "add", self.name)
        self.run("ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if, "netns", self.name)
        sh("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        self.run("ip", "addr", "add", f"{self.ns_ip}/24", "dev", self.ns_if)
        self.run("ip", "link", "set", self.ns_if, "up")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.name, *args, check=check)

    def can_connect(self, ip: str, port: int) -> bool:
        code = f"import socket; socket.create_connection(('{ip}', {port}), timeout=1.5).close()"
        return self.run(PYTHON, "-c", code, check=False).returncode == 0

    def destroy(self) -> None:
        # Deleting the namespace removes its veth end, which takes the host end with it.
        sh("ip", "netns", "del", self.name, check=False)
        sh("ip", "link", "del", self.host_if, check=False)


class TcpListener:
    """A plain TCP listener (accepts and closes): the "other host" isolation must cut off."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class Process:
    """A child process with its output in a log file (the tail goes into assertion messages)."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# --- medallion: the national TAXII 2.1 server ---------------------------------------------------
TAXII_USER, TAXII_PASSWORD = "tinh-mau", "e2e-taxii-secret"
PUSH = "5f1e7b0c-0000-4000-8000-0000000000e1"
PULL = "5f1e7b0c-0000-4000-8000-0000000000e2"


def _collection(cid: str, title: str) -> dict[str, Any]:
    return {"id": cid, "title": title, "description": title, "can_read": True, "can_write": True,
            "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}  # fmt: skip


def start_medallion(folder: Path) -> tuple[Process, str]:
    """medallion (memory backend, seeded from a JSON file) on 127.0.0.1; returns the process and API root."""
    port = free_port()
    root = f"http://127.0.0.1:{port}/api1/"
    data = folder / "medallion-data.json"
    data.write_text(json.dumps({
        "/discovery": {"title": "national", "description": "e2e", "default": root, "api_roots": [root]},
        "api1": {
            "information": {"title": "api1", "description": "national api root",
                            "versions": ["application/taxii+json;version=2.1"], "max_content_length": 50_000_000},
            "status": [],
            "collections": [_collection(PUSH, "alerts from provinces"), _collection(PULL, "indicators")],
        },
    }))  # fmt: skip
    config = folder / "medallion.json"
    config.write_text(json.dumps({
        "users": {TAXII_USER: TAXII_PASSWORD},
        "taxii": {"max_page_size": 100},
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                    "filename": str(data)},
    }))  # fmt: skip
    proc = Process(
        [PYTHON, "-m", "medallion.scripts.run", "--host", "127.0.0.1", "--port", str(port), str(config)],
        folder / "medallion.log",
    )

    def up() -> bool:
        assert proc.alive(), "medallion exited: " + proc.tail()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    try:
        wait_for(up, 30, "medallion to listen")
    except BaseException:
        proc.stop()
        raise
    return proc, root


def taxii_objects(api_root: str) -> list[dict[str, Any]]:
    collection = Collection(f"{api_root}collections/{PUSH}/", user=TAXII_USER, password=TAXII_PASSWORD)
    found: list[dict[str, Any]] = []
    for page in as_pages(collection.get_objects, per_request=100):
        found.extend(page.get("objects", []))
    return found


# --- aiosmtpd: the duty team's mail server ------------------------------------------------------
class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


def start_smtp() -> tuple[Controller, Inbox, int]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox, port


# --- the soclite server and its API ------------------------------------------------------------
def start_server(config: Path, data_dir: Path, base: str, log: Path, env: dict[str, str]) -> Process:
    proc = Process([SOCLITE, "server", "--config", str(config), "--data-dir", str(data_dir)], log, env)

    def healthy() -> bool:
        assert proc.alive(), "soclite server exited: " + proc.tail()
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 90, "soclite server /health", interval=0.2)
    except BaseException:
        proc.stop()
        raise
    return proc


def cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([SOCLITE, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, f"soclite {' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip()


class Api:
    """The REST API as an admin sees it (bearer token)."""

    def __init__(self, base: str, token: str) -> None:
        self.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=15)

    def get(self, path: str, **params: Any) -> Any:
        resp = self.client.get(path, params=params)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: Any = None) -> Any:
        resp = self.client.post(path, json=body)
        assert resp.status_code < 300, f"POST {path}: {resp.status_code} {resp.text}"
        return resp.json()

    def close(self) -> None:
        self.client.close()
