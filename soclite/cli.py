"""The ``soclite`` command line.

Each package contributes its own commands from its ``cli`` module (listed in
:data:`COMMAND_MODULES`); this module only assembles them, so finding every
command of a kind means opening one file.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from soclite.errors import ConfigError, SocliteError

#: modules exposing ``commands: list[click.Command]``
COMMAND_MODULES = (
    "soclite.server",
    "api.cli",
    "collectors.cli",
    "correlator.cli",
    "playbooks.cli",
    "soclite.reports.cli",
)


@click.group()
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
    from soclite.config import masked_dump

    settings = load_cli_settings(config_file, data_dir=data_dir)
    click.echo(json.dumps(masked_dump(settings), indent=2, ensure_ascii=False))


def load_cli_settings(config_file: Path | None, **overrides: Any) -> Any:
    """Load settings for a command; an invalid configuration exits with code 2 and says where."""
    from soclite.config import load_settings

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return load_settings(config_file, **clean)
    except ConfigError as exc:
        click.echo(f"soclite: invalid configuration: {exc}", err=True)
        sys.exit(2)


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A package whose cli module is not there yet contributes nothing; any other import error is a bug.
            if exc.name == name:
                continue
            raise
        for command in getattr(module, "commands", []):
            cli.add_command(command)


def main() -> None:
    _register()
    try:
        cli(standalone_mode=True)
    except SocliteError as exc:  # pragma: no cover - commands handle their own errors where they can
        click.echo(f"soclite: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
