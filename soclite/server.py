"""``soclite server``: API, syslog listeners, ingest, correlator, playbooks and scheduler.

The process is wired by :class:`soclite.application.Server`; this module is its command line.

By default the pipeline (journal → correlator → store → playbook triggers) runs
in a child process supervised by this one (``server.pipeline_process``, see
:mod:`soclite.pipeline_process`): ingest and the pipeline are both CPU-bound
Python and would otherwise share one GIL. This process then keeps its own
engine only for the API (rule list, rule test, exception compilation) and the
playbook worker's IoC pushes; the child owns the correlation window state.

Start-up order follows the data flow backwards, so nothing produces into a part
that is not running yet: store, control database and journal, correlator,
outbox, playbook worker, pipeline consumer, report scheduler, inputs,
and last the HTTP API. Shutdown runs in reverse; the correlator's window
state is saved on the way out.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from soclite.config import Settings
from soclite.logs import configure_logging

log = logging.getLogger(__name__)


@click.command("server")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Where soclite keeps its data.")
@click.option("--http-host", default=None, help="Address of the HTTP API and UI (default 127.0.0.1).")
@click.option("--http-port", type=int, default=None, help="Port of the HTTP API and UI (default 8000).")
@click.option("--syslog-port", type=int, default=None, help="Syslog UDP and TCP port (default 5514; 0 = off).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="YAML configuration.")
def server(
    data_dir: Path | None, http_host: str | None, http_port: int | None, syslog_port: int | None, config_file: Path | None
) -> None:
    """Run everything in one process (the embedded default)."""
    import uvicorn

    from soclite.api.app import create_app
    from soclite.application import Server
    from soclite.config import load_cli_settings
    from soclite.errors import ConfigError, SchemaError

    overrides: dict[str, Any] = {"data_dir": data_dir}
    settings: Settings = load_cli_settings(config_file, **overrides)
    if http_port is not None:
        settings.server.http_port = http_port
    if http_host is not None:
        settings.server.http_host = http_host
    if syslog_port is not None:
        settings.server.syslog_port = syslog_port
    configure_logging(settings.logging.level, json=settings.logging.format == "json")
    from soclite.collectors.memory import limit_arenas

    limit_arenas()  # before any worker thread: see soclite.collectors.memory
    try:
        settings.check_secrets()
    except ConfigError as exc:
        click.echo(f"soclite: invalid configuration: {exc}", err=True)
        sys.exit(2)
    try:
        srv = Server(settings)
    except SchemaError as exc:
        click.echo(f"soclite: cannot open the data directory: {exc}", err=True)
        sys.exit(3)
    try:
        password = srv.first_admin_password()
        if password:
            # Shown once: only its argon2 hash is kept.
            click.echo(f"soclite: first admin created: user 'admin', one-time password: {password}", err=True)
        srv.start_background()
        app = create_app(srv.runtime)
        uv = uvicorn.Server(http_config(app, settings))
        signal.signal(signal.SIGTERM, lambda *_: setattr(uv, "should_exit", True))
        uv.run()
    finally:
        srv.stop()


def http_config(app: Any, settings: Settings) -> Any:
    """The uvicorn configuration of the API (a function so tests serve the app exactly so)."""
    import uvicorn

    # log_config=None: uvicorn's loggers propagate to the root handler configure_logging installed
    # (same format, JSON included) instead of getting uvicorn's own text handlers.
    return uvicorn.Config(
        app, host=settings.server.http_host, port=settings.server.http_port, log_level="info", lifespan="on",
        log_config=None,
        # uvicorn's own proxy-header handling believes X-Forwarded-For from 127.0.0.1 (any local
        # process); the app applies auth.trusted_proxies instead (soclite.api.security).
        proxy_headers=False,
    )


commands: list[click.Command] = [server]
