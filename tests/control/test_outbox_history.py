"""The connector's up/down history in control.db and the downtime computed from it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from soclite.control.outbox import OutboxStore as Outbox


def _t(hour: int, minute: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_transitions_and_downtime(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "control.db")
    try:
        up = outbox.connector_update
        up("taxii", last_heartbeat=_iso(_t(0)))
        up("taxii", last_success=_iso(_t(1)))  # still up: no new transition
        up("taxii", last_error="ConnectError", last_error_at=_iso(_t(2)))  # down at the first failure
        up("taxii", last_error="ConnectError", last_error_at=_iso(_t(2, 30)))  # still down
        up("taxii", last_success=_iso(_t(4)))  # up at the next success: 2 h down
        up("taxii", last_error="refused: HTTP 400", last_error_at=_iso(_t(5)), reachable=True)  # no outage
        up("taxii", last_error="pull: HTTP 503", last_error_at=_iso(_t(22, day=10)))  # still down at "now"
        assert [(e.state, e.at) for e in outbox.connector_events("taxii")] == [
            ("up", _iso(_t(0))),
            ("down", _iso(_t(2))),
            ("up", _iso(_t(4))),
            ("down", _iso(_t(22))),
        ]
        now = _t(23, day=10)
        seconds, outages = outbox.connector_downtime("taxii", _t(0), _t(0, day=11), now)
        assert seconds == pytest.approx(3 * 3600) and outages == 2  # 2 h + 1 h up to now
        seconds, outages = outbox.connector_downtime("taxii", _t(3), _t(12), now)  # cuts the first outage
        assert seconds == pytest.approx(3600) and outages == 1
        assert outbox.connector_downtime("taxii", _t(5), _t(21), now) == (0.0, 0)
        assert outbox.connector_downtime("signed_json", _t(0), _t(23), now) == (0.0, 0)  # never seen
        assert outbox.connector_events("signed_json") == []
    finally:
        outbox.close()


def test_ioc_receipt_times_only_for_new_values(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "control.db")
    try:
        before = datetime.now(UTC)
        outbox.add_ioc_values("national:ip", "ip", ["198.51.100.1", "198.51.100.2"], source_id="s1")
        outbox.add_ioc_values("national:ip", "ip", ["198.51.100.2"], source_id="s2")  # already held
        outbox.add_ioc_values("playbook:x", "ip", ["198.51.100.3"])  # not from the national system
        after = datetime.now(UTC).replace(microsecond=999999)
        assert outbox.iocs_received_between(before.replace(microsecond=0), after) == 2
        assert outbox.iocs_received_between(before.replace(microsecond=0), after, prefix="playbook:") == 1
        outbox.remove_ioc_source("national:ip", "s1")
        outbox.add_ioc_values(
            "national:ip", "ip", ["198.51.100.1"], source_id="s3"
        )  # back again: received again
        assert outbox.iocs_received_between(before.replace(microsecond=0), after.replace(year=2100)) == 3
    finally:
        outbox.close()
