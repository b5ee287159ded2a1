"""The wheel contains exactly the application's packages (and no tests, bench or data folders by accident)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {"soclite", "collectors", "correlator", "api", "playbooks"}


def test_wheel_contains_exactly_the_intended_packages(tmp_path: Path) -> None:
    # Build from a clean copy so the working tree gets no build/ or egg-info side effects.
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "var", "build", "dist", "*.egg-info", "__pycache__", "node_modules", ".*_cache"
        ),
    )
    out = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("soclite-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    top = {name.split("/", 1)[0] for name in names if "/" in name}
    top = {name for name in top if not name.endswith((".dist-info", ".data"))}
    assert top == EXPECTED
    assert not [
        n
        for n in names
        if n.split("/", 1)[0] not in EXPECTED and not n.split("/", 1)[0].endswith(".dist-info")
    ]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as zf:
        assert "soclite = soclite.cli:main" in zf.read(entry_points).decode()
