"""Fixtures of the API tests: a real runtime (SQLite store, control DB) in a temp dir, seeded through the store.

Units: PROV (province) → SO (department), HA (district) → HA-XA (commune).
Each leaf unit gets its own hosts, events and alerts, so scope leaks show up as
foreign ids in a response.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # starlette asks for its httpx fork (httpx2); plain httpx works the same for these tests.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from soclite.api.app import create_app
from soclite.config import AuthSettings, Settings
from soclite.models import Alert, Host, HostType, Level, Unit, fingerprint, new_id, severity_of
from soclite.runtime import Runtime

BASE = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
UNITS = [Unit(code="PROV", name="Tỉnh"), Unit(code="SO", name="Sở TT&TT", parent="PROV"),
         Unit(code="HA", name="Huyện A", parent="PROV"), Unit(code="HA-XA", name="Xã A1", parent="HA")]
LEVELS = [Level.CRITICAL, Level.HIGH, Level.MEDIUM, Level.LOW, Level.INFORMATIONAL]


def make_settings(tmp_path: Path, **auth: Any) -> Settings:
    return Settings(
        environment="test", data_dir=tmp_path,
        auth=AuthSettings(secret_key="test-secret-key-0123456789", secure_cookies=False, **auth),
    )


def seed(runtime: Runtime, per_unit: int = 6) -> dict[str, list[str]]:
    """Units, one server + one workstation per leaf unit, events and alerts; returns alert ids by unit."""
    store = runtime.store
    for unit in UNITS:
        store.put_unit(unit)
    by_unit: dict[str, list[str]] = {}
    alerts: list[Alert] = []
    events: list[dict[str, Any]] = []
    for unit in ("SO", "HA", "HA-XA"):
        for kind in (HostType.SERVER, HostType.WORKSTATION):
            name = f"{unit.lower()}-{kind.value[:3]}"
            store.put_host(Host(id=name, name=name.upper(), type=kind, unit=unit, os="linux",
                                ips=[f"10.0.{len(by_unit)}.{1 if kind is HostType.SERVER else 2}"],
                                last_seen=datetime.now(UTC) if kind is HostType.SERVER else BASE))
        for i in range(per_unit):
            host = f"{unit.lower()}-{'ser' if i % 2 == 0 else 'wor'}"
            ts = BASE + timedelta(hours=i)
            event_id = new_id()
            events.append({"@timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "event.id": event_id,
                           "host.name": host, "soclite.unit": unit, "event.original": f"marker-{unit} powershell -enc {i}",
                           "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                           "CommandLine": f"powershell -enc {i}", "logsource.product": "windows",
                           "logsource.category": "process_creation"})
            level = LEVELS[i % len(LEVELS)]
            rule = f"rule-{i % 3}"
            alert = Alert(fingerprint=fingerprint(rule, host, {"u": unit, "i": i}), rule_id=rule,
                          rule_title=f"Suspicious PowerShell {i % 3} marker-{unit}", level=level,
                          severity=severity_of(level), host=host, unit=unit, first_seen=ts, last_seen=ts,
                          event_ids=[event_id], event=events[-1], tags=["attack.t1059.001"])
            alerts.append(alert)
            by_unit.setdefault(unit, []).append(alert.id)
    store.write_events(events)
    store.put_alerts(alerts)
    return by_unit


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.build(make_settings(tmp_path))
    yield rt
    rt.close()


@pytest.fixture
def seeded(runtime: Runtime) -> dict[str, list[str]]:
    return seed(runtime)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as c:
        yield c


@pytest.fixture
def tokens(runtime: Runtime) -> dict[str, str]:
    ident = runtime.identity
    return {
        "admin": ident.create_token(role="admin", name="root"),
        "analyst": ident.create_token(role="analyst", name="ana"),
        "viewer": ident.create_token(role="viewer", name="leader"),
        "auditor": ident.create_token(role="auditor", name="aud"),
        "agent": ident.create_token(role="agent", name="agent-1", unit="HA"),
        "analyst_ha": ident.create_token(role="analyst", unit="HA", name="ana-ha"),
        "viewer_so": ident.create_token(role="viewer", unit="SO", name="view-so"),
        "auditor_so": ident.create_token(role="auditor", unit="SO", name="aud-so"),
        "admin_ha": ident.create_token(role="admin", unit="HA", name="admin-ha"),
    }


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
