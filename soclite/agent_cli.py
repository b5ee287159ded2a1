"""``soclite agent``: run the endpoint agent, and ``soclite agent enroll-token create`` for admins.

A command-line entry point, so it sits with the application: running the agent execs
``python -m soclite.collectors.agent`` at once (a workstation never loads the server's packages), while
the enrollment token command opens the server's control database.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


@click.group("agent", invoke_without_command=True)
@click.option("--server", default=None, help="URL of the soclite server.")
@click.option("--enroll-token", default=None, help="One-time enrollment token (first start).")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None, help="Agent state directory.")
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path), default=None, help="Agent YAML config."
)
@click.option("--log-level", default="INFO", show_default=True)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), envvar="SOCLITE_LOGGING__FORMAT", default="text",
    show_default=True, help="json: one object per line, for a log shipper.",
)
@click.pass_context
def agent(
    ctx: click.Context,
    server: str | None,
    enroll_token: str | None,
    state_dir: Path | None,
    config_file: Path | None,
    log_level: str,
    log_format: str,
) -> None:
    """Run the endpoint agent (tail logs, spool, ship, heartbeat, obey isolation commands)."""
    if ctx.invoked_subcommand is not None:
        return
    if not server or state_dir is None:
        raise click.UsageError("--server and --state-dir are required to run the agent")
    argv = ["--server", server, "--state-dir", str(state_dir), "--log-level", log_level,
            "--log-format", log_format]
    if enroll_token:
        argv += ["--enroll-token", enroll_token]
    if config_file is not None:
        argv += ["--config", str(config_file)]
    if os.name == "posix":
        # Replace this process: the shared CLI has imported server-side packages the agent must not carry.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "soclite.collectors.agent", *argv])
    from soclite.collectors.agent.__main__ import main

    sys.exit(main(argv))


@agent.group("enroll-token")
def enroll_token_group() -> None:
    """One-time enrollment tokens for new agents."""


@enroll_token_group.command("create")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option("--unit", required=True, help="Unit code the enrolled agents belong to.")
@click.option("--uses", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--expires-hours", type=click.FloatRange(min=0.01), default=24.0, show_default=True)
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
def enroll_token_create(data_dir: Path, unit: str, uses: int, expires_hours: float, config_file: Path | None) -> None:
    """Print a new enrollment token on stdout (only its hash is stored); the issue is audited."""
    from soclite.config import load_cli_settings
    from soclite.control import audit
    from soclite.control.agents import AgentRegistry
    from soclite.store import open_store

    settings = load_cli_settings(config_file, data_dir=data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings)
    registry = AgentRegistry.open(data_dir)
    try:
        token = registry.create_enroll_token(unit=unit, uses=uses, expires_hours=expires_hours)
        audit.append(store, audit.cli_actor(), "enroll_token.create", f"enroll-token:{token.split('_', 2)[1]}",
                     None, {"unit": unit, "uses": uses, "expires_hours": expires_hours}, unit)
        click.echo(token)
    finally:
        registry.close()
        store.close()


commands: list[click.Command] = [agent]
