"""Fixtures: a seeded store per backend (SQLite and the OpenSearch API via osmem-server), built once per module.

OpenSearch: a real cluster when OPENSEARCH_URL is set, else a clone of the
session-wide osmem-server (same arrangement as tests/store/conftest.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from soclite.config import Settings, StoreSettings
from soclite.store.base import Store
from tests.opensearch_node import OPENSEARCH_URL, require_real_node_in_ci
from tests.reports.seed import seed

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reports"


@dataclass
class Seeded:
    store: Store
    settings: Settings
    data_dir: Path


def make_settings(data_dir: Path, kind: str = "sqlite", url: str | None = None, **extra: Any) -> Settings:
    store = StoreSettings(kind="sqlite")
    if kind == "opensearch":
        store = StoreSettings(
            kind="opensearch",
            opensearch_url=[url or ""],
            opensearch_username=os.environ.get("OPENSEARCH_USERNAME"),
            opensearch_password=os.environ.get("OPENSEARCH_PASSWORD"),
            verify_certs=os.environ.get("OPENSEARCH_VERIFY_CERTS", "1") != "0",
            ca_certs=os.environ.get("OPENSEARCH_CA_CERTS") or None,
            index_prefix=f"r{uuid.uuid4().hex[:10]}",
        )
    return Settings(environment="test", data_dir=data_dir, store=store, **extra)


@pytest.fixture(scope="module", params=["sqlite", "opensearch"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    data_dir = tmp_path_factory.mktemp(f"rep-{request.param}")
    clone = None
    if request.param == "sqlite":
        from soclite.store.sqlite import SQLiteStore

        settings = make_settings(data_dir)
        store: Store = SQLiteStore.from_settings(settings)
    else:
        from soclite.store.opensearch import OpenSearchStore

        require_real_node_in_ci()
        url = OPENSEARCH_URL
        if not url:
            clone = request.getfixturevalue("osmem_server").clone()
            url = clone.url
        settings = make_settings(data_dir, "opensearch", url)
        store = OpenSearchStore.from_settings(settings, refresh_events=True)
    store.open()
    seed(store)
    yield Seeded(store=store, settings=settings, data_dir=data_dir)
    if OPENSEARCH_URL and store.kind == "opensearch":
        store.drop_all()  # type: ignore[attr-defined]
    store.close()
    if clone is not None:
        clone.close()
