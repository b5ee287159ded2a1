"""Collector commands: ``soclite import``, ``soclite deadletter list|purge``, ``soclite sensor``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from soclite.errors import JournalError, SocliteError

if TYPE_CHECKING:
    from soclite.config import Settings
    from soclite.store.journal import Journal


def _journal(settings: Settings) -> Journal:
    """The journal of a data dir (shared with a running server: SQLite WAL allows both)."""
    from soclite.store.journal import Journal

    return Journal.from_settings(settings)


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file())
        else:
            files.append(path)
    return files


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Data directory (its journal.db).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
@click.option("--unit", default=None, help="Unit code stamped on every imported event.")
def import_files(files: tuple[Path, ...], data_dir: Path | None, config_file: Path | None, unit: str | None) -> None:
    """Import EVTX, JSON/JSONL(.gz), syslog text or pcap files into the ingest journal.

    The running server's pipeline consumes them like any other input. Importing the same
    file again stores nothing new; malformed lines become dead letters.
    """
    from tqdm import tqdm

    from soclite.collectors.files import read_file
    from soclite.config import load_cli_settings
    from soclite.models import utcnow

    settings = load_cli_settings(config_file, data_dir=data_dir)
    journal = _journal(settings)
    totals = {"events": 0, "rejected": 0, "duplicate_batches": 0}
    failed = False
    try:
        for path in _expand(files):
            bar = tqdm(desc=path.name, unit=" events", disable=not sys.stderr.isatty(), leave=False)
            try:
                for chunk in read_file(path, received=utcnow(), default_tz=settings.timezone,
                                       max_bytes=settings.server.max_message_bytes, unit=unit):  # fmt: skip
                    accepted, duplicate = journal.append(chunk.batch_id, chunk.events, chunk.dead, unit=unit)
                    totals["events"] += accepted
                    totals["rejected"] += 0 if duplicate else len(chunk.dead)
                    totals["duplicate_batches"] += int(duplicate)
                    bar.update(len(chunk.events))
            except JournalError as exc:
                click.echo(f"soclite import: {path}: {exc}", err=True)
                failed = True
                break
            except OSError as exc:
                click.echo(f"soclite import: {path}: {exc.strerror or exc}", err=True)
                failed = True
            finally:
                bar.close()
    finally:
        journal.close()
    click.echo(
        f"imported {totals['events']} events, {totals['rejected']} dead letters, "
        f"{totals['duplicate_batches']} batches already imported"
    )
    if failed:
        sys.exit(1)


@click.group("deadletter")
def deadletter() -> None:
    """Inspect input that could not become events."""


@deadletter.command("list")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
def deadletter_list(data_dir: Path | None, config_file: Path | None, limit: int, as_json: bool) -> None:
    """List dead letters, newest first: time, source, reason and the raw bytes."""
    import orjson

    from soclite.config import load_cli_settings
    from soclite.store.deadletter import DeadLetters

    settings = load_cli_settings(config_file, data_dir=data_dir)
    journal = _journal(settings)
    try:
        letters = DeadLetters(journal.db)
        items, _ = letters.list(limit)
        for item in items:
            if as_json:
                click.echo(orjson.dumps(item.to_json()).decode())
            else:
                raw = item.raw.decode("utf-8", "replace")
                click.echo(f"{item.id}\t{item.at}\t{item.source}\t{item.reason}\t{raw[:200]!r}")
        if not as_json:
            click.echo(f"{letters.count()} dead letter(s)", err=True)
    finally:
        journal.close()


@deadletter.command("purge")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
@click.option("--before", default=None, metavar="DATE",
              help="Only those written before DATE (YYYY-MM-DD or ISO time; local time zone if none given).")  # fmt: skip
def deadletter_purge(data_dir: Path | None, config_file: Path | None, before: str | None) -> None:
    """Delete dead letters (all of them, or those written before DATE) once their cause is dealt with.

    Compaction already expires them after journal.deadletter_days and past journal.deadletter_max_bytes;
    this frees the space now.
    """
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from soclite.config import load_cli_settings
    from soclite.store.deadletter import DeadLetters

    settings = load_cli_settings(config_file, data_dir=data_dir)
    cutoff: datetime | None = None
    if before is not None:
        try:
            cutoff = datetime.fromisoformat(before.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(f"{before!r} is not a date (YYYY-MM-DD) or ISO time", param_hint="--before") from None
        if cutoff.tzinfo is None:
            cutoff = cutoff.replace(tzinfo=ZoneInfo(settings.timezone))
    journal = _journal(settings)
    try:
        deleted = DeadLetters(journal.db).purge(cutoff)
    finally:
        journal.close()
    click.echo(f"deleted {deleted} dead letter(s)" + (f" written before {cutoff.isoformat()}" if cutoff else ""))


@click.command("sensor")
@click.option("--iface", default=None, help="Capture interface (live; needs CAP_NET_RAW).")
@click.option("--pcap", "pcaps", multiple=True, type=click.Path(exists=True, path_type=Path), help="Read a pcap instead.")
@click.option("--server", default=None, help="soclite server URL, e.g. https://soc.example:8000")
@click.option("--token", envvar="SOCLITE_SENSOR_TOKEN", default=None, help="Agent or admin token (or SOCLITE_SENSOR_TOKEN).")
@click.option("--filter", "bpf", default=None, help="BPF capture filter.")
@click.option("--ca", type=click.Path(exists=True, path_type=Path), default=None, help="CA bundle to verify the server.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def sensor(iface: str | None, pcaps: tuple[Path, ...], server: str | None, token: str | None, bpf: str | None,
           ca: Path | None, duration: float | None) -> None:  # fmt: skip
    """Network sensor: DNS, flows, HTTP and TLS SNI from a live interface or pcap files, posted to the server."""
    from soclite.collectors.sensor import LiveSensor

    if not server or not token:
        raise click.UsageError("--server and --token are needed (events are posted to /api/v1/ingest)")
    if iface and pcaps:
        raise click.UsageError("use --iface or --pcap, not both")
    live = LiveSensor(iface or "", server, token, bpf=bpf, ca=ca)
    try:
        if pcaps:
            from soclite.collectors.sensor import pcap_events

            for path in pcaps:
                events = list(pcap_events(path))
                for i in range(0, len(events), live.max_batch):
                    live._post(events[i : i + live.max_batch])
        elif iface:
            live.run(duration)
        else:
            raise click.UsageError("give --iface IF or --pcap FILE")
    except PermissionError as exc:
        click.echo(f"soclite sensor: capture needs CAP_NET_RAW (run as root or setcap): {exc}", err=True)
        sys.exit(1)
    except (SocliteError, OSError) as exc:
        click.echo(f"soclite sensor: {exc}", err=True)
        sys.exit(1)
    click.echo(f"sent {live.sent} events", err=True)


commands: list[click.Command] = [import_files, deadletter, sensor]
