"""The compiled-rule cache: a warm load behaves exactly as a cold one, and any change or damage rebuilds."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from soclite.collectors.windows import iter_evtx
from soclite.correlator.cli import rules_group
from soclite.correlator.engine import Engine
from soclite.correlator.loader import RuleSet, load_paths
from tests.correlator.regression import SIGMA, cases, rule_files
from tests.correlator.test_engine import PROC_RULE, SITE_FILTER, proc, write

OWN_RULES = Path(__file__).resolve().parents[2] / "rules"


def _summary(rs: RuleSet) -> list[tuple[Any, ...]]:
    return [
        (r.id, r.title, r.level, r.status, r.logsource, r.tags, r.source, r.anchor_options, r.code)
        for r in rs.rules
    ]


def test_warm_load_matches_cold_on_sigmahq_regression_data(tmp_path: Path) -> None:
    if not SIGMA.exists():
        pytest.skip("../shared/sigma is not available")
    files = rule_files()
    needed = sorted({files[c.rule_id] for c in cases()})
    cache = tmp_path / "rules.cache"
    cold = load_paths(needed, cache=cache)
    warm = load_paths(needed, cache=cache)
    assert (cold.cache, warm.cache) == ("miss", "hit")
    assert _summary(warm) == _summary(cold) and not warm.failures
    assert all(r.sigma is None for r in warm.rules)
    events = [e for c in cases() for e in iter_evtx(c.evtx)]
    cold_engine, warm_engine = Engine(cold), Engine(warm)
    want = [[r.id for r in cold_engine.match(dict(e))] for e in events]
    assert [[r.id for r in warm_engine.match(dict(e))] for e in events] == want
    assert sum(map(len, want)) >= 202


def test_filters_correlations_pipelines_and_failures_survive(tmp_path: Path) -> None:
    cache = tmp_path / "c" / "rules.cache"
    broken = write(tmp_path, "broken.yml", PROC_RULE.replace("condition: selection", "condition: nope"))
    paths = [OWN_RULES, write(tmp_path, "r.yml", PROC_RULE), write(tmp_path, "f.yml", SITE_FILTER), broken]
    cold = load_paths(paths, cache=cache)
    warm = load_paths(paths, cache=cache)
    assert warm.cache == "hit"
    assert len(warm.correlations) == len(cold.correlations) >= 2
    assert len(warm.filters) == 1 and warm.pipelines == cold.pipelines != []
    assert [str(f) for f in warm.failures] == [str(f) for f in cold.failures] != []
    engine = Engine(warm)
    assert len(engine.correlations) == len(Engine(cold).correlations)
    assert engine.match(proc("c:\\whoami.exe", Computer="JUMP01")) == []
    assert len(engine.match(proc("c:\\whoami.exe", Computer="PC01"))) == 1


def test_any_change_rebuilds(tmp_path: Path) -> None:
    rule = write(tmp_path, "r.yml", PROC_RULE)
    cache = tmp_path / "rules.cache"
    assert load_paths([rule], cache=cache).cache == "miss"
    assert load_paths([rule], cache=cache).cache == "hit"
    rule.write_text(PROC_RULE.replace("level: medium", "level: high"), encoding="utf-8")
    changed = load_paths([rule], cache=cache)
    assert changed.cache == "miss" and changed.rules[0].level == "high"
    assert load_paths([rule], cache=cache).rules[0].level == "high"
    write(tmp_path, "more.yml", PROC_RULE.replace("whoami_exec", "other_name"))
    assert load_paths([tmp_path], cache=cache).cache == "miss"
    assert load_paths([tmp_path], {"x": ["1"]}, cache=cache).cache == "miss"
    assert load_paths([tmp_path], cache=cache, keep=lambda doc: True).cache == "off"


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_cache_is_ignored_with_a_warning(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    rule = write(tmp_path, "r.yml", PROC_RULE)
    cache = tmp_path / "rules.cache"
    load_paths([rule], cache=cache)
    blob = cache.read_bytes()
    if damage == "truncate":
        cache.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        cache.write_bytes(blob[:-10] + bytes([blob[-10] ^ 0xFF]) + blob[-9:])
    else:
        cache.write_bytes(b"not a cache")
    with caplog.at_level(logging.WARNING, logger="soclite.correlator.cache"):
        rebuilt = load_paths([rule], cache=cache)
    assert rebuilt.cache == "miss" and len(rebuilt.rules) == 1
    assert "rebuilding" in caplog.text
    assert load_paths([rule], cache=cache).cache == "hit"


def test_rules_check_reports_load_time_and_cache(tmp_path: Path) -> None:
    rule = write(tmp_path, "r.yml", PROC_RULE)
    args = ["check", "--cache-dir", str(tmp_path / "cache"), str(rule)]
    first = CliRunner().invoke(rules_group, args)
    second = CliRunner().invoke(rules_group, args)
    assert first.exit_code == 0 and "cache miss" in first.stderr and "(load " in first.stderr
    assert "cache hit" in second.stderr
    assert first.stdout == second.stdout


def test_compiled_scanners_are_reused_across_engines(tmp_path: Path) -> None:
    """The index's literal databases saved by one engine serve the next: same detections, no compile."""
    if not SIGMA.exists():
        pytest.skip("../shared/sigma is not available")
    files = rule_files()
    rs = load_paths(sorted({files[c.rule_id] for c in cases()}))
    events = [e for c in cases() for e in iter_evtx(c.evtx)]
    store = tmp_path / "scanners.cache"
    first = Engine(rs)
    want = [[r.id for r in first.match(dict(e))] for e in events]
    assert first.save_scanners(store) and not first.save_scanners(store)  # saved once, nothing new since
    second = Engine(rs)
    assert second.load_scanners(store) == len(first._scanner_cache)
    loaded = set(second._scanner_cache)
    got = [[r.id for r in second.match(dict(e))] for e in events]
    # every compile goes through the content-keyed cache (scanners.cached): nothing new in it, nothing compiled
    assert got == want and set(second._scanner_cache) == loaded
    assert not second.save_scanners(store)  # nothing new: the file is left as it is
    store.write_bytes(store.read_bytes()[:100])
    assert Engine(rs).load_scanners(store) == 0


def test_hunt_keeps_rules_and_scanners_in_its_cache_dir(tmp_path: Path) -> None:
    rule = write(tmp_path, "r.yml", PROC_RULE)
    events = tmp_path / "ev.jsonl"
    events.write_text(
        '{"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "c:\\\\whoami.exe"}\n\n',
        encoding="utf-8",
    )
    from soclite.correlator.cli import hunt

    args = ["--rules", str(rule), "--cache-dir", str(tmp_path / "c"), "--stats", str(events)]
    first = CliRunner().invoke(hunt, args)
    second = CliRunner().invoke(hunt, args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    assert "cache miss" in first.stderr and "cache hit" in second.stderr
    assert first.stdout == second.stdout and first.stdout.count("\n") == 1
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "c").iterdir()) == ["rules", "scanners"]
    assert "skipped: 0" in second.stderr  # the blank line is not an error
    nocache = CliRunner().invoke(hunt, ["--no-cache", *args[:2], str(events)])
    assert nocache.stdout == first.stdout
