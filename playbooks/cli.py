"""``soclite playbooks check|test`` and ``soclite connector status|pull|heartbeat``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from soclite.config import load_cli_settings
from soclite.playbooks.services import need

if TYPE_CHECKING:
    from soclite.playbooks.services import StandaloneServices


@click.group("playbooks")
def playbooks_group() -> None:
    """Check playbooks and dry-run them against an alert."""


@playbooks_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML configuration file.")
def check(paths: tuple[Path, ...], config_file: Path | None) -> None:
    """Validate playbooks (default: settings.playbooks); print file:line for each problem, exit 1 if any."""
    from soclite.playbooks.schema import load_playbooks

    targets = list(paths) or list(load_cli_settings(config_file).playbooks)
    playbooks, problems = load_playbooks(targets)
    for playbook in playbooks:
        click.echo(f"ok      {playbook.id} ({playbook.source}): {len(playbook.steps)} step(s)")
    for problem in problems:
        click.echo(f"error   {problem}", err=True)
    click.echo(f"{len(playbooks)} playbook(s) loaded, {len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


@playbooks_group.command("test")
@click.option(
    "--alert",
    "alert_file",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="An alert as JSON (the API's alert form).",
)
@click.option("--change", type=click.Choice(["created", "updated", "escalated"]), default="created")
@click.option(
    "--host-type",
    type=click.Choice(["server", "workstation"]),
    default=None,
    help="The host's type (a dry run does not read the store).",
)
@click.option(
    "--playbooks",
    "paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Playbook files or folders (default: settings.playbooks).",
)
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML configuration file.")
def dry_run(
    alert_file: Path, change: str, host_type: str | None, paths: tuple[Path, ...], config_file: Path | None
) -> None:
    """Dry run: which steps would run for this alert, with which parameters. Nothing is submitted."""
    from soclite.models import Alert
    from soclite.playbooks.runner import PlaybookRunner
    from soclite.playbooks.schema import load_playbooks
    from soclite.playbooks.services import StandaloneServices

    settings = load_cli_settings(config_file)
    playbooks, problems = load_playbooks(list(paths) or list(settings.playbooks))
    for problem in problems:
        click.echo(f"rejected: {problem}", err=True)
    data = json.loads(alert_file.read_text(encoding="utf-8"))
    host_type = host_type or data.pop("host_type", None)
    alert = Alert.model_validate(data)
    # A dry run touches no database: no store, no outbox; the host type comes from the option or the file.
    runner = PlaybookRunner(StandaloneServices(settings), playbooks)
    plan = runner.plan(alert, change, host_type)
    out = [
        {
            "playbook": p.playbook_id,
            "step": p.step,
            "action": p.action,
            "params": p.params,
            "requires_approval": p.requires_approval,
            "idempotency_key": p.idempotency_key,
            "would_run": p.skipped is None,
            "skipped": p.skipped,
        }
        for p in plan
    ]
    click.echo(json.dumps(out, indent=2, ensure_ascii=False))


@click.group("connector")
def connector_group() -> None:
    """The national connector: state, a manual indicator pull, a heartbeat."""


def _runtime(config_file: Path | None, data_dir: Path | None) -> StandaloneServices:
    from soclite.control.schema import open_control_db
    from soclite.playbooks.outbox import Outbox
    from soclite.playbooks.services import StandaloneServices

    settings = load_cli_settings(config_file, data_dir=data_dir)
    return StandaloneServices(settings, outbox=Outbox.from_settings(settings, open_control_db(settings.data_dir)))


@connector_group.command("status")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--config", "config_file", type=click.Path(path_type=Path))
def status(data_dir: Path | None, config_file: Path | None) -> None:
    """Last success, backlog, last error of the national connector (from the outbox db)."""
    runtime = _runtime(config_file, data_dir)
    state = need(runtime.outbox, "the outbox").connector_status(runtime.settings.national.kind)
    data = state.model_dump()
    data["enabled"] = runtime.settings.national.enabled
    data["warnings"] = need(runtime.outbox, "the outbox").health_warnings(connector=runtime.settings.national.kind)
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@connector_group.command("pull")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--config", "config_file", type=click.Path(path_type=Path))
def pull(data_dir: Path | None, config_file: Path | None) -> None:
    """Pull indicators now into the stored national IoC lists (the server applies them at its next start)."""
    from soclite.playbooks.worker import Worker

    runtime = _runtime(config_file, data_dir)
    count = Worker(runtime).pull_indicators()
    state = need(runtime.outbox, "the outbox").connector_status(runtime.settings.national.kind)
    click.echo(f"{count} indicator(s) pulled; cursor {state.cursor}; last error: {state.last_error}")


@connector_group.command("heartbeat")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--config", "config_file", type=click.Path(path_type=Path))
def heartbeat(data_dir: Path | None, config_file: Path | None) -> None:
    """Send one heartbeat now; exit 1 if the peer did not take it."""
    from soclite.playbooks.worker import Worker

    runtime = _runtime(config_file, data_dir)
    ok = Worker(runtime).heartbeat()
    click.echo(
        "heartbeat sent"
        if ok
        else f"heartbeat failed: {need(runtime.outbox, 'the outbox').connector_status(runtime.settings.national.kind).last_error}"
    )
    sys.exit(0 if ok else 1)


commands: list[click.Command] = [playbooks_group, connector_group]
