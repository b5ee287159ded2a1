"""``soclite hunt-stored``: one Sigma rule over the events already stored (retro-hunt).

    soclite hunt-stored --data-dir DIR --rule RULE --from 2024-08-01 --to 2024-08-03 [--unit CODE ...]
                        [--no-archive] [--stats]

A sibling of ``soclite hunt`` (which reads files and keeps its contract): RULE is a rule file, the id
of a rule of the loaded set (``correlator.rules``) or inline Sigma YAML. On OpenSearch the rule runs as
a query through pySigma's OpenSearch backend; on the embedded store the day files, then the cold
archive's segments of the range, stream through the engine (:mod:`soclite.control.retrohunt`).
``--from``/``--to`` are in the site's zone (a date is a whole local day). One JSON line per hit on
stdout (the fields of ``soclite hunt``'s rows, plus ``unit`` and ``event_id``), a progress bar on a
terminal, and the run in the audit trail.
"""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson


@click.command("hunt-stored")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Where soclite keeps its data.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="YAML configuration.")
@click.option("--rule", "rule_spec", required=True, help="A rule file, the id of a loaded rule, or inline Sigma YAML.")
@click.option("--from", "start_text", required=True, help="Start (a date or datetime in the site's zone).")
@click.option("--to", "end_text", required=True, help="End (a date includes that whole day).")
@click.option("--unit", "units", multiple=True, help="Only events of this unit and the units below it (repeatable).")
@click.option("--no-archive", is_flag=True, help="Do not re-scan the cold archive's segments of the range.")
@click.option("--stats", "show_stats", is_flag=True, help="Print events read, hits and seconds to stderr.")
def hunt_stored(data_dir: Path | None, config_file: Path | None, rule_spec: str, start_text: str, end_text: str,
                units: tuple[str, ...], no_archive: bool, show_stats: bool) -> None:
    """Run one Sigma rule over stored events (hot store and cold archive); one JSON line per hit."""
    from soclite.config import load_cli_settings
    from soclite.control import audit
    from soclite.control.retrohunt import HuntProgress, HuntRequest, resolve_rule, run_hunt
    from soclite.errors import SocliteError
    from soclite.sitetime import parse_bound, zone
    from soclite.store import open_store
    from soclite.store.base import unit_subtree

    settings = load_cli_settings(config_file, data_dir=data_dir)
    tz = zone(settings.timezone)
    try:
        start = parse_bound(start_text, tz, name="from")
        end = parse_bound(end_text, tz, end=True, name="to")
    except SocliteError as exc:
        raise click.BadParameter(str(exc)) from exc
    assert start is not None and end is not None  # required options, never blank
    try:
        rule_yaml, origin = resolve_rule(rule_spec, _loaded_rules(settings, rule_spec))
    except SocliteError as exc:
        raise click.UsageError(str(exc)) from exc
    store = open_store(settings)
    progress: Any = None
    state = HuntProgress()
    t0 = time.perf_counter()
    try:
        scope = None
        if units:
            known = store.list_units()
            unknown = sorted(set(units) - {u.code for u in known})
            if unknown:  # a typo would otherwise hunt nothing and look like a clean result
                raise click.UsageError(f"unknown unit(s): {', '.join(unknown)}")
            scope = frozenset().union(*(unit_subtree(known, u) for u in units))
        req = HuntRequest(rule_yaml=rule_yaml, origin=origin, start=start, end=end, units=scope,
                          archive=not no_archive)
        if sys.stderr.isatty():
            import shutil

            from tqdm import tqdm

            # a terminal that reports no size (a serial console, `script`) is 0x0 to tqdm, which then
            # draws nothing at all: the standard fallback size (COLUMNS/LINES, else 80x24) instead
            size = shutil.get_terminal_size()
            progress = tqdm(total=None, unit="ev", file=sys.stderr, ncols=size.columns, nrows=size.lines)

        def on_progress(p: HuntProgress) -> None:
            state.__dict__.update(p.__dict__)
            if progress is not None:
                if p.total is not None and progress.total != p.total:
                    progress.total = p.total
                progress.set_postfix_str(f"{p.phase}, {p.hits} hit(s)", refresh=False)
                progress.update(p.scanned - progress.n)

        out = sys.stdout.buffer
        try:
            for hit in run_hunt(store, req, archive_dir=settings.data_dir / "archive",
                                placeholders={k: list(v) for k, v in settings.correlator.placeholders.items()},
                                progress=on_progress):
                out.write(orjson.dumps(hit, default=str, option=orjson.OPT_APPEND_NEWLINE))
            out.flush()
        except SocliteError as exc:
            click.echo(f"soclite hunt-stored: {exc}", err=True)
            sys.exit(1)
        finally:
            if progress is not None:
                progress.close()
        audit.append(store, f"cli:{_user()}", "hunt.run", f"rule:{origin}", None,
                     {"from": start.isoformat(), "to": end.isoformat(), "units": sorted(scope) if scope else None,
                      "scanned": state.scanned, "hits": state.hits})  # fmt: skip
    finally:
        store.close()
    if show_stats:
        seconds = time.perf_counter() - t0
        click.echo(f"events read: {state.scanned}, hits: {state.hits}, seconds: {seconds:.2f}", err=True)


def _loaded_rules(settings: Any, spec: str) -> Any:
    """An engine over the configured rules, only when ``spec`` may be a rule id (not a file, not YAML)."""
    if "\n" in spec or Path(spec).is_file():
        return None
    from soclite.correlator.engine import Engine
    from soclite.correlator.loader import load_paths

    placeholders = {k: list(v) for k, v in settings.correlator.placeholders.items()}
    return Engine(load_paths(list(settings.correlator.rules), placeholders), placeholders=placeholders)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container): still say it came from the command line
        return "unknown"


commands: list[click.Command] = [hunt_stored]
