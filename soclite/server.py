"""``soclite server``: API, syslog listeners, ingest, correlator, playbooks and scheduler in one process."""

from __future__ import annotations

import logging
from pathlib import Path

import click

log = logging.getLogger("soclite.server")


@click.command("server")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--http-host", default=None)
@click.option("--http-port", type=int, default=None)
@click.option("--syslog-port", type=int, default=None)
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
def server(
    data_dir: Path | None, http_host: str | None, http_port: int | None, syslog_port: int | None, config_file: Path | None
) -> None:
    """Run everything in one process (the embedded default)."""
    import uvicorn

    from api.app import create_app
    from soclite.cli import load_cli_settings
    from soclite.runtime import Runtime

    settings = load_cli_settings(config_file, data_dir=data_dir)
    if http_port is not None:
        settings.server.http_port = http_port
    if http_host is not None:
        settings.server.http_host = http_host
    if syslog_port is not None:
        settings.server.syslog_port = syslog_port
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = Runtime.build(settings)
    app = create_app(runtime)
    try:
        uvicorn.run(app, host=settings.server.http_host, port=settings.server.http_port, log_level="info")
    finally:
        runtime.close()


commands: list[click.Command] = [server]
