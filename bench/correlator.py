"""Throughput of the correlator over the shared OTRF Windows dataset, on one core.

    .venv/bin/python bench/correlator.py [--data FILE] [--rules DIR ...] [--limit N] [--exhaustive] [--json]
                                         [--scanner-cache FILE] [--repeat N] [--whole-passes N]

Loads every SigmaHQ rule whose logsource product is windows (timed and reported
apart), decompresses the gzip'd JSONL once to a temporary file (not timed: the
858 MB do not fit the 1 GB memory budget), then streams it line by line:
reading, orjson parsing, the Windows record mapping and detection are all inside
the timed loop. Reports events/s for the whole file, for its process-creation
events (Sysmon 1, Security 4688) and for its PowerShell script-block events
(4104) alone (first pass after the whole file, then the median of the later
passes), plus detections and peak RSS. The whole file is read twice by the same
engine (``--whole-passes``): the first pass also builds and learns the index of
every event type it meets (and compiles their literal databases), the second
shows the sustained rate of a running engine. Each figure is given per wall second
and per CPU second of this process (the wall figure suffers when other
processes share the core; the CPU one much less). ``--json`` ends the output
with one JSON line holding every figure and the machine it ran on;
``--limit N`` reads only the first N lines, for quick iterations.
``--scanner-cache FILE`` starts from (and updates) a stored set of compiled literal
databases, as ``soclite hunt`` does: the cold whole-file pass spends most of a second
compiling the databases of the indexes that hit-rate learning rebuilds.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from otrf import add_to_subsets, windows_only  # noqa: E402

from soclite.collectors.windows import map_in_place  # noqa: E402
from soclite.correlator.engine import Engine  # noqa: E402
from soclite.correlator.loader import load_paths  # noqa: E402

SHARED = ROOT.parent / "shared"
DEFAULT_DATA = SHARED / "datasets" / "otrf-windows-atomic-a.jsonl.gz"
#: read in 1 MiB blocks, as `soclite hunt` does: with the default 8 KiB buffer the 858 MB take about
#: 0.4 s of CPU more (one read call per three or four lines)
READ_BUFFER = 1 << 20


def run(engine: Engine, lines: Iterable[bytes]) -> tuple[int, int, int, float, float]:
    """Parse + route + match every line; returns (events, malformed, detections, wall seconds, CPU seconds)."""
    events = malformed = detections = 0
    loads = orjson.loads
    detect = engine.detect
    t0 = time.perf_counter()
    c0 = time.process_time()
    for line in lines:
        try:  # a blank line fails here too (as in soclite hunt: no stripped copy of every line)
            record = loads(line)
        except orjson.JSONDecodeError:
            malformed += 1
            continue
        if type(record) is not dict:
            malformed += 1
            continue
        events += 1
        # an NXLog record is mapped in place: its first ``keys`` keys keep values of the line
        event, keys = map_in_place(record)
        if keys is not None:
            detections += len(detect(event, line, keys))
        else:
            detections += len(detect(event))
    return events, malformed, detections, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--rules", type=Path, action="append", help="rule folders (default: shared/sigma/rules*)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N lines")
    ap.add_argument("--exhaustive", action="store_true", help="evaluate every rule of the type (no index)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to CPU 0")
    ap.add_argument("--json", action="store_true", help="end with one JSON line of every figure")
    ap.add_argument(
        "--scanner-cache",
        type=Path,
        help="load the compiled literal databases from FILE before the timed passes and save them after, "
        "as `soclite hunt` does (the second run then starts warm; default: a cold engine)",
    )
    ap.add_argument(
        "--repeat", type=int, default=30, help="passes over each subset (first and last reported)"
    )
    ap.add_argument(
        "--whole-passes",
        type=int,
        default=2,
        help="passes over the whole file by the same engine (default 2: the first includes building "
        "and learning each event type's index; the second is the sustained rate)",
    )
    args = ap.parse_args()
    if args.whole_passes < 1:
        ap.error("--whole-passes must be at least 1")
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})

    rule_dirs = args.rules or sorted((SHARED / "sigma").glob("rules*"))
    t0 = time.perf_counter()
    ruleset = load_paths(rule_dirs, keep=windows_only)
    engine = Engine(ruleset, indexed=not args.exhaustive)
    scanners_loaded = engine.load_scanners(args.scanner_cache) if args.scanner_cache else 0
    engine.warm()
    load_s = time.perf_counter() - t0
    print(
        f"rules loaded: {len(ruleset.rules)} (+{len(engine.correlations)} correlations), "
        f"failed: {len(engine.failures)}, load time {load_s:.1f} s"
    )

    t0 = time.perf_counter()
    tmp = tempfile.NamedTemporaryFile(prefix="soclite-bench-", suffix=".jsonl", delete=False)  # noqa: SIM115
    proc: list[bytes] = []
    script: list[bytes] = []
    with gzip.open(args.data, "rb") as fh, tmp:
        for n, line in enumerate(fh):
            if args.limit and n >= args.limit:
                break
            tmp.write(line)
            add_to_subsets(line, proc, script)
    print(f"decompressed to {tmp.name} in {time.perf_counter() - t0:.1f} s (not timed)")
    gc.collect()
    gc.freeze()
    try:
        results = []
        for n in range(args.whole_passes):
            with open(tmp.name, "rb", buffering=READ_BUFFER) as whole:
                results.append(("whole file" + (f" pass {n + 1}" if n else ""), run(engine, whole)))
        for name, subset in (("process creation", proc), ("script block 4104", script)):
            first = run(engine, subset)
            results.append((name + " 1st", first))
            later = [run(engine, subset) for _ in range(args.repeat - 1)]
            if later:  # the subsets are small (tens of ms a pass): the median pass resists CPU contention
                results.append((name + f" median 2..{args.repeat}", _median(later)))
    finally:
        os.unlink(tmp.name)
    if args.scanner_cache:
        engine.save_scanners(args.scanner_cache)
        print(f"scanner cache {args.scanner_cache}: {scanners_loaded} databases loaded before the passes")
    print(
        "(wall = elapsed time on the pinned core, shared with other processes; cpu = this process's CPU time)"
    )
    for name, (events, malformed, detections, secs, cpu) in results:
        rate = events / secs if secs else 0.0
        cpu_rate = events / cpu if cpu else 0.0
        print(
            f"{name:25s}: {events:8d} events, {malformed} malformed, {detections:7d} detections, "
            f"wall {secs:6.2f} s = {rate:7,.0f} events/s, cpu {cpu:6.2f} s = {cpu_rate:7,.0f} events/s"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.0f} MB; rule errors: {engine.rule_errors}")
    if args.json:
        print(json.dumps(_report(args, ruleset_size=len(ruleset.rules), load_s=load_s, results=results,
                                 peak_mb=peak_mb, rule_errors=engine.rule_errors)))  # fmt: skip


def _report(
    args: argparse.Namespace,
    *,
    ruleset_size: int,
    load_s: float,
    results: list[tuple[str, tuple[int, int, int, float, float]]],
    peak_mb: float,
    rule_errors: int,
) -> dict[str, Any]:
    """The figures and the machine they were measured on (the --json line)."""
    runs = {}
    for name, (events, malformed, detections, secs, cpu) in results:
        runs[name] = {
            "events": events,
            "malformed": malformed,
            "detections": detections,
            "wall_s": round(secs, 4),
            "cpu_s": round(cpu, 4),
            "events_per_s": round(events / secs) if secs else 0,
            "events_per_cpu_s": round(events / cpu) if cpu else 0,
        }
    return {
        "bench": "correlator",
        "data": str(args.data),
        "limit": args.limit,
        "indexed": not args.exhaustive,
        "repeat": args.repeat,
        "whole_passes": args.whole_passes,
        "rules": ruleset_size,
        "load_s": round(load_s, 2),
        "scanner_cache": str(args.scanner_cache) if args.scanner_cache else None,
        "runs": runs,
        "peak_rss_mb": round(peak_mb),
        "rule_errors": rule_errors,
        "machine": {
            "python": platform.python_version(),
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "pinned": not args.no_pin,
        },
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _median(runs: list[tuple[int, int, int, float, float]]) -> tuple[int, int, int, float, float]:
    """The pass with the median CPU time (wall time of that same pass)."""
    return sorted(runs, key=lambda r: r[4])[len(runs) // 2]


if __name__ == "__main__":
    main()
