"""What the store says, computed independently of soclite.reports (plain loops over the Store contract)."""

from __future__ import annotations

import html as html_lib
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from soclite.store.base import AlertQuery, HostQuery, Store

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
TACTICS = ["reconnaissance", "resource_development", "initial_access", "execution", "persistence", "privilege_escalation", "defense_evasion", "credential_access", "discovery", "lateral_movement", "collection", "command_and_control", "exfiltration", "impact"]


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    nxt = (year + month // 12, month % 12 + 1)
    return datetime(year, month, 1, tzinfo=ZONE), datetime(nxt[0], nxt[1], 1, tzinfo=ZONE)


def all_alerts(store: Store, query: AlertQuery) -> list[Any]:
    out: list[Any] = []
    query.limit = 400
    while True:
        page = store.query_alerts(query)
        out.extend(page.items)
        if not page.next:
            return out
        query.cursor = page.next


def expected_figures(
    store: Store, start: datetime, end: datetime, prev: tuple[datetime, datetime], units: frozenset[str] | None,
    as_of: datetime, sla: dict[str, int], data_dir: Path | None = None,
) -> dict[str, int]:
    def count(**kw: Any) -> int:
        return store.count_alerts(AlertQuery(start=start, end=end, units=units, **kw))["total"]

    exp: dict[str, int] = {
        "total": count(),
        "high": count(severity=["high"]),
        "medium": count(severity=["medium"]),
        "low": count(severity=["low"]),
        "medium_low": count(severity=["medium", "low"]),
        "handling.handled": count(status=["resolved"]),
        "handling.false_positive": count(status=["false_positive"]),
        "handling.unhandled": count(status=["new", "acknowledged", "in_progress"]),
        "incidents": count(severity=["high"]),
    }
    for sev in ("high", "medium", "low"):
        exp[f"previous.{sev}"] = store.count_alerts(
            AlertQuery(start=prev[0], end=prev[1], units=units, severity=[sev])
        )["total"]
    exp["previous_total"] = store.count_alerts(AlertQuery(start=prev[0], end=prev[1], units=units))["total"]

    alerts = all_alerts(store, AlertQuery(start=start, end=end, units=units))
    assert len(alerts) == exp["total"]
    on_time = late = untagged = malware = 0
    per: dict[str, int] = {}
    for a in alerts:
        deadline = sla[a.severity.value] * 60
        closed = a.status.value in ("resolved", "false_positive")
        if closed and a.closed_at is not None:
            is_late = (a.closed_at - a.first_seen).total_seconds() > deadline * 1.0
        else:
            is_late = not closed and (as_of - a.first_seen).total_seconds() > deadline
        late += is_late
        on_time += closed and not is_late
        tactic_tags = [t for t in a.tags if t.startswith("attack.") and t[7:] in TACTICS]
        untagged += not tactic_tags
        for tag in tactic_tags:
            per[f"tactic.{tag[7:]}"] = per.get(f"tactic.{tag[7:]}", 0) + 1
        per[f"unit.{a.unit or ''}"] = per.get(f"unit.{a.unit or ''}", 0) + 1
        per[f"rule.{a.rule_id}"] = per.get(f"rule.{a.rule_id}", 0) + 1
        per[f"host.{a.host or ''}"] = per.get(f"host.{a.host or ''}", 0) + 1
        malware += a.event.get("logsource.category") == "antivirus"
    exp.update(per)
    exp.update({"handling.on_time": on_time, "handling.late": late, "tactic.untagged": untagged, "malware": malware})

    hosts: list[Any] = []
    cursor = None
    while True:
        page = store.query_hosts(HostQuery(units=units, limit=5, cursor=cursor))
        hosts.extend(page.items)
        if not page.next:
            break
        cursor = page.next
    exp["scope.servers"] = sum(h.type.value == "server" for h in hosts)
    exp["scope.workstations"] = sum(h.type.value == "workstation" for h in hosts)
    exp["scope.with_agent"] = sum(bool(h.agent_id) for h in hosts)
    exp["scope.agents_active"] = sum(bool(h.agent_id) and h.last_seen >= start for h in hosts)
    exp["scope.isolated_now"] = sum(h.isolation.value == "isolated" for h in hosts)
    audit = store.list_audit(start=start, end=end, limit=1000).items
    exp["isolation_requests"] = sum(
        e.action == "host.isolate" and (units is None or e.unit in units) for e in audit
    )
    # sent vs. confirmed, through the command queue's own API (host by host), not the report's query
    sent = confirmed = 0
    confirmed_hosts: set[str] = set()
    if data_dir is not None:
        from soclite.control.commands import CommandQueue

        queue = CommandQueue.open(data_dir, store)
        try:
            for h in hosts:
                for c in queue.list_for_host(h.id, limit=1000):
                    if c.kind != "isolate":
                        continue
                    sent += start <= c.created_at < end
                    if c.status == "done" and c.ok and c.completed_at and start <= c.completed_at < end:
                        confirmed += 1
                        confirmed_hosts.add(h.id)
        finally:
            queue.close()
    exp.update({"isolation_commands": sent, "isolations": confirmed, "hosts_isolated": len(confirmed_hosts)})
    return exp


def vi_int(text: str) -> int:
    return int(text.strip().replace(".", ""))


def en_int(text: str) -> int:
    return int(text.strip().replace(",", ""))


def html_figures(html: str, lang: str = "vi") -> dict[str, int]:
    """Every number the HTML tags with data-key, parsed back as the reader sees it."""
    parse = vi_int if lang == "vi" else en_int
    return {
        key: parse(html_lib.unescape(value))
        for key, value in re.findall(r'data-key="([^"]+)">([^<]+)<', html)
    }


def summary_of(html: str) -> str:
    match = re.search(r'<p class="summary" id="summary">(.*?)</p>', html, re.S)
    assert match, "no summary paragraph"
    return html_lib.unescape(match.group(1)).strip()
