"""Playbook schema: shipped playbooks validate; bad ones are rejected with file:line; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from soclite.playbooks.cli import playbooks_group
from soclite.playbooks.conditions import Condition, all_hold
from soclite.playbooks.schema import load_playbooks
from tests.playbooks.support import SHIPPED, make_alert

BAD = """\
id: broken
description: a typo in a parameter and an unknown action
trigger:
  on: created
  match:
    severity: high
steps:
  - name: mail
    action: notify_email
    params:
      to: ["a@b"]
      subjet: "typo"
  - name: nothing
    action: explode_host
"""

BAD_TRIGGER = """\
id: bad-trigger
trigger:
  on: [created]
  match:
    severity: urgent
steps:
  - name: sync
    action: national_sync
"""


def test_every_shipped_playbook_validates() -> None:
    files = sorted(SHIPPED.glob("*.yml"))
    assert len(files) >= 3
    playbooks, problems = load_playbooks(files)
    assert [str(p) for p in problems] == []
    ids = {p.id for p in playbooks}
    assert {"high-severity-national", "malware-workstation-isolate", "ioc-hit-national"} <= ids
    isolate = next(p for p in playbooks if p.id == "malware-workstation-isolate")
    # Isolation is destructive: it waits for an admin unless the playbook says automatic.
    assert isolate.approval_needed(isolate.steps[0]) is True


def test_bad_playbook_is_rejected_with_file_and_line_and_others_load(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(BAD, encoding="utf-8")
    (tmp_path / "bad-trigger.yml").write_text(BAD_TRIGGER, encoding="utf-8")
    (tmp_path / "not-yaml.yml").write_text("id: [unclosed\n", encoding="utf-8")
    good = (SHIPPED / "ioc-hit-national.yml").read_text(encoding="utf-8")
    (tmp_path / "good.yml").write_text(good, encoding="utf-8")
    playbooks, problems = load_playbooks([tmp_path])
    assert [p.id for p in playbooks] == ["ioc-hit-national"]
    messages = [str(p) for p in problems]
    bad = str(tmp_path / "bad.yml")
    assert any(m.startswith(f"{bad}:12:") and "subjet" in m for m in messages), messages
    assert any(m.startswith(f"{bad}:14:") and "explode_host" in m for m in messages), messages
    trig = str(tmp_path / "bad-trigger.yml")
    assert any(m.startswith(f"{trig}:5:") and "severity" in m for m in messages), messages
    assert any(m.startswith(str(tmp_path / "not-yaml.yml") + ":") and "invalid YAML" in m for m in messages)


def test_unknown_placeholder_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "p.yml").write_text(
        "id: p\ntrigger: {on: created}\nsteps:\n  - name: s\n    action: isolate_host\n"
        "    params:\n      host_id: '{{ hostname }}'\n",
        encoding="utf-8",
    )
    playbooks, problems = load_playbooks([tmp_path])
    assert playbooks == []
    assert len(problems) == 1 and "hostname" in str(problems[0]) and ":6:" in str(problems[0])


def test_conditions_are_comparisons_not_code() -> None:
    ctx = make_alert(level="critical", tags=["attack.t1059.001"]).model_dump(mode="json")
    assert all_hold([Condition(field="level", op="gte", value="high")], ctx)
    assert not all_hold([Condition(field="level", op="lt", value="high")], ctx)
    assert all_hold([Condition(field="tags", op="glob", value="attack.t1059*")], ctx)
    assert all_hold([Condition(field="event.user.name", op="eq", value="nguyenvana")], ctx)
    assert not all_hold([Condition(field="event.nope", op="eq", value=None)], ctx)
    assert all_hold([Condition(field="event.nope", op="missing")], ctx)
    # A would-be expression is just a field name that does not exist.
    assert not all_hold([Condition(field="__import__('os')", op="exists")], ctx)


def test_cli_check_reports_problems_and_exit_code(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(BAD, encoding="utf-8")
    result = CliRunner().invoke(playbooks_group, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'bad.yml'}:12:" in result.output
    ok = CliRunner().invoke(playbooks_group, ["check", str(SHIPPED)])
    assert ok.exit_code == 0, ok.output
    assert "3 playbook(s) loaded, 0 problem(s)" in ok.output


def test_cli_dry_run_shows_what_would_run(tmp_path: Path, monkeypatch: object) -> None:
    alert = make_alert(level="high", tags=["attack.t1204.002"], kind="sigma")
    path = tmp_path / "alert.json"
    path.write_text(alert.model_dump_json(), encoding="utf-8")
    config = tmp_path / "soclite.yml"
    config.write_text(
        f"environment: test\ndata_dir: {tmp_path / 'd'}\nnational: {{enabled: true, kind: taxii}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        playbooks_group,
        [
            "test",
            "--alert",
            str(path),
            "--host-type",
            "workstation",
            "--playbooks",
            str(SHIPPED),
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    by_action = {p["action"]: p for p in plan}
    assert set(by_action) == {"national_sync", "notify_email", "isolate_host"}
    assert by_action["isolate_host"]["params"]["host_id"] == "ws-001"
    assert by_action["isolate_host"]["requires_approval"] is True
    assert by_action["notify_email"]["params"]["subject"] == "[soclite] high Suspicious thing — ws-001"
    assert all(p["would_run"] for p in plan)
    # On a server the malware playbook does not apply.
    server = CliRunner().invoke(
        playbooks_group,
        [
            "test",
            "--alert",
            str(path),
            "--host-type",
            "server",
            "--playbooks",
            str(SHIPPED),
            "--config",
            str(config),
        ],
    )
    assert {p["action"] for p in json.loads(server.output)} == {"national_sync", "notify_email"}
    assert not (tmp_path / "d").exists(), "a dry run must not create data"
