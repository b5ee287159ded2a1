"""``soclite archive``: the cold archive of the embedded store's events (see :mod:`soclite.store.archive`).

    soclite archive run --data-dir DIR [--hot-days N]   # days older than the hot window → segments
    soclite archive verify --data-dir DIR               # every segment's SHA-256 and the manifest chain

``soclite hunt --rules R DIR/archive/events-YYYYMMDD.jsonl.gz`` re-scans a segment with Sigma rules.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import click

from soclite.models import utcnow


@click.group("archive")
def archive_group() -> None:
    """The cold archive of events: compressed, hash-chained daily segments."""


@archive_group.command("run")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Where soclite keeps its data.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="YAML configuration.")
@click.option("--hot-days", type=click.IntRange(min=1), default=None, help="Days kept in the store (store.hot_days).")
def archive_run(data_dir: Path | None, config_file: Path | None, hot_days: int | None) -> None:
    """Move whole UTC days of events older than the hot window into the archive; one JSON line per segment."""
    from soclite.config import load_cli_settings
    from soclite.store.archive import EventArchive, describe
    from soclite.store.sqlite import SQLiteStore

    settings = load_cli_settings(config_file, data_dir=data_dir)
    if settings.store.kind != "sqlite":
        click.echo("soclite: the cold archive is for the embedded (sqlite) store; OpenSearch keeps its own", err=True)
        sys.exit(2)
    days = hot_days or settings.store.hot_days
    store = SQLiteStore.from_settings(settings)
    store.open()
    try:
        segments = store.archive_events_before(utcnow() - timedelta(days=days), EventArchive(settings.data_dir / "archive"))
    finally:
        store.close()
    for segment in segments:
        click.echo(json.dumps(describe(segment)))
    click.echo(f"{len(segments)} day(s) archived; events of the last {days} day(s) stay in the store", err=True)


@archive_group.command("verify")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Where soclite keeps its data.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="YAML configuration.")
def archive_verify(data_dir: Path | None, config_file: Path | None) -> None:
    """Check every segment's SHA-256 and the manifest's hash chain; exit 1 naming each problem."""
    from soclite.config import load_cli_settings
    from soclite.store.archive import verify

    settings = load_cli_settings(config_file, data_dir=data_dir)
    checked, problems = verify(settings.data_dir / "archive")
    for problem in problems:
        click.echo(f"soclite: archive: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"archive OK: {checked} segment(s), chain intact")


commands: list[click.Command] = [archive_group]
