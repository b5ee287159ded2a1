"""Fixtures for the playbook tests: a real runtime (SQLite store, outbox, agent command queue)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soclite.runtime import Runtime
from tests.playbooks.support import build_runtime, make_settings


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(make_settings(tmp_path))
    yield rt
    rt.outbox.close()
    rt.commands.close()
    rt.close()
