"""``soclite report``: render a report for a period now (contract in DESIGN.md)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from soclite.errors import ReportError, SocliteError
from soclite.reports.i18n import LANGUAGES
from soclite.reports.periods import PERIOD_HELP, parse_period
from soclite.reports.render import parse_formats


def _check_period(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        parse_period(value)
    except ReportError as exc:
        raise click.BadParameter(str(exc)) from exc
    return value


def _check_formats(_ctx: click.Context, _param: click.Parameter, value: str) -> list[str]:
    try:
        return parse_formats(value)
    except ReportError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("report")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML configuration file.")
@click.option("--period", required=True, callback=_check_period, help=PERIOD_HELP)
@click.option("--lang", type=click.Choice(LANGUAGES), default="vi", show_default=True, help="Report language.")
@click.option("--format", "formats", default="pdf,html,csv", show_default=True, callback=_check_formats,
              help="Comma-separated: pdf, html, csv, docx.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder to write the report files to.")
@click.option("--unit", default=None, help="Unit code: a report for that unit and the units below it.")
def report_command(
    data_dir: Path | None,
    config_file: Path | None,
    period: str,
    lang: str,
    formats: list[str],
    out_dir: Path,
    unit: str | None,
) -> None:
    """Render the report of PERIOD from the store, archive it, and copy its files to OUT."""
    from soclite.config import load_cli_settings
    from soclite.reports.archive import ReportArchive
    from soclite.reports.service import ReportRequest, generate
    from soclite.store import open_store

    settings = load_cli_settings(config_file, data_dir=data_dir)
    try:
        parse_period(period, settings.timezone)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(settings)
        archive = ReportArchive(settings.data_dir)
        try:
            request = ReportRequest(period=period, lang=lang, formats=tuple(formats), unit=unit, requested_by="cli")
            report, _ctx, _outputs = generate(store, settings, archive, request)
            out_dir.mkdir(parents=True, exist_ok=True)
            stem = f"report_{report.period}_{lang}" + (f"_{unit}" if unit else "")
            for f in report.files:
                target = out_dir / f"{stem}.{f.format}"
                shutil.copyfile(archive.file_path(report, f.format), target)
                click.echo(f"{target}\tsha256={f.sha256}")
            click.echo(f"archived as {report.id} ({report.doc_number}): {report.summary}", err=True)
        finally:
            archive.close()
            store.close()
    except SocliteError as exc:
        click.echo(f"soclite report: {exc}", err=True)
        sys.exit(1)


commands: list[click.Command] = [report_command]
