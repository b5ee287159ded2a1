"""``soclite hunt`` (Sigma over files) and ``soclite rules check`` (which rules load, which fail and why)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import resource
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import orjson

from soclite.errors import ParseError, RuleError
from soclite.models import TIMESTAMP, Event, severity_of, system_field

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")


class InputStats:
    def __init__(self) -> None:
        self.events = 0
        self.skipped = 0
        self.warned = 0

    def bad(self, where: str, reason: str) -> None:
        self.skipped += 1
        if self.warned < 20:
            self.warned += 1
            click.echo(f"soclite hunt: skipped {where}: {reason}", err=True)


def iter_inputs(paths: tuple[Path, ...]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def _open_text(path: Path) -> IO[bytes]:
    from soclite.collectors.files import READ_BUFFER

    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb", buffering=READ_BUFFER)


def _syslog_event(line: str, path: Path, tz: str = "Asia/Ho_Chi_Minh") -> Event:
    """A text line → event: through the collectors' normalizer when it is there, else ``{"message": line}``."""
    try:
        from soclite.collectors.normalize import normalize
    except ImportError:  # pragma: no cover - the collectors part may not be installed
        return {"message": line, "event.original": line}
    return normalize(
        {"message": line},
        received=datetime.now(UTC),
        input="file",
        unit=None,
        agent_id=None,
        default_tz=tz,
    )


#: an event, the JSON line it was decoded from (or None) and how many of its first keys that line
#: holds (see Engine.match's ``raw`` and ``raw_keys``)
Decoded = tuple[Event, bytes | None, int | None]


def iter_events(path: Path, stats: InputStats, tz: str = "Asia/Ho_Chi_Minh") -> Iterator[Decoded]:
    """Events of one file: EVTX, JSON lines (optionally gzip'd) or syslog text.

    ``tz`` is the zone of zone-less local times (NXLog ``EventTime``, syslog)."""
    from soclite.collectors.windows import iter_evtx

    name = path.name.lower()
    if name.endswith(".evtx"):
        try:
            for event in iter_evtx(path):
                yield event, None, None
        except (ParseError, RuntimeError, OSError, ValueError) as exc:
            stats.bad(str(path), str(exc))
        return
    is_json = name.endswith(JSON_SUFFIXES) or name.endswith(tuple(s + ".gz" for s in JSON_SUFFIXES))
    with _open_text(path) as fh:
        if is_json:
            yield from _json_events(fh, path, stats, tz)
            return
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                stats.bad(f"{path}:{lineno}", "not UTF-8")
                continue
            try:
                yield _syslog_event(line, path, tz), None, None
            except ParseError as exc:
                stats.bad(f"{path}:{lineno}", str(exc))


def _json_events(fh: IO[bytes], path: Path, stats: InputStats, tz: str) -> Iterator[Decoded]:
    """JSON lines → events: the hot loop of a hunt over exported logs, so orjson is tried first and a
    blank line is recognised by its failure (no stripped copy of every line). Each comes with its
    line: an NXLog record mapped in place keeps its keys' values and adds keys after them."""
    from soclite.collectors.windows import map_in_place

    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    for lineno, raw in enumerate(fh, 1):
        try:
            record = loads(raw)
        except decode_error as exc:
            if raw.strip():
                stats.bad(f"{path}:{lineno}", f"malformed JSON ({exc})")
            continue
        if type(record) is not dict:
            stats.bad(f"{path}:{lineno}", "not a JSON object")
            continue
        if "Channel" in record or "winlog" in record or "Event" in record:
            try:
                event, keys = map_in_place(record, default_tz=tz)
            except ParseError as exc:
                stats.bad(f"{path}:{lineno}", str(exc))
                continue
            # Winlogbeat or XML-as-JSON (keys None): a new event of other names, not the line's
            yield event, raw if keys is not None else None, keys
        else:
            yield record, raw, None


def _row(match: Any, source: str) -> dict[str, Any]:
    """One detection as printed; the event is referenced, not copied (it is written right away)."""
    from soclite.correlator.matches import host_of

    rule = match.rule
    event = match.event
    return {
        "rule_id": rule.id,
        "rule_title": rule.title,
        "level": rule.level,
        "severity": str(severity_of(rule.level)),
        "timestamp": event.get(TIMESTAMP),
        "host": host_of(event),
        "source": source,
        "record_id": system_field(event, "EventRecordID"),
        "kind": match.kind,
        "event": event,
    }


@click.command("hunt")
@click.option(
    "--rules",
    "rule_paths",
    type=click.Path(exists=True, path_type=Path),
    multiple=True,
    required=True,
    help="Sigma rule file or folder (repeatable).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv", "table"]), default="jsonl", show_default=True
)
@click.option("--stats", "show_stats", is_flag=True, help="Print counts and speed to stderr.")
@click.option(
    "--placeholder",
    "placeholders",
    multiple=True,
    metavar="NAME=V1,V2",
    help="Values for an `expand` placeholder (repeatable).",
)
@click.option(
    "--timezone",
    "tz",
    default="Asia/Ho_Chi_Minh",
    show_default=True,
    help="Zone of zone-less local times in the inputs (NXLog EventTime, syslog).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where compiled rules are cached [default: $XDG_CACHE_HOME/soclite or ~/.cache/soclite].",
)
@click.option("--no-cache", is_flag=True, help="Parse and compile the rules without the compiled-rule cache.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def hunt(
    rule_paths: tuple[Path, ...],
    fmt: str,
    show_stats: bool,
    placeholders: tuple[str, ...],
    tz: str,
    cache_dir: Path | None,
    no_cache: bool,
    inputs: tuple[Path, ...],
) -> None:
    """Run Sigma rules over EVTX, JSON/JSONL(.gz) and syslog files; print one line per detection."""
    from soclite.correlator.engine import Engine
    from soclite.correlator.loader import load_paths
    from soclite.csvsafe import safe_cell

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise click.BadParameter(f"unknown time zone {tz!r}", param_hint="--timezone") from exc
    ph = {}
    for item in placeholders:
        name, _, values = item.partition("=")
        ph[name.strip().strip("%")] = [v for v in values.split(",") if v]
    t0 = time.perf_counter()
    rules_cache = cache_file(rule_paths, ph, cache_dir, no_cache)
    try:
        ruleset = load_paths(rule_paths, ph, cache=rules_cache)
    except RuleError as exc:
        raise click.UsageError(str(exc)) from exc
    for failure in ruleset.failures:
        click.echo(f"soclite hunt: rule not loaded: {failure}", err=True)
    if not ruleset.rules and not ruleset.correlations:
        # hunting with nothing to hunt for would print "0 detections" and look like a clean result
        click.echo(
            f"soclite hunt: no rule loaded from {', '.join(str(p) for p in rule_paths)} "
            f"({len(ruleset.failures)} failed): nothing to hunt with",
            err=True,
        )
        sys.exit(2)
    engine = Engine(ruleset, placeholders=ph)
    scanners_cache = None
    if rules_cache is not None:
        # the literal databases of the event types' indexes and their learned anchor options: compiled
        # and learned once, reused by later hunts
        scanners_cache = rules_cache.with_name(rules_cache.name.replace("rules-", "scanners-", 1))
        engine.load_scanners(scanners_cache)
    load_s = time.perf_counter() - t0
    stats = InputStats()
    out: IO[str] = sys.stdout
    # JSON lines go straight to stdout's (buffered) byte stream: orjson's bytes, no decoding
    raw_out: IO[bytes] | None = getattr(out, "buffer", None) if fmt == "jsonl" else None
    writer: Any = None
    table_rows: list[dict[str, Any]] = []
    detections = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    files = list(iter_inputs(inputs))
    progress: Any = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(total=len(files), unit="file", file=sys.stderr)
    detect = engine.detect
    dumps = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    for path in files:
        source = str(path)
        n = 0
        for event, raw, raw_keys in iter_events(path, stats, tz):
            n += 1
            matches = detect(event, raw, raw_keys)
            if not matches:
                continue
            for match in matches:
                detections += 1
                row = _row(match, source)
                if raw_out is not None:
                    raw_out.write(dumps(row, default=str, option=newline))
                elif fmt == "jsonl":
                    out.write(dumps(row, default=str).decode("utf-8") + "\n")
                elif fmt == "csv":
                    if writer is None:
                        writer = csv.DictWriter(out, fieldnames=list(row))
                        writer.writeheader()
                    row["event"] = orjson.dumps(row["event"], default=str).decode("utf-8")
                    # attacker-controlled text (command lines, user names) must not become a formula
                    writer.writerow({k: safe_cell(v) for k, v in row.items()})
                else:
                    table_rows.append(row)
        stats.events += n
        if progress is not None:
            progress.update(1)
    if raw_out is not None:
        raw_out.flush()
    if progress is not None:
        progress.close()
    if fmt == "table":
        _print_table(out, table_rows)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    if scanners_cache is not None:
        engine.save_scanners(scanners_cache)
    if show_stats:
        rate = stats.events / elapsed if elapsed > 0 else 0.0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        click.echo(
            f"events read: {stats.events}, skipped: {stats.skipped}\n"
            f"rules loaded: {len(ruleset.rules) + len(engine.correlations)}, failed: {len(engine.failures)} "
            f"(load {load_s:.2f} s, cache {ruleset.cache})\n"
            f"detections: {detections}\n"
            f"seconds: {elapsed:.2f}, events/s: {rate:,.0f}\n"
            f"cpu seconds: {cpu:.2f}, events per cpu second: {stats.events / cpu if cpu > 0 else 0.0:,.0f}\n"
            f"peak memory: {peak:.0f} MB",
            err=True,
        )


def cache_file(
    paths: tuple[Path, ...], placeholders: dict[str, list[str]], cache_dir: Path | None, no_cache: bool
) -> Path | None:
    """The compiled-rule cache of one set of rule paths: one file per set, so hunts with different rule
    folders do not evict each other's cache (the content check is the cache's own, see correlator.cache)."""
    if no_cache:
        return None
    from soclite.correlator.cache import default_dir

    name = "\x00".join(sorted(str(p.resolve()) for p in paths))
    name += "\x01" + orjson.dumps(placeholders, option=orjson.OPT_SORT_KEYS).decode()
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return (cache_dir or default_dir()) / f"rules-{digest}.cache"


def _print_table(out: IO[str], rows: list[dict[str, Any]]) -> None:
    cols = ["timestamp", "level", "host", "rule_title", "source", "record_id"]
    widths = {c: max([len(c)] + [len(str(r.get(c) or "")) for r in rows]) for c in cols}
    widths["rule_title"] = min(widths["rule_title"], 70)
    buf = io.StringIO()
    buf.write("  ".join(c.upper().ljust(widths[c]) for c in cols) + "\n")
    for r in rows:
        buf.write("  ".join(str(r.get(c) or "")[: widths[c]].ljust(widths[c]) for c in cols) + "\n")
    out.write(buf.getvalue())


@click.group("rules")
def rules_group() -> None:
    """Sigma rule tools."""


@rules_group.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--strict", is_flag=True, help="Exit non-zero if any rule fails to load.")
@click.option("--quiet", is_flag=True, help="Only list the failures.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where compiled rules are cached [default: $XDG_CACHE_HOME/soclite or ~/.cache/soclite].",
)
@click.option("--no-cache", is_flag=True, help="Parse and compile the rules without the compiled-rule cache.")
def rules_check(
    paths: tuple[Path, ...], strict: bool, quiet: bool, cache_dir: Path | None, no_cache: bool
) -> None:
    """List the rules that load and the rules that fail, with file:line and the reason."""
    from soclite.correlator.engine import Engine
    from soclite.correlator.loader import load_paths

    t0 = time.perf_counter()
    ruleset = load_paths(paths, cache=cache_file(paths, {}, cache_dir, no_cache))
    engine = Engine(ruleset)
    load_s = time.perf_counter() - t0
    if not quiet:
        for rule in ruleset.rules:
            click.echo(f"ok    {rule.source}  {rule.id}  {rule.title}")
        for corr in engine.correlations:
            click.echo(f"ok    {corr.source}  {corr.id}  {corr.title} (correlation)")
        for flt in ruleset.filters:
            click.echo(f"ok    {flt.source}  {flt.id}  {flt.title} (filter)")
        for pipeline in ruleset.pipelines:
            click.echo(f"ok    {pipeline}  (pySigma pipeline, applied to the rules above)")
    for failure in engine.failures:
        click.echo(f"FAIL  {failure}")
    unrouted = set(engine.unrouted_rules())
    for rule in ruleset.rules:
        if rule.id in unrouted:
            click.echo(
                f"warn  {rule.source}  {rule.id}: no soclite input produces logsource {rule.logsource}"
            )
    loaded = len(ruleset.rules) + len(engine.correlations) + len(ruleset.filters)
    click.echo(
        f"{loaded} loaded, {len(engine.failures)} failed, {len(unrouted)} unrouted "
        f"(load {load_s:.2f} s, cache {ruleset.cache})",
        err=True,
    )
    if strict and engine.failures:
        sys.exit(1)


commands: list[click.Command] = [hunt, rules_group]
