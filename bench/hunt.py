"""``soclite hunt`` throughput next to the bare engine's, on the same events and the same machine.

    .venv/bin/python bench/hunt.py [--data FILE] [--rules DIR ...] [--limit N] [--repeat N] [--json]

Takes the first ``--limit`` lines (default 100,000) of the OTRF Windows
dataset, written once to a temporary JSONL file (not timed). Then, alternately
``--repeat`` times: the engine loop of bench/correlator.py (orjson parsing, the
Windows record mapping and detection, in this process, pinned to CPU 0), and
``soclite hunt --stats`` over the same file in a child process pinned to the
same CPU, its JSON lines written to a file (hunt's own events/s, from
``--stats``: reading, parsing, detection and output, rule loading excluded).
Both load the SigmaHQ rules whose product is windows. Reported: the best pass
of each (the floor on a shared machine) and hunt's rate as a share of the
engine's, by wall time and by CPU time (this process's for the engine loop,
hunt's own ``--stats`` CPU seconds; steadier when other work shares the CPU). The last line is one JSON object (with ``--json``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from correlator import DEFAULT_DATA, SHARED, run, windows_only  # noqa: E402
from soclite.correlator.engine import Engine  # noqa: E402
from soclite.correlator.loader import load_paths  # noqa: E402

_RATE = re.compile(
    r"events read: (\d+).*?detections: (\d+)\nseconds: ([\d.]+), events/s: [\d,]+\ncpu seconds: ([\d.]+)",
    re.S,
)


def windows_rules(rule_dirs: list[Path], work: Path) -> Path:
    """A folder of the windows-product rules (what bench/correlator.py keeps), for hunt's --rules."""
    out = work / "rules"
    out.mkdir()
    import yaml

    n = 0
    for folder in rule_dirs:
        for path in sorted(folder.rglob("*.yml")):
            text = path.read_text(encoding="utf-8")
            try:
                docs = list(yaml.load_all(text, Loader=yaml.CSafeLoader))
            except yaml.YAMLError:
                continue
            if docs and all(isinstance(d, dict) and windows_only(d) for d in docs if d is not None):
                n += 1
                (out / f"{n:05d}_{path.name}").write_text(text, encoding="utf-8")
    return out


def hunt_pass(rules: Path, data: Path, out: Path, cache: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "soclite", "hunt", "--rules", str(rules), "--stats"]
    cmd += ["--cache-dir", str(cache), str(data)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with out.open("wb") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.PIPE, text=True, check=True)
    m = _RATE.search(proc.stderr)
    if m is None:
        raise RuntimeError(f"no --stats in hunt's output: {proc.stderr[-2000:]}")
    events, detections, secs, cpu = int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4))
    return {
        "events": events,
        "detections": detections,
        "seconds": secs,
        "events_per_s": events / secs,
        "events_per_cpu_s": events / cpu,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--rules", type=Path, action="append", help="rule folders (default: shared/sigma/rules*)")
    ap.add_argument("--limit", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # the hunt child inherits the affinity
    rule_dirs = args.rules or sorted((SHARED / "sigma").glob("rules*"))
    with tempfile.TemporaryDirectory(prefix="soclite-bench-hunt-") as tmp:
        work = Path(tmp)
        data = work / "events.jsonl"
        with gzip.open(args.data, "rb") as src, data.open("wb") as dst:
            for n, line in enumerate(src):
                if n >= args.limit:
                    break
                dst.write(line)
        rules = windows_rules(rule_dirs, work)
        ruleset = load_paths([rules], cache=work / "cache" / "engine.cache")
        print(f"{len(ruleset.rules)} rules, {args.limit} lines, load {ruleset.load_seconds:.1f} s")
        hunt_pass(rules, data, work / "warmup.jsonl", work / "cache")  # writes hunt's rule cache
        engine_runs: list[dict[str, Any]] = []
        hunt_runs: list[dict[str, Any]] = []
        for _ in range(args.repeat):
            engine = Engine(ruleset)
            engine.warm()
            with data.open("rb") as fh:
                events, _bad, detections, secs, cpu = run(engine, fh)
            engine_runs.append(
                {
                    "events": events,
                    "detections": detections,
                    "seconds": secs,
                    "events_per_s": events / secs,
                    "events_per_cpu_s": events / cpu,
                }
            )
            hunt_runs.append(hunt_pass(rules, data, work / "out.jsonl", work / "cache"))
            e, h = engine_runs[-1], hunt_runs[-1]
            print(
                f"engine {e['events_per_s']:,.0f} ev/s (cpu {e['events_per_cpu_s']:,.0f}), "
                f"hunt {h['events_per_s']:,.0f} ev/s (cpu {h['events_per_cpu_s']:,.0f})"
            )
            time.sleep(0.5)
        best: dict[str, float] = {}
        for name, runs in (("engine", engine_runs), ("hunt", hunt_runs)):
            for rate in ("events_per_s", "events_per_cpu_s"):
                best[f"{name}_{rate}"] = max(r[rate] for r in runs)
    share = best["hunt_events_per_s"] / best["engine_events_per_s"]
    cpu_share = best["hunt_events_per_cpu_s"] / best["engine_events_per_cpu_s"]
    result = {
        "events": engine_runs[0]["events"],
        **{k: round(v) for k, v in best.items()},
        "hunt_share_of_engine": round(share, 3),
        "hunt_share_of_engine_cpu": round(cpu_share, 3),
        "engine_detections": engine_runs[0]["detections"],
        "hunt_detections": hunt_runs[0]["detections"],
        "repeat": args.repeat,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    print(
        f"best of {args.repeat}: engine {best['engine_events_per_s']:,.0f} ev/s, hunt "
        f"{best['hunt_events_per_s']:,.0f} ev/s ({share:.0%} of the engine; per CPU second {cpu_share:.0%})"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
