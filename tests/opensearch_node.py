"""Which OpenSearch the OpenSearch tests talk to.

A real node when OPENSEARCH_URL is set (`make test` starts one: scripts/with-opensearch.sh); otherwise,
on a developer's machine only, osmem-server (the in-memory imitation). In CI (CI=true) a missing node
fails those tests instead of quietly testing the imitation or skipping.
"""

from __future__ import annotations

import os

import pytest

OPENSEARCH_URL = os.environ.get("OPENSEARCH_URL") or None
IN_CI = os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_real_node_in_ci() -> None:
    """Fail the calling test in CI when no real node is configured."""
    if IN_CI and not OPENSEARCH_URL:
        pytest.fail(
            "CI=true: the OpenSearch tests need a real node; set OPENSEARCH_URL (`make test` starts one)",
            pytrace=False,
        )
