"""The ``soclite`` command line.

Each package contributes its own commands from its ``cli`` module (listed in
:data:`COMMAND_MODULES`); this module only assembles them, so finding every
command of a kind means opening one file.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import click

from soclite.errors import SocliteError

#: modules exposing ``commands: list[click.Command]``
COMMAND_MODULES = (
    "soclite.server",
    "soclite.api.cli",
    "soclite.collectors.cli",
    "soclite.agent_cli",
    "soclite.correlator.cli",
    "soclite.playbooks.cli",
    "soclite.reports.cli",
    "soclite.demo",
    "soclite.archive_cli",
    "soclite.hunt_cli",
)

#: where to look first for a command, so that e.g. ``soclite agent`` on a workstation imports
#: only the agent (a few MB) and not the server's FastAPI, pySigma and scapy.
COMMAND_HINTS = {
    "server": "soclite.server",
    "token": "soclite.api.cli",
    "user": "soclite.api.cli",
    "audit": "soclite.api.cli",
    "agent": "soclite.agent_cli",
    "import": "soclite.collectors.cli",
    "sensor": "soclite.collectors.cli",
    "deadletter": "soclite.collectors.cli",
    "hunt": "soclite.correlator.cli",
    "rules": "soclite.correlator.cli",
    "playbooks": "soclite.playbooks.cli",
    "report": "soclite.reports.cli",
    "demo": "soclite.demo",
    "archive": "soclite.archive_cli",
    "hunt-stored": "soclite.hunt_cli",
}


def _module_commands(name: str) -> list[click.Command]:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # A package whose cli module is not there contributes nothing; any other import error is a bug.
        if exc.name == name:
            return []
        raise
    return list(getattr(module, "commands", []))


class LazyGroup(click.Group):
    """Imports a package's commands only when they are asked for (or listed by --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        for module in COMMAND_MODULES:
            names.update(c.name for c in _module_commands(module) if c.name)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        hint = COMMAND_HINTS.get(cmd_name)
        modules = ([hint] if hint else []) + [m for m in COMMAND_MODULES if m != hint]
        for module in modules:
            for candidate in _module_commands(module):
                if candidate.name == cmd_name:
                    return candidate
        return None


@click.group(cls=LazyGroup)
@click.version_option(package_name="soclite")
def cli() -> None:
    """soclite: a SIEM-lite for a provincial security-monitoring centre."""


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML configuration file.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory.")
def config_show(config_file: Path | None, data_dir: Path | None) -> None:
    """Print the effective configuration with secrets masked."""
    from soclite.config import load_cli_settings, masked_dump

    settings = load_cli_settings(config_file, data_dir=data_dir)
    click.echo(json.dumps(masked_dump(settings), indent=2, ensure_ascii=False))


@cli.group("db")
def db_group() -> None:
    """The data directory's SQLite databases."""


@db_group.command("check")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True, help="Data directory.")
def db_check(data_dir: Path) -> None:
    """Integrity-check every database (PRAGMA quick_check); exit 1 naming each damaged file."""
    from soclite.db import REMEDY, check_data_dir

    results = check_data_dir(data_dir)
    if not results:
        click.echo(f"soclite: no database in {data_dir}", err=True)
        sys.exit(1)
    for path, why in results.items():
        click.echo(f"{path}: {why or 'ok'}")
    if any(results.values()):
        click.echo(f"soclite: damaged database(s); {REMEDY}", err=True)
        sys.exit(1)


def main() -> None:
    # Everything soclite writes (data dir, SQLite files with events, tokens' hashes, audit) is
    # private to the service account: directories 0700, files 0600.
    os.umask(0o077)
    try:
        cli(standalone_mode=True)
    except SocliteError as exc:  # pragma: no cover - commands handle their own errors where they can
        click.echo(f"soclite: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
