"""Rule loading time, cold (parse + compile, cache written) and warm (from the compiled-rule cache).

    .venv/bin/python bench/rules_load.py [--rules DIR ...] [--repeat N] [--json]

Each measurement is a fresh Python process (nothing memoised between runs):
a cold run starts with an empty cache directory, a warm run reuses the cache
the previous cold run wrote. Reported per mode: the seconds ``load_paths``
took (the figure the 1 s / 5 s targets are about), its CPU seconds (steadier
when other work shares the machine) and the process's import time of the
correlator, as the minimum and the median over ``--repeat`` runs
(the minimum is the floor on a shared machine; the median shows the noise).
The last line is one JSON object (with ``--json``), naming the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RULES = ROOT.parent / "shared" / "sigma" / "rules" / "windows"

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from soclite.correlator.loader import load_paths
t1 = time.perf_counter()
c1 = time.process_time()
rs = load_paths([Path(p) for p in sys.argv[2:]], cache=Path(sys.argv[1]))
cpu = time.process_time() - c1
print(json.dumps({"import_s": t1 - t0, "load_s": rs.load_seconds, "load_cpu_s": cpu, "cache": rs.cache,
                  "rules": len(rs.rules), "failures": len(rs.failures), "files": rs.files}))
"""


def child(cache: Path, rules: list[Path]) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(cache), *map(str, rules)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def summary(runs: list[dict[str, object]], key: str) -> dict[str, float]:
    values = [float(r[key]) for r in runs]  # type: ignore[arg-type]
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", type=Path, action="append", help=f"rule folders (default: {DEFAULT_RULES})")
    ap.add_argument("--repeat", type=int, default=3, help="cold and warm runs each (default 3)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line last")
    args = ap.parse_args()
    rules = args.rules or [DEFAULT_RULES]
    cold: list[dict[str, object]] = []
    warm: list[dict[str, object]] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="soclite-rules-cache-") as tmp:
            cache = Path(tmp) / "rules.cache"
            cold.append(child(cache, rules))
            warm.append(child(cache, rules))
    assert all(r["cache"] == "miss" for r in cold), cold
    assert all(r["cache"] == "hit" for r in warm), warm
    first = cold[0]
    result = {
        "rules": first["rules"],
        "files": first["files"],
        "failures": first["failures"],
        "cold_load_s": summary(cold, "load_s"),
        "warm_load_s": summary(warm, "load_s"),
        "cold_load_cpu_s": summary(cold, "load_cpu_s"),
        "warm_load_cpu_s": summary(warm, "load_cpu_s"),
        "import_s": summary(cold + warm, "import_s"),
        "repeat": args.repeat,
        "rules_paths": [str(r) for r in rules],
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    print(
        f"{first['rules']} rules from {first['files']} files ({first['failures']} failed): "
        f"cold {result['cold_load_s']} s (cpu {result['cold_load_cpu_s']}), "
        f"warm {result['warm_load_s']} s (cpu {result['warm_load_cpu_s']}), "
        f"import {result['import_s']} s (min/median of {args.repeat})"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
