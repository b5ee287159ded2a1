"""Commands of the API package: tokens (and users, audit with the workspace)."""

from __future__ import annotations

from pathlib import Path

import click

from api.identity import Role


@click.group("token")
def token_group() -> None:
    """Bearer tokens for automation and agents."""


@token_group.command("create")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--unit", default=None, help="Unit code the token is bound to (its subtree).")
@click.option("--name", default=None)
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
def token_create(data_dir: Path, role: str, unit: str | None, name: str | None, config_file: Path | None) -> None:
    """Print a new bearer token (only the token) on stdout."""
    from soclite.cli import load_cli_settings
    from soclite.runtime import Runtime

    settings = load_cli_settings(config_file, data_dir=data_dir)
    runtime = Runtime.build(settings)
    try:
        click.echo(runtime.identity.create_token(role=role, unit=unit, name=name))
    finally:
        runtime.close()


commands: list[click.Command] = [token_group]
