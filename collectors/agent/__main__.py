"""``python -m soclite.collectors.agent``: the agent process itself, with only light imports.

``soclite agent`` re-executes into this module so the agent never carries the
server's imports (fastapi, pySigma, scapy) that the shared CLI pulls in.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from soclite.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soclite agent", description="The soclite endpoint agent.")
    parser.add_argument(
        "--server", required=True, help="URL of the soclite server, e.g. https://soc.example:8000"
    )
    parser.add_argument("--enroll-token", default=None, help="one-time enrollment token (first start only)")
    parser.add_argument("--state-dir", required=True, type=Path, help="where the key, offsets and spool live")
    parser.add_argument("--config", type=Path, default=None, help="agent YAML configuration")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--log-format", choices=("text", "json"), default=os.environ.get("SOCLITE_LOGGING__FORMAT", "text").lower(),
        help="text, or json (one object per line) for a log shipper; default $SOCLITE_LOGGING__FORMAT or text",
    )
    args = parser.parse_args(argv)
    configure_logging(args.log_level, json=args.log_format == "json")

    from soclite.collectors.agent.config import load_agent_config
    from soclite.collectors.agent.runner import Agent
    from soclite.errors import AuthError, ConfigError, SocliteError

    try:
        config = load_agent_config(args.config)
    except ConfigError as exc:
        print(f"soclite agent: invalid configuration: {exc}", file=sys.stderr)
        return 2
    agent = Agent(args.server, args.state_dir, config, enroll_token=args.enroll_token)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent.run()
    except AuthError as exc:
        print(f"soclite agent: {exc}", file=sys.stderr)
        return 3
    except SocliteError as exc:
        print(f"soclite agent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
