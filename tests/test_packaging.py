"""The distribution: one import name (`soclite`) whose wheel carries the UI, translations, rules and playbooks.

The wheel is built from a clean copy of the checkout, installed (not editable) into a fresh virtualenv
and started from a folder outside the checkout, so nothing can come from the source tree. The
virtualenv borrows the already-installed third-party dependencies through a path entry (a .pth line
is a plain sys.path entry: the dev environment's own editable hook is not executed), which keeps the
test to seconds; soclite itself comes only from the wheel.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]

#: Files the running server needs that are not Python modules.
SHIPPED_DATA = (
    "soclite/dashboards/templates/base.html",
    "soclite/dashboards/templates/login.html",
    "soclite/dashboards/static/app.css",
    "soclite/dashboards/static/app.js",
    "soclite/dashboards/i18n/vi/LC_MESSAGES/messages.po",
    "soclite/dashboards/i18n/en/LC_MESSAGES/messages.po",
    "soclite/dashboards/opensearch/index-templates/soclite-alerts.json",
    "soclite/playbooks/malware-workstation-isolate.yml",
    "soclite/rules/pipelines/",
    "soclite/rules/linux/",
)


def _copy_ignore(directory: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in {".venv", ".git", "var", "build", "dist", "__pycache__", "test-artifacts"}}
    skip |= {n for n in names if n.endswith((".egg-info", "_cache"))}
    if Path(directory).name == "node_modules":  # only the one vendored file the UI serves
        skip |= {n for n in names if n != "htmx.org"}
    return skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src") / "soclite"
    shutil.copytree(ROOT, src, symlinks=True, ignore=_copy_ignore)
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("soclite-*.whl")
    return built


def test_wheel_exposes_only_soclite_and_carries_its_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "soclite = soclite.cli:main" in zf.read(entry_points).decode()
    top = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"soclite"}
    for wanted in SHIPPED_DATA:
        assert any(n.startswith(wanted) for n in names), f"{wanted} is not in the wheel"
    for stage in ("api", "collectors", "correlator", "playbooks"):
        assert f"soclite/{stage}/__init__.py" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "soclite/tests/"))]
    assert not [n for n in names if "node_modules" in n and not n.endswith("htmx.min.js")]


def test_installed_wheel_serves_the_ui_and_loads_shipped_rules_and_playbooks(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    target_site = Path(
        subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       capture_output=True, text=True, check=True).stdout.strip()
    )
    (target_site / "_soclite_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        timeout=300,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOCLITE_", "PYTHON"))}
    env["SOCLITE_AUTH__SECRET_KEY"] = "wheel-test-" + os.urandom(16).hex()
    soclite = str(env_dir / "bin" / "soclite")

    where = subprocess.run([py, "-c", "import soclite; print(soclite.__file__)"], cwd=outside, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(target_site)), where

    books = subprocess.run([soclite, "playbooks", "check"], cwd=outside, env=env, capture_output=True, text=True,
                           timeout=120)
    assert books.returncode == 0, books.stderr
    assert "malware-workstation-isolate" in books.stdout + books.stderr

    data = tmp_path / "data"
    token = subprocess.run([soclite, "token", "create", "--data-dir", str(data), "--role", "admin"], cwd=outside,
                           env=env, capture_output=True, text=True, timeout=120, check=True).stdout.strip()
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [soclite, "server", "--data-dir", str(data), "--http-port", str(port),
         "--syslog-port", str(free_port())],
        cwd=outside, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                return httpx.get(f"{base}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 90, "soclite server from the wheel", interval=0.2)
        login = httpx.get(f"{base}/login", timeout=10)
        assert login.status_code == 200
        assert '<link rel="stylesheet" href="/static/app.css">' in login.text
        assert "<form" in login.text
        css = httpx.get(f"{base}/static/app.css", timeout=10)
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert len(css.text) > 500
        rules = httpx.get(f"{base}/api/v1/rules", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        own = [r for r in rules["items"] if str(r.get("source", "")).startswith(str(target_site))]
        assert len(own) >= 10, rules["items"][:3]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
