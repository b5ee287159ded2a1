"""The agent's enrolled identity in its state dir: the per-agent key (0600) and its metadata."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


def write_private(path: Path, data: str) -> None:
    """Write a file readable by its owner only, atomically (a crash leaves the old file or the new one)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    api_key: str
    unit: str | None
    hostname: str
    server: str

    @classmethod
    def load(cls, state_dir: Path) -> AgentIdentity | None:
        meta, key = state_dir / "agent.json", state_dir / "agent.key"
        if not meta.exists() or not key.exists():
            return None
        data = json.loads(meta.read_text(encoding="utf-8"))
        return cls(
            agent_id=data["agent_id"],
            api_key=key.read_text(encoding="utf-8").strip(),
            unit=data.get("unit"),
            hostname=data["hostname"],
            server=data.get("server", ""),
        )

    def save(self, state_dir: Path) -> None:
        write_private(state_dir / "agent.key", self.api_key + "\n")
        meta = {k: v for k, v in asdict(self).items() if k != "api_key"}
        write_private(state_dir / "agent.json", json.dumps(meta))
