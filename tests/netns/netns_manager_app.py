"""The real soclite API app (agents routes, SQLite store) served by uvicorn — run inside the
"manager" namespace by tests/netns/test_isolation.py. Kept apart from `soclite server` so the
isolation test does not depend on the syslog/journal/correlator wiring."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from soclite.api.app import create_app
from soclite.config import Settings
from soclite.runtime import Runtime


def main() -> None:
    data_dir, host, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    runtime = Runtime.build(Settings(environment="test", data_dir=data_dir))
    uvicorn.run(create_app(runtime), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
