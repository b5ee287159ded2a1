"""A known data set written through the Store contract: August 2024 (ICT) plus July, September and edges.

Counts are random but seeded, and the tests never trust them: every figure in
a report is compared with a fresh query of the store.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from soclite.models import (
    Alert,
    AlertStatus,
    AuditEntry,
    Host,
    HostType,
    IsolationState,
    Level,
    Unit,
    fingerprint,
    severity_of,
)
from soclite.store.base import Store

ICT = timedelta(hours=7)
#: 1 August 2024 00:00 in Asia/Ho_Chi_Minh, in UTC
AUG_START = datetime(2024, 7, 31, 17, 0, tzinfo=UTC)
SEP_START = datetime(2024, 8, 31, 17, 0, tzinfo=UTC)
JUL_START = datetime(2024, 6, 30, 17, 0, tzinfo=UTC)

UNITS = [
    Unit(code="tinh", name="Tỉnh mẫu"),
    Unit(code="stttt", name="Sở Thông tin và Truyền thông", parent="tinh"),
    Unit(code="syt", name="Sở Y tế", parent="tinh"),
    Unit(code="bvdk", name="Bệnh viện Đa khoa tỉnh", parent="syt"),
    Unit(code="ubnd-hx", name="UBND huyện Xuân Lộc", parent="tinh"),
]
LEAF_UNITS = ["stttt", "syt", "bvdk", "ubnd-hx"]
RULES = [
    ("win-mimikatz", "Phát hiện Mimikatz", "critical", ["attack.credential_access", "attack.t1003"]),
    ("win-psexec", "Thực thi từ xa bằng PsExec", "high", ["attack.lateral_movement", "attack.execution"]),
    ("lnx-ssh-brute", "Dò mật khẩu SSH", "medium", ["attack.credential_access", "attack.t1110"]),
    ("win-encoded-ps", "PowerShell mã hoá lệnh", "high", ["attack.execution", "attack.defense_evasion"]),
    ("net-scan", "Quét cổng từ bên ngoài", "low", ["attack.discovery"]),
    ("av-detect", "Phần mềm diệt virus phát hiện mã độc", "high", ["attack.execution"]),
    ("info-login", "Đăng nhập ngoài giờ", "informational", []),
    ("ioc:national:ip", "Kết nối tới IP độc hại (IoC)", "medium", ["attack.command_and_control"]),
]
HOSTS = [f"srv-{i:02d}" for i in range(4)] + [f"pc-{i:03d}" for i in range(9)]


def _alert(rng: random.Random, i: int, last_seen: datetime) -> Alert:
    rule_id, title, level, tags = rng.choice(RULES)
    host = rng.choice(HOSTS)
    unit = rng.choice([*LEAF_UNITS, None]) if rng.random() < 0.97 else None
    first_seen = last_seen - timedelta(minutes=rng.randint(0, 600))
    status = rng.choice(list(AlertStatus))
    ack = closed = None
    if status != AlertStatus.NEW:
        ack = first_seen + timedelta(minutes=rng.randint(1, 300))
    if status in (AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE):
        closed = (ack or first_seen) + timedelta(minutes=rng.randint(1, 6000))
    event = {"host.name": host, "event.id": f"ev{i}", "logsource.category": "antivirus" if rule_id == "av-detect" else "process_creation"}
    return Alert(
        id=f"a{i:06d}",
        fingerprint=fingerprint(rule_id, host, {"i": i}),
        rule_id=rule_id,
        rule_title=title,
        level=Level(level),
        severity=severity_of(level),
        status=status,
        host=host,
        unit=unit,
        first_seen=first_seen,
        last_seen=last_seen,
        count=rng.randint(1, 5),
        event_ids=[f"ev{i}"],
        event=event,
        tags=list(tags),
        kind="ioc" if rule_id.startswith("ioc:") else "sigma",
        acknowledged_at=ack,
        closed_at=closed,
    )


def seed(store: Store, *, august: int = 1100, seed_value: int = 7) -> None:
    """Write units, hosts, audit entries and alerts; ``august`` alerts fall in August 2024 (ICT)."""
    rng = random.Random(seed_value)
    for unit in UNITS:
        store.put_unit(unit)
    for n, name in enumerate(HOSTS):
        store.put_host(
            Host(
                id=name,
                name=name.upper(),
                type=HostType.SERVER if name.startswith("srv") else HostType.WORKSTATION,
                unit=LEAF_UNITS[n % len(LEAF_UNITS)],
                agent_id=f"ag{n}" if n % 5 else None,
                # some agents last reported before August: not active in the period
                last_seen=AUG_START + timedelta(days=3) if n % 3 else AUG_START - timedelta(days=10),
                isolation=IsolationState.ISOLATED if n == 2 else IsolationState.NONE,
            )
        )
    alerts: list[Alert] = []
    span = (SEP_START - AUG_START).total_seconds()
    for i in range(august):
        alerts.append(_alert(rng, i, AUG_START + timedelta(seconds=rng.uniform(0, span - 1))))
    # edges: 00:30 ICT on 1 August is in August (17:30 UTC on 31 July) ...
    alerts.append(_alert(rng, 900001, AUG_START + timedelta(minutes=30)))
    # ... 23:30 ICT on 31 July and 00:30 ICT on 1 September are not
    alerts.append(_alert(rng, 900002, AUG_START - timedelta(minutes=30)))
    alerts.append(_alert(rng, 900003, SEP_START + timedelta(minutes=30)))
    for i in range(120):  # July: the previous period of the comparison
        alerts.append(_alert(rng, 800000 + i, JUL_START + timedelta(days=rng.uniform(0, 30.9))))
    for i in range(40):  # September
        alerts.append(_alert(rng, 700000 + i, SEP_START + timedelta(days=rng.uniform(0.1, 29))))
    for start in range(0, len(alerts), 500):
        store.put_alerts(alerts[start : start + 500])
    for day, action, unit in ((3, "host.isolate", "syt"), (9, "host.isolate", "stttt"), (10, "host.release", "syt"),
                              (40, "host.isolate", "syt")):
        store.append_audit(
            AuditEntry(at=AUG_START + timedelta(days=day), actor="admin", action=action, target="pc-001", unit=unit)
        )
