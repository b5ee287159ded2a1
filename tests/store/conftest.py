"""The `store` fixture: every contract test runs against SQLite and against the OpenSearch API.

OpenSearch: a real cluster when OPENSEARCH_URL is set (each test gets its own
index prefix and deletes its indices and templates afterwards, so tests share a node safely), else,
outside CI only, a fresh clone of a session-wide osmem-server (the in-memory test server from PyPI).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from soclite.config import Settings, StoreSettings
from soclite.store.base import Store
from tests.opensearch_node import IN_CI, OPENSEARCH_URL, require_real_node_in_ci

__all__ = ["OPENSEARCH_URL", "opensearch_settings"]


def opensearch_settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        store=StoreSettings(
            kind="opensearch",
            opensearch_url=[url],
            opensearch_username=os.environ.get("OPENSEARCH_USERNAME"),
            opensearch_password=os.environ.get("OPENSEARCH_PASSWORD"),
            verify_certs=os.environ.get("OPENSEARCH_VERIFY_CERTS", "1") != "0",
            ca_certs=os.environ.get("OPENSEARCH_CA_CERTS") or None,
            index_prefix=f"t{uuid.uuid4().hex[:10]}",
            # plain http with credentials only to the tests' own loopback fault proxy (or a closed port)
            allow_plaintext_auth=url.startswith("http://127.0.0.1:"),
        ),
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """What only a real cluster can do (ISM, painless, data streams, rollover) needs OPENSEARCH_URL.

    In CI nothing is skipped: without OPENSEARCH_URL the `opensearch_url` fixture fails the test."""
    if OPENSEARCH_URL or IN_CI:
        return
    skip = pytest.mark.skip(reason="needs a real OpenSearch cluster: set OPENSEARCH_URL")
    for item in items:
        if "real_opensearch" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def opensearch_url(request: pytest.FixtureRequest) -> Iterator[str]:
    require_real_node_in_ci()
    if OPENSEARCH_URL:
        yield OPENSEARCH_URL
        return
    clone = request.getfixturevalue("osmem_clone")
    yield clone.url


def _make(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if kind == "sqlite":
        from soclite.store.sqlite import SQLiteStore

        return SQLiteStore(tmp_path / "events.db")
    from soclite.store.opensearch import OpenSearchStore

    url = request.getfixturevalue("opensearch_url")
    return OpenSearchStore.from_settings(opensearch_settings(url, tmp_path), refresh_events=True)


@pytest.fixture(params=["sqlite", "opensearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = _make(request.param, request, tmp_path)
    store.open()
    yield store
    if OPENSEARCH_URL and store.kind == "opensearch":
        store.drop_all()  # type: ignore[attr-defined]
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    from soclite.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "events.db")
    store.open()
    yield store
    store.close()
