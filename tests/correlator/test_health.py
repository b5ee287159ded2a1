"""Detection health on the engine: rule fields, suppressed matches, last fired, fields seen per log
source, load failures with their rule id, and the health file a separate server process reads."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from soclite.correlator import health
from soclite.correlator.engine import Engine
from soclite.correlator.loader import load_paths

RULES = """
title: Encoded PowerShell
id: 11111111-0000-4000-8000-000000000001
status: test
level: high
logsource: {product: windows, category: process_creation}
detection:
    selection:
        Image|endswith: '\\\\powershell.exe'
        CommandLine|contains: ' -enc '
    condition: selection
---
title: Renamed binary
id: 11111111-0000-4000-8000-000000000002
status: test
level: medium
logsource: {product: windows, category: process_creation}
detection:
    selection:
        OriginalFileName: 'PowerShell.EXE'
    filter:
        Image|endswith: '\\\\powershell.exe'
    condition: selection and not filter
---
title: Keyword rule
id: 11111111-0000-4000-8000-000000000003
status: test
level: low
logsource: {product: linux, service: auditd}
detection:
    keywords: ['evil']
    condition: keywords
"""
BROKEN = """
title: Broken rule
id: 11111111-0000-4000-8000-00000000000f
logsource: {product: windows}
detection:
    selection:
        Image|nosuchmodifier: x
    condition: selection
"""
PS, RENAMED, KEYWORD = (f"11111111-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))


def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "rules.yml").write_text(textwrap.dedent(RULES), encoding="utf-8")
    (folder / "broken.yml").write_text(textwrap.dedent(BROKEN), encoding="utf-8")
    return folder


def proc(image: str, command_line: str, host: str = "ws1") -> dict[str, Any]:
    return {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": image,
            "CommandLine": command_line, "host.name": host, "@timestamp": "2026-11-23T10:00:00Z"}  # fmt: skip


def test_rule_fields_are_the_detection_fields_also_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "rules.cache"
    for expected_cache in ("miss", "hit"):
        ruleset = load_paths([rules_dir(tmp_path)], cache=cache)
        assert ruleset.cache == expected_cache
        fields = {r.id: r.fields for r in ruleset.rules}
        assert fields == {PS: ("CommandLine", "Image"), RENAMED: ("Image", "OriginalFileName"), KEYWORD: ()}
        [failure] = ruleset.failures
        assert (failure.rule_id, failure.title) == ("11111111-0000-4000-8000-00000000000f", "Broken rule")


def test_hits_suppressed_last_fired_and_unseen_fields(tmp_path: Path) -> None:
    engine = Engine(load_paths([rules_dir(tmp_path)]))
    before = engine.assess()
    assert before[PS].source_seen is False and before[PS].unseen_fields is None  # no event yet: unknown
    assert before[PS].last_fired is None
    engine.set_exceptions([("exc-1", textwrap.dedent("""
        title: lab host
        logsource: {product: windows, category: process_creation}
        filter:
            rules: [11111111-0000-4000-8000-000000000001]
            selection:
                host.name: lab1
            condition: not selection
        """))])  # fmt: skip
    ps = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    assert len(engine.process(proc(ps, "powershell -enc AAAA"))) == 1
    assert engine.process(proc(ps, "powershell -enc BBBB", host="lab1")) == []
    engine.process(proc("C:\\Windows\\System32\\cmd.exe", "cmd /c dir"))
    after = engine.assess()
    assert (after[PS].hits, after[PS].suppressed, after[PS].errors) == (1, 1, 0)
    assert after[PS].last_fired is not None and after[PS].unseen_fields == []
    # no Sysmon 1 event carried OriginalFileName: as written the rule cannot match
    assert after[RENAMED].source_seen and after[RENAMED].unseen_fields == ["OriginalFileName"]
    assert after[RENAMED].hits == 0 and after[RENAMED].last_fired is None
    assert after[KEYWORD].source_seen is False and after[KEYWORD].unseen_fields is None
    engine.process({**proc(ps, "x"), "OriginalFileName": "PowerShell.EXE"})
    assert engine.assess()[RENAMED].unseen_fields == []


def test_only_rule_named_fields_are_kept_and_only_until_seen(tmp_path: Path) -> None:
    engine = Engine(load_paths([rules_dir(tmp_path)]))
    # a sender's arbitrary field names are not kept: the set is bounded by the rules
    engine.process(proc("C:\\x.exe", "x") | {f"junk{i}": i for i in range(5000)})
    [(key, seen)] = engine.health_snapshot().seen.items()
    assert key.service == "sysmon" and seen == {"CommandLine", "Image"}
    engine.process(proc("C:\\x.exe", "x") | {"OriginalFileName": "X.EXE"})
    assert engine.health_snapshot().seen[key] == {"CommandLine", "Image", "OriginalFileName"}


def test_health_file_is_what_a_separate_server_process_reads(tmp_path: Path) -> None:
    state = tmp_path / "state"
    detector = Engine(load_paths([rules_dir(tmp_path)]), state_dir=state, save_interval=0.0)
    ps = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    detector.process(proc(ps, "powershell -enc AAAA"))  # saved on the way (save_interval 0)
    snapshot = health.read(state / health.HEALTH_FILE)
    assert snapshot is not None and snapshot.rules[PS].hits == 1
    server = Engine(load_paths([rules_dir(tmp_path)]))  # sees no events itself
    assert server.assess(snapshot) == detector.assess()
    assert server.assess()[PS].hits == 0
    # a restarted detector keeps what it learnt (last fired, fields seen), counters start again
    restarted = Engine(load_paths([rules_dir(tmp_path)]), state_dir=state)
    again = restarted.assess()
    assert again[PS].hits == 0 and again[PS].last_fired == detector.assess()[PS].last_fired
    assert again[RENAMED].unseen_fields == ["OriginalFileName"]


def test_unreadable_health_file_is_none(tmp_path: Path) -> None:
    path = tmp_path / health.HEALTH_FILE
    assert health.read(path) is None
    path.write_text("{not json", encoding="utf-8")
    assert health.read(path) is None
    Engine(load_paths([rules_dir(tmp_path)]), state_dir=tmp_path)  # starts anyway
