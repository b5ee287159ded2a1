"""Engine behaviour beyond single-rule matching: filters, exceptions, errors, correlation state, IoCs, management."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from soclite.config import Settings
from soclite.correlator.engine import Engine
from soclite.correlator.loader import RuleSet, load_paths, load_text
from soclite.correlator.logsource import route
from soclite.errors import NotFoundError, RuleError

PROC_RULE = """
title: Whoami Execution
id: 0b7c9d3e-2222-4a4a-9b9b-000000000002
name: whoami_exec
status: test
level: medium
tags: [attack.discovery, attack.t1033]
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\whoami.exe'
    condition: selection
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def proc(image: str, **extra: Any) -> dict[str, Any]:
    return {
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "EventID": 1,
        "Image": image,
        "Computer": "PC01",
        "event.id": "e1",
        "soclite.unit": "so-tttt",
        "@timestamp": "2026-11-23T01:02:03.000Z",
        **extra,
    }


def test_alert_fields(tmp_path: Path) -> None:
    engine = Engine(load_paths([write(tmp_path, "r.yml", PROC_RULE)]))
    alerts = engine.process(proc("C:\\Windows\\System32\\whoami.exe"))
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.rule_id, a.level, a.severity, a.host, a.unit) == (
        "0b7c9d3e-2222-4a4a-9b9b-000000000002",
        "medium",
        "medium",
        "pc01",
        "so-tttt",
    )
    assert a.event_ids == ["e1"] and a.event["Image"].endswith("whoami.exe")
    assert a.attack_techniques == ["T1033"]
    assert a.first_seen.isoformat().startswith("2026-11-23T01:02:03")


def test_security_4688_is_process_creation_with_sysmon_names(tmp_path: Path) -> None:
    engine = Engine(load_paths([write(tmp_path, "r.yml", PROC_RULE)]))
    ev = {"Channel": "Security", "EventID": 4688, "NewProcessName": "C:\\Windows\\System32\\whoami.exe"}
    assert [r.title for r in engine.match(ev)] == ["Whoami Execution"]
    routed = route({"Channel": "Security", "EventID": 4688, "NewProcessName": "x", "ParentProcessName": "y"})
    assert routed["Image"] == "x" and routed["ParentImage"] == "y"
    assert routed["logsource.category"] == "process_creation" and routed["logsource.service"] == "security"
    # a Security event that is not 4688 is not process_creation
    assert engine.match({"Channel": "Security", "EventID": 4624, "Image": "C:\\whoami.exe"}) == []


def test_process_batch_one_alert_per_detection_with_one_fingerprint(tmp_path: Path) -> None:
    engine = Engine(load_paths([write(tmp_path, "r.yml", PROC_RULE)]))
    events = [proc("c:\\x\\whoami.exe", **{"event.id": f"e{i}"}) for i in range(3)]
    events.append(proc("c:\\x\\whoami.exe", Computer="PC02", **{"event.id": "e3"}))
    alerts = engine.process_batch(events)
    assert [a.event_ids for a in alerts] == [["e0"], ["e1"], ["e2"], ["e3"]]
    assert len({a.fingerprint for a in alerts[:3]}) == 1  # the pipeline groups these (same rule and host)
    assert alerts[3].fingerprint != alerts[0].fingerprint


def test_broken_rule_reported_with_file_line_and_rest_loads(tmp_path: Path) -> None:
    bad = PROC_RULE.replace("0b7c9d3e-2222-4a4a-9b9b-000000000002", "0b7c9d3e-2222-4a4a-9b9b-000000000003")
    bad = bad.replace("condition: selection", "condition: selection and missing_one")
    path = write(tmp_path, "two.yml", PROC_RULE + "---\n" + bad + "---\n- not a mapping\n")
    rs = load_paths([path])
    assert [r.title for r in rs.rules] == ["Whoami Execution"]
    assert len(rs.failures) == 2
    first, second = rs.failures
    assert first.source.startswith(f"{path}:") and int(first.source.rsplit(":", 1)[1]) > 10
    assert "missing_one" in first.reason
    assert "mapping" in second.reason
    invalid = write(tmp_path, "bad.yml", "title: [unclosed\n")
    rs2 = load_paths([invalid])
    assert rs2.failures and rs2.failures[0].source.startswith(f"{invalid}:")


def test_rule_that_raises_is_counted_and_stream_continues(tmp_path: Path) -> None:
    engine = Engine(load_paths([write(tmp_path, "r.yml", PROC_RULE)]))
    rule = engine.rules[0]

    def boom(ev: dict[str, Any], lw: Any) -> bool:
        raise ValueError("bad event")

    rule.func = boom
    assert engine.process(proc("c:\\whoami.exe")) == []
    assert engine.rule_errors == 1 and rule.errors == 1


SITE_FILTER = """
title: Ignore whoami on the admin jump host
id: 7d2a4e10-3333-4a4a-9b9b-000000000004
logsource:
    product: windows
    category: process_creation
filter:
    rules:
        - whoami_exec
    selection:
        Computer: 'JUMP01'
    condition: not selection
"""


def test_sigma_filter_files_apply(tmp_path: Path) -> None:
    rs = load_paths([write(tmp_path, "r.yml", PROC_RULE), write(tmp_path, "f.yml", SITE_FILTER)])
    assert len(rs.filters) == 1
    engine = Engine(rs)
    assert engine.match(proc("c:\\whoami.exe", Computer="JUMP01")) == []
    assert len(engine.match(proc("c:\\whoami.exe", Computer="PC01"))) == 1


def test_exceptions_replace_atomically_and_count_hits(tmp_path: Path) -> None:
    engine = Engine(load_paths([write(tmp_path, "r.yml", PROC_RULE)]))
    engine.set_exceptions([("exc-1", SITE_FILTER)])
    assert engine.process(proc("c:\\whoami.exe", Computer="jump01")) == []
    assert engine.exception_hits() == {"exc-1": 1}
    assert len(engine.process(proc("c:\\whoami.exe"))) == 1
    with pytest.raises(RuleError):
        engine.set_exceptions([("exc-2", "title: x\nfilter: nonsense\n")])
    assert engine.exception_hits() == {"exc-1": 1}  # the bad set changed nothing
    engine.set_exceptions([])
    assert len(engine.process(proc("c:\\whoami.exe", Computer="jump01"))) == 1


def test_management_api(tmp_path: Path) -> None:
    engine = Engine(load_paths([write(tmp_path, "r.yml", PROC_RULE)]))
    engine.process(proc("c:\\whoami.exe"))
    info = engine.rules_info()[0]
    assert (info.title, info.hits, info.enabled, info.logsource) == (
        "Whoami Execution",
        1,
        True,
        {"product": "windows", "category": "process_creation"},
    )
    engine.set_rule_enabled(info.id, False)
    assert engine.process(proc("c:\\whoami.exe")) == []
    engine.set_rule_enabled(info.id, True)
    assert len(engine.process(proc("c:\\whoami.exe"))) == 1
    with pytest.raises(NotFoundError):
        engine.set_rule_enabled("nope", False)
    assert [a.rule_title for a in engine.test_rule(PROC_RULE, proc("c:\\whoami.exe"))] == ["Whoami Execution"]
    with pytest.raises(RuleError):
        engine.test_rule("title: x\n", {})


def test_unrouted_rules(tmp_path: Path) -> None:
    odd = PROC_RULE.replace("product: windows", "product: zos").replace(
        "0b7c9d3e-2222-4a4a-9b9b-000000000002", "0b7c9d3e-2222-4a4a-9b9b-000000000009"
    )
    engine = Engine(load_paths([write(tmp_path, "a.yml", PROC_RULE), write(tmp_path, "b.yml", odd)]))
    assert engine.unrouted_rules() == ["0b7c9d3e-2222-4a4a-9b9b-000000000009"]


FAILED = """
title: Failed logon
id: 1a2b3c4d-5555-4a4a-9b9b-000000000005
name: failed_logon
status: test
level: low
logsource:
    product: linux
    service: sshd
detection:
    selection:
        event.outcome: failure
    condition: selection
"""


def correlation(kind: str, condition: str, extra: str = "") -> str:
    return (
        FAILED
        + f"""---
title: Correlated {kind}
id: 1a2b3c4d-5555-4a4a-9b9b-000000000006
status: test
level: high
correlation:
    type: {kind}
    rules:
        - failed_logon
    group-by:
        - source.ip
    timespan: 10m
    condition:
{textwrap.indent(condition, "        ")}
{extra}"""
    )


def failure(ip: str, minute: float, **extra: Any) -> dict[str, Any]:
    return {
        "logsource.product": "linux",
        "logsource.service": "sshd",
        "event.outcome": "failure",
        "source.ip": ip,
        "host.name": "h1",
        "@timestamp": f"2026-11-23T01:{int(minute):02d}:00.000Z",
        **extra,
    }


def run(engine: Engine, events: list[dict[str, Any]]) -> list[str]:
    return [a.rule_title for e in events for a in engine.process(e)]


def test_event_count_window_persists_across_restart(tmp_path: Path) -> None:
    rules = write(tmp_path, "c.yml", correlation("event_count", "gte: 3"))
    state = tmp_path / "state"
    first = Engine(load_paths([rules]), state_dir=state)
    assert run(first, [failure("10.0.0.1", 0), failure("10.0.0.1", 1)]) == []
    first.save_state()
    assert (state / "correlation-state.json").exists()
    second = Engine(load_paths([rules]), state_dir=state)  # a restart
    assert run(second, [failure("10.0.0.1", 2)]) == ["Correlated event_count"]
    # the window expires: two old failures and one 11 minutes later do not fire
    third = Engine(load_paths([rules]))
    assert run(third, [failure("10.0.0.2", 0), failure("10.0.0.2", 1), failure("10.0.0.2", 12)]) == []


def test_value_count(tmp_path: Path) -> None:
    engine = Engine(
        load_paths([write(tmp_path, "c.yml", correlation("value_count", "gte: 3\nfield: user.name"))])
    )
    same_user = [failure("10.0.0.3", i, **{"user.name": "root"}) for i in range(5)]
    assert run(engine, same_user) == []
    users = [failure("10.0.0.3", i, **{"user.name": u}) for i, u in enumerate(["a", "b", "c"])]
    assert run(engine, users) == ["Correlated value_count"]


def test_value_sum(tmp_path: Path) -> None:
    engine = Engine(load_paths([write(tmp_path, "c.yml", correlation("value_sum", "gt: 100\nfield: bytes"))]))
    assert run(engine, [failure("10.0.0.4", 0, bytes=60), failure("10.0.0.4", 1, bytes="50")]) == [
        "Correlated value_sum"
    ]


def test_temporal_with_aliases(tmp_path: Path) -> None:
    text = (
        FAILED
        + """---
title: Port scan
id: 1a2b3c4d-5555-4a4a-9b9b-000000000007
name: port_scan
status: test
level: low
logsource:
    category: firewall
detection:
    selection:
        action: drop
    condition: selection
---
title: Scan then failed logon
id: 1a2b3c4d-5555-4a4a-9b9b-000000000008
status: test
level: high
correlation:
    type: temporal
    rules:
        - port_scan
        - failed_logon
    group-by:
        - attacker
    aliases:
        attacker:
            port_scan: src_ip
            failed_logon: source.ip
    timespan: 5m
"""
    )
    engine = Engine(load_paths([write(tmp_path, "t.yml", text)]))
    scan = {
        "logsource.category": "firewall",
        "action": "drop",
        "src_ip": "10.9.9.9",
        "@timestamp": "2026-11-23T01:00:00.000Z",
    }
    assert run(engine, [scan]) == []
    assert run(engine, [failure("10.9.9.8", 1)]) == []  # another address
    assert run(engine, [failure("10.9.9.9", 2)]) == ["Scan then failed logon"]


def test_window_state_is_bounded(tmp_path: Path) -> None:
    engine = Engine(load_paths([write(tmp_path, "c.yml", correlation("event_count", "gte: 1000"))]))
    engine.windows.max_groups = 50
    for i in range(500):
        engine.process(failure(f"10.1.{i // 250}.{i % 250}", 0))
    assert len(engine.windows.state["1a2b3c4d-5555-4a4a-9b9b-000000000006"]) == 50


def test_iocs(tmp_path: Path) -> None:
    engine = Engine(RuleSet())
    assert (
        engine.iocs.set_list(
            "national:ip", "ip", ["198.51.100.7", "203.0.113.0/24", "junk"], level="critical"
        )
        == 2
    )
    engine.iocs.set_list("local:domain", "domain", ["evil.example"], level="high")
    engine.iocs.set_list("local:hash", "hash", ["44D88612FEA8A8F36DE82E1278ABB02F"], level="high")
    alerts = engine.process({"destination.ip": "203.0.113.9", "host.name": "pc1"})
    assert [(a.rule_id, a.level, a.kind) for a in alerts] == [("ioc:national:ip", "critical", "ioc")]
    assert engine.process({"dns.question.name": "cdn.EVIL.example."})[0].rule_id == "ioc:local:domain"
    assert engine.process({"dns.question.name": "notevil.example"}) == []
    hashes = "SHA1=AA,MD5=44d88612fea8a8f36de82e1278abb02f,SHA256=BB"
    assert engine.process({"Hashes": hashes})[0].rule_id == "ioc:local:hash"
    engine.iocs.set_list("national:ip", "ip", ["192.0.2.1"])  # replaced at run time
    assert engine.process({"destination.ip": "203.0.113.9"}) == []
    engine.iocs.remove_list("national:ip")
    assert engine.iocs.lists() == {"local:domain": 1, "local:hash": 1}


def test_from_settings(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", PROC_RULE)
    ioc = tmp_path / "bad-domains.txt"
    ioc.write_text("# national list\nevil.example\n", encoding="utf-8")
    settings = Settings(
        data_dir=tmp_path / "data", correlator={"rules": [tmp_path / "r.yml"], "ioc_files": [ioc]}
    )
    engine = Engine.from_settings(settings)
    assert len(engine.rules) == 1 and engine.iocs.lists() == {"file:bad-domains": 1}
    assert engine.state_dir == tmp_path / "data" / "correlator"


def test_load_text_reports_failures_not_raises() -> None:
    rs = RuleSet()
    load_text(
        "title: x\nlogsource: {product: windows}\ndetection: {sel: {a: 1}, condition: nope}\n", "t", rs, {}
    )
    assert rs.failures and rs.failures[0].source == "t:1"


def test_pysigma_pipeline_files_apply_to_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p.yml",
        """
        name: site names
        priority: 10
        transformations:
            - id: user_to_ecs
              type: field_name_mapping
              mapping:
                  User: user.name
              rule_conditions:
                  - type: logsource
                    product: linux
        """,
    )
    write(tmp_path, "r.yml", FAILED.replace("event.outcome: failure", "User: mallory"))
    rs = load_paths([tmp_path])
    assert rs.pipelines == [str(tmp_path / "p.yml")] and not rs.failures
    engine = Engine(rs)
    event = {"logsource.product": "linux", "logsource.service": "sshd", "user.name": "Mallory"}
    assert [r.title for r in engine.match(event)] == ["Failed logon"]
    assert engine.match({"logsource.product": "linux", "logsource.service": "sshd", "User": "mallory"}) == []
    write(tmp_path, "p.yml", "transformations:\n    - type: no_such_transformation\n")
    broken = load_paths([tmp_path])
    assert broken.failures and "pipeline" in broken.failures[0].reason


def test_shipped_windows_pipeline_loads(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "rules" / "pipelines" / "windows-audit.yml"
    rs = load_paths([shipped, write(tmp_path, "r.yml", PROC_RULE)])
    assert not rs.failures and rs.pipelines
    assert "NewProcessName" in rs.rules[0].code  # the rule now also reads the Security 4688 name
    ev = {"Channel": "Security", "EventID": 4688, "NewProcessName": "C:\\Windows\\System32\\whoami.exe"}
    assert len(Engine(rs).match(ev)) == 1


def test_state_is_saved_periodically_while_processing(tmp_path: Path) -> None:
    rules = write(tmp_path, "c.yml", correlation("event_count", "gte: 5"))
    state = tmp_path / "state"
    engine = Engine(load_paths([rules]), state_dir=state, save_interval=0.0)
    engine.process(failure("10.0.0.9", 0))
    assert (state / "correlation-state.json").exists()  # no explicit save_state(): saved on the way
    restored = Engine(load_paths([rules]), state_dir=state)
    groups = restored.windows.state["1a2b3c4d-5555-4a4a-9b9b-000000000006"]
    assert len(groups) == 1 and len(next(iter(groups.values()))) == 1


def test_corrupt_state_file_starts_empty(tmp_path: Path) -> None:
    rules = write(tmp_path, "c.yml", correlation("event_count", "gte: 2"))
    state = tmp_path / "state"
    state.mkdir()
    (state / "correlation-state.json").write_text("{not json", encoding="utf-8")
    engine = Engine(load_paths([rules]), state_dir=state)
    assert run(engine, [failure("10.0.0.5", 0), failure("10.0.0.5", 1)]) == ["Correlated event_count"]


@pytest.mark.parametrize(
    ("kind", "condition", "values", "fires_at"),
    [
        ("value_avg", "gte: 10\nfield: bytes", [4, 8, 30], 3),  # averages 4, 6, 14
        ("value_median", "gt: 5\nfield: bytes", [1, 9, 10], 3),  # medians 1, 5, 9
        ("value_percentile", "gte: 50\nfield: bytes\npercentile: 90", [1, 2, 100], 3),
    ],
)
def test_value_aggregations(
    tmp_path: Path, kind: str, condition: str, values: list[int], fires_at: int
) -> None:
    engine = Engine(load_paths([write(tmp_path, "c.yml", correlation(kind, condition))]))
    fired = [bool(engine.process(failure("10.0.0.7", i, bytes=v))) for i, v in enumerate(values)]
    assert fired.index(True) + 1 == fires_at


def test_temporal_ordered_needs_the_order(tmp_path: Path) -> None:
    text = (
        FAILED
        + """---
title: Success
id: 1a2b3c4d-5555-4a4a-9b9b-00000000000a
name: success_logon
status: test
level: low
logsource:
    product: linux
    service: sshd
detection:
    selection:
        event.outcome: success
    condition: selection
---
title: Failure then success
id: 1a2b3c4d-5555-4a4a-9b9b-00000000000b
status: test
level: high
correlation:
    type: temporal_ordered
    rules:
        - failed_logon
        - success_logon
    group-by:
        - source.ip
    timespan: 5m
"""
    )
    engine = Engine(load_paths([write(tmp_path, "o.yml", text)]))
    success = dict(failure("10.0.0.8", 0), **{"event.outcome": "success"})
    assert run(engine, [success, failure("10.0.0.8", 1)]) == []  # wrong order
    later = dict(success, **{"@timestamp": "2026-11-23T01:02:00.000Z"})
    assert run(engine, [later]) == ["Failure then success"]


def test_replayed_batch_does_not_count_events_twice(tmp_path: Path) -> None:
    """The pipeline replays a batch whose alerts could not be stored: the windows must not double count."""
    rules = write(tmp_path, "c.yml", correlation("event_count", "gte: 4"))
    batch = [failure("10.0.0.9", i, **{"event.id": f"ev{i}"}) for i in range(3)]
    once = Engine(load_paths([rules]))
    assert [a.rule_title for a in once.process_batch(batch)] == []
    twice = Engine(load_paths([rules]))
    twice.process_batch(batch)
    # a replay of the same three events: still three in the window, so nothing fires
    replay = [a.rule_title for a in twice.process_batch([dict(e) for e in batch])]
    assert replay == [] and twice.windows.replayed == 3
    # the fourth distinct event fires exactly as it does on the engine that saw the batch once
    fourth = failure("10.0.0.9", 4, **{"event.id": "ev4"})
    assert [a.rule_title for a in once.process(dict(fourth))] == ["Correlated event_count"]
    assert [a.rule_title for a in twice.process(dict(fourth))] == ["Correlated event_count"]
    # replaying the whole burst after it fired (group reset) does not fire it a second time
    again = [a.rule_title for a in twice.process_batch([dict(e) for e in [*batch, fourth]])]
    assert again == []
    # events without an id (hunting over files) are all counted
    anon = Engine(load_paths([rules]))
    plain = [failure("10.0.0.8", 0)] * 4
    assert [a.rule_title for a in anon.process_batch(plain)] == ["Correlated event_count"]


def test_replay_after_restart_is_recognised_and_memory_is_bounded(tmp_path: Path) -> None:
    rules = write(tmp_path, "c.yml", correlation("event_count", "gte: 3"))
    state = tmp_path / "state"
    first = Engine(load_paths([rules]), state_dir=state)
    batch = [failure("10.0.0.7", i, **{"event.id": f"r{i}"}) for i in range(2)]
    first.process_batch(batch)
    first.save_state()  # then the process dies before the journal commit
    second = Engine(load_paths([rules]), state_dir=state)
    assert second.process_batch([dict(e) for e in batch]) == []  # the replay, recognised from disk
    assert [a.rule_title for a in second.process(failure("10.0.0.7", 3, **{"event.id": "r3"}))] == [
        "Correlated event_count"
    ]
    bounded = Engine(load_paths([rules]))
    bounded.windows.max_seen = 10
    bounded.process_batch([failure(f"10.1.0.{i}", 0, **{"event.id": f"b{i}"}) for i in range(50)])
    assert len(bounded.windows.seen) == 10


def test_an_event_id_no_hash_takes_is_routed_not_raised() -> None:
    """The routing shortcut keys on (channel, EventID, EventType): a list or dict there (a malformed
    export) must not stop the stream (soclite hunt stops on anything but a parse error)."""
    from tests.correlator.helpers import windows_keyword_engines

    indexed, exhaustive = windows_keyword_engines("Anywhere on Windows", ["mimikatz"])
    events = [
        {"Channel": "Security", "EventID": [4688], "CommandLine": "mimikatz.exe"},
        {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 12, "EventType": {"a": 1}, "Image": "mimikatz"},
        {"Channel": "Security", "EventID": {"#text": "4688"}, "CommandLine": "mimikatz.exe"},
    ]
    for event in events:
        for _ in range(2):  # the second time after the first has been routed
            want = [r.title for r in exhaustive.match(dict(event))]
            assert want == ["Anywhere on Windows"]
            assert [r.title for r in indexed.match(dict(event))] == want
