"""Two checkouts of soclite's Sigma engine side by side, in lock step, over the shared OTRF file.

    .venv/bin/python bench/correlator_ab.py --a PATH [--b PATH] [--rounds N] [--data FILE] [--json]

On a shared virtual machine the speed of one core drifts by up to 1.5x within minutes, so two
benchmark runs one after the other compare the machine as much as the code. Here each checkout runs
in its own process, both pinned to CPU 0, and their passes alternate: A's first pass over the whole
file, then B's; A's second pass, then B's; then each one's process-creation and PowerShell 4104
events (median of 9 passes after a first). The order swaps every round. Each figure is events per
CPU second; the ratio is B over A. ``--b`` defaults to this checkout; ``--a`` is typically a
``git worktree`` of an older commit (round 1: 399ac10). A checkout older than the ``soclite``
package layout (round 1) is driven through its own API: ``collectors.windows.from_json_record``
and ``Engine.detect(event)``; a newer one through ``map_in_place`` and the raw line, as
``bench/correlator.py`` does. Both load every SigmaHQ rule of ``product: windows``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "otrf-windows-atomic-a.jsonl.gz"
STEPS = ("whole", "whole 2", "process creation", "script block 4104")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", type=Path, required=True, help="the checkout compared against (e.g. round 1's)")
    ap.add_argument("--b", type=Path, default=ROOT, help="the checkout measured (default: this one)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", action="store_true", help="one JSON line per round")
    args = ap.parse_args()
    with (
        tempfile.NamedTemporaryFile(prefix="soclite-ab-", suffix=".jsonl", delete=False) as tmp,
        gzip.open(args.data, "rb") as fh,
    ):
        for block in iter(lambda: fh.read(1 << 20), b""):
            tmp.write(block)
    try:
        for n in range(args.rounds):
            figures = _round(args.a.resolve(), args.b.resolve(), Path(tmp.name), swap=bool(n % 2))
            if args.json:
                print(json.dumps({"round": n + 1, **figures}), flush=True)
            else:
                print(f"round {n + 1}:")
                for step, fig in figures.items():
                    print(
                        f"  {step:18s} A {fig['a']:7,} B {fig['b']:7,} events/CPU s  x{fig['ratio']:.3f}  "
                        f"detections {fig['detections']}"
                    )
    finally:
        os.unlink(tmp.name)


def _round(a: Path, b: Path, data: Path, swap: bool) -> dict[str, dict[str, object]]:
    sides = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--worker", str(root), str(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, root in (("a", a), ("b", b))
    }
    for proc in sides.values():
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    order = ("b", "a") if swap else ("a", "b")
    results: dict[str, dict[str, tuple[float, int]]] = {"a": {}, "b": {}}
    for step in STEPS:
        for name in order:
            proc = sides[name]
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(step + "\n")
            proc.stdin.flush()
            events, detections, cpu = proc.stdout.readline().split()
            results[name][step] = (int(events) / float(cpu), int(detections))
    for proc in sides.values():
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    return {
        step: {
            "a": round(results["a"][step][0]),
            "b": round(results["b"][step][0]),
            "ratio": round(results["b"][step][0] / results["a"][step][0], 3),
            "detections": [results["a"][step][1], results["b"][step][1]],
        }
        for step in STEPS
    }


def _worker(root: Path, data: Path) -> None:
    """One side: load the checkout's engine, then run the steps the driver names on stdin."""
    import gc
    import time

    import orjson
    from otrf import add_to_subsets, windows_only  # (this file's folder; it imports no soclite)

    sys.path.insert(0, str(root))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    if (root / "soclite" / "correlator").exists():
        from soclite.collectors import windows
        from soclite.correlator.engine import Engine
        from soclite.correlator.loader import load_paths
    else:  # round 1's layout
        from collectors import windows  # type: ignore[no-redef]
        from correlator.engine import Engine  # type: ignore[no-redef]
        from correlator.loader import load_paths  # type: ignore[no-redef]
    in_place = getattr(windows, "map_in_place", None)

    shared = root.parent / "shared" if (root.parent / "shared").exists() else ROOT.parent / "shared"
    engine = Engine(load_paths(sorted((shared / "sigma").glob("rules*")), keep=windows_only))
    engine.warm()
    proc: list[bytes] = []
    script: list[bytes] = []
    with open(data, "rb") as fh:
        for line in fh:
            add_to_subsets(line, proc, script)
    gc.collect()
    gc.freeze()

    def run(lines: object) -> tuple[int, int, float]:
        loads, detect = orjson.loads, engine.detect
        events = detections = 0
        c0 = time.process_time()
        for line in lines:  # type: ignore[attr-defined]
            try:
                record = loads(line)
            except orjson.JSONDecodeError:
                continue
            if type(record) is not dict:
                continue
            events += 1
            if in_place is None:
                detections += len(detect(windows.from_json_record(record, copy=False)))
                continue
            event, keys = in_place(record)
            detections += len(detect(event, line, keys) if keys is not None else detect(event))
        return events, detections, time.process_time() - c0

    print("ready", flush=True)
    for command in sys.stdin:
        step = command.strip()
        if step.startswith("whole"):
            with open(data, "rb", buffering=1 << 20) as fh:
                result = run(fh)
        else:
            lines = proc if step == "process creation" else script
            runs = [run(lines) for _ in range(10)]  # the first pass apart, the median of the other nine
            result = sorted(runs[1:], key=lambda r: r[2])[4]
        print(f"{result[0]} {result[1]} {result[2]:.4f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _worker(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
