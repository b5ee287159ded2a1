"""The detection child's settings are exactly the parent's: its environment cannot change them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from soclite.config import Settings, load_settings
from soclite.pipeline_worker import revealed_settings, settings_from_json


def test_child_settings_ignore_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCLITE_SMTP__PASSWORD", "sent-password")
    monkeypatch.setenv("SOCLITE_SMTP__STARTTLS", "true")
    monkeypatch.setenv("SOCLITE_SMTP__USERNAME", "soc")
    parent = load_settings(environment="test", data_dir=tmp_path)
    line = orjson.dumps(revealed_settings(parent))
    monkeypatch.setenv("SOCLITE_SMTP__PASSWORD", "changed-after-sending")
    monkeypatch.setenv("SOCLITE_DATA_DIR", "/elsewhere")
    child = settings_from_json(line)
    assert isinstance(child, Settings)
    assert child.smtp.password is not None and child.smtp.password.get_secret_value() == "sent-password"
    assert child.data_dir == tmp_path
