"""The OpenSearch cluster as a whole: the client, replicas, health and the ISM retention policy.

Health is read from ``_cluster/health`` with a short timeout: ``green`` (every shard and replica
placed), ``yellow`` (every primary placed, some replicas not: one more lost node may lose data),
``red`` (a primary is missing: writes to its index fail and wait), or unreachable. The store's
``health()`` turns that into the check ``/health`` and the UI show (degraded unless green).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError as OSNotFoundError
from opensearchpy.exceptions import TransportError

from soclite.store import _os_mappings as m

if TYPE_CHECKING:
    from soclite.config import StoreSettings

log = logging.getLogger(__name__)

#: seconds a health probe may take: /health must answer even when the cluster does not
HEALTH_TIMEOUT = 3


@dataclass(frozen=True)
class ClusterHealth:
    """What ``/health`` says of the cluster: status green|yellow|red|unreachable, with its nodes."""

    status: str
    nodes: int = 0
    data_nodes: int = 0
    unassigned_shards: int = 0
    error: str | None = None

    @property
    def problem(self) -> str | None:
        """Why the cluster is not healthy (None when green)."""
        if self.status == "green":
            return None
        if self.status == "unreachable":
            return f"OpenSearch cluster unreachable: {self.error}; event storage waits, alerts are spooled locally"
        return (
            f"OpenSearch cluster {self.status}: {self.nodes} node(s), {self.data_nodes} data node(s), "
            f"{self.unassigned_shards} shard(s) unassigned"
            + (" (a primary is missing: writes to its index wait)" if self.status == "red" else "")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "nodes": self.nodes,
            "data_nodes": self.data_nodes,
            "unassigned_shards": self.unassigned_shards,
            "error": self.error,
        }


def build_client(s: StoreSettings) -> OpenSearch:
    auth = None
    if s.opensearch_username:
        password = s.opensearch_password.get_secret_value() if s.opensearch_password else ""
        auth = (s.opensearch_username, password)
    return OpenSearch(
        hosts=s.opensearch_url,
        http_auth=auth,
        verify_certs=s.verify_certs,
        ca_certs=str(s.ca_certs) if s.ca_certs else None,
        timeout=30,
        # every node of the list is tried before a request fails: one lost node is not an outage
        max_retries=max(2, len(s.opensearch_url)),
        retry_on_timeout=True,
    )


def cluster_health(client: OpenSearch) -> ClusterHealth:
    try:
        found = client.cluster.health(
            params={"timeout": f"{HEALTH_TIMEOUT}s", "request_timeout": HEALTH_TIMEOUT}
        )
    except (TransportError, OSConnectionError) as exc:
        return ClusterHealth(status="unreachable", error=str(exc)[:300])
    return ClusterHealth(
        status=str(found.get("status", "red")),
        nodes=int(found.get("number_of_nodes", 0)),
        data_nodes=int(found.get("number_of_data_nodes", 0)),
        unassigned_shards=int(found.get("unassigned_shards", 0)),
    )


def resolve_replicas(client: OpenSearch, configured: int | None) -> int:
    """The configured replica count, or 1 on a cluster of two or more data nodes and 0 on one."""
    if configured is not None:
        return configured
    health = cluster_health(client)
    return 1 if health.data_nodes >= 2 else 0


def install_ism(client: OpenSearch, prefix: str, retention_days: int) -> bool:
    """Install the retention policy when the ISM plugin answers; a cluster without it is fine."""
    try:
        # "ignore" keeps opensearch-py from logging a warning on every start against a cluster
        # without the plugin: its absence is expected, not a failure.
        probe = client.transport.perform_request(
            "GET", "/_plugins/_ism/policies", params={"ignore": [400, 404, 405, 501]}
        )
    except TransportError:
        return False
    if not isinstance(probe, dict) or "error" in probe:
        return False
    policy_id = f"{prefix}-events-retention"
    body = m.ism_policy(prefix, retention_days)
    try:
        current = client.transport.perform_request("GET", f"/_plugins/_ism/policies/{policy_id}")
        params = {"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
        client.transport.perform_request(
            "PUT", f"/_plugins/_ism/policies/{policy_id}", body=body, params=params
        )
    except OSNotFoundError:
        client.transport.perform_request("PUT", f"/_plugins/_ism/policies/{policy_id}", body=body)
    return True
