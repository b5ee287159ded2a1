"""OpenSearch nodes of a test's own, started from the repository's scripts (the same cached 2.19.6).

For the tests that kill or stop nodes: never the shared node of OPENSEARCH_URL, which other tests use.
A machine without Java (a developer's laptop) skips them; CI (CI=true) fails instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.opensearch_node import IN_CI

ROOT = Path(__file__).resolve().parent.parent
SINGLE = ROOT / "scripts" / "opensearch.sh"
CLUSTER = ROOT / "scripts" / "opensearch-cluster.sh"
START_TIMEOUT = 240


def _require_java() -> None:
    if shutil.which("java") or os.environ.get("JAVA_HOME") or os.environ.get("OPENSEARCH_JAVA_HOME"):
        return
    if IN_CI:
        pytest.fail("CI=true: the OpenSearch cluster tests need a JDK (scripts/opensearch.sh installs one)")
    pytest.skip("no Java here: cannot start OpenSearch nodes")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, start: int) -> int:
    """The first of ``count`` consecutive free ports from ``start`` (away from 9200-9399)."""
    port = start
    while port < start + 2000:
        if all(_free(port + i) for i in range(count)):
            return port
        port += count
    raise RuntimeError(f"no {count} consecutive free ports from {start}")


@contextmanager
def _run_dir() -> Iterator[Path]:
    """A directory the nodes' user (nobody, when the tests run as root) can reach: pytest's own
    tmp_path sits under a 0700 directory."""
    path = Path(tempfile.mkdtemp(prefix="soclite-os-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        if os.environ.get("SOCLITE_KEEP_OPENSEARCH_RUN"):  # the nodes' logs, to read after a failure
            print(f"kept the OpenSearch run directory {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def _run(script: Path, args: list[str], env: dict[str, str], timeout: float = START_TIMEOUT) -> str:
    done = subprocess.run(
        ["bash", str(script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{script.name} {' '.join(args)} failed ({done.returncode}): {done.stderr[-3000:]}"
        )
    return done.stdout.strip()


@dataclass
class Cluster:
    urls: list[str]
    env: dict[str, str]

    def kill(self, node: int) -> None:
        """SIGKILL node 1-3: no shutdown, no hand-over."""
        _run(CLUSTER, ["kill", str(node)], self.env, timeout=30)


@contextmanager
def three_nodes() -> Iterator[Cluster]:
    _require_java()
    http = free_ports(3, 19201)
    with _run_dir() as run_dir:
        yield from _three_nodes(run_dir, http)


def _three_nodes(run_dir: Path, http: int) -> Iterator[Cluster]:
    env = {
        "SOCLITE_OPENSEARCH_CLUSTER_DIR": str(run_dir / "cluster"),
        "OPENSEARCH_CLUSTER_HTTP_PORT": str(http),
        "OPENSEARCH_CLUSTER_TRANSPORT_PORT": str(free_ports(3, http + 100)),
    }
    try:
        urls = _run(CLUSTER, ["start"], env).splitlines()[-1].split(",")
        yield Cluster(urls=urls, env=env)
    finally:
        _run(CLUSTER, ["stop"], env, timeout=60)


@dataclass
class Node:
    url: str
    env: dict[str, str]

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the node; ``keep_data``: for a later start with the same data (an outage, not a loss)."""
        _run(
            SINGLE,
            ["stop"],
            {**self.env, "SOCLITE_OPENSEARCH_KEEP_DATA": "1" if keep_data else "0"},
            timeout=60,
        )

    def start(self) -> None:
        """(Re)start on the same port with the data it had when stopped with ``keep_data``."""
        _run(SINGLE, ["start"], {**self.env, "SOCLITE_OPENSEARCH_KEEP_DATA": "1"})


@contextmanager
def own_node() -> Iterator[Node]:
    """A single node of this test's own (its own run directory and port), stopped at the end."""
    _require_java()
    port = free_ports(1, 19251)
    with _run_dir() as run_dir:
        env = {"SOCLITE_OPENSEARCH_RUN_DIR": str(run_dir / "node"), "OPENSEARCH_PORT": str(port),
               "OPENSEARCH_HEAP": "384m"}  # fmt: skip
        node = Node(url=f"http://127.0.0.1:{port}", env=env)
        try:
            node.start()
            yield node
        finally:
            node.stop()
