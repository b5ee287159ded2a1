"""Agent configuration errors name the file and the key; journald entries become RFC 5424 lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from soclite.collectors.agent.config import load_agent_config
from soclite.collectors.agent.journald import to_syslog_line
from soclite.errors import ConfigError


def test_valid_config(tmp_path: Path) -> None:
    path = tmp_path / "agent.yml"
    path.write_text(
        "files:\n  - path: /var/log/auth.log\n    parser: auth\njournald: true\nbatch_size: 200\n"
        "ca_pin_sha256: " + ":".join(["AB"] * 32) + "\nisolation:\n  dns_resolver: 10.0.0.53\n"
    )
    config = load_agent_config(path)
    assert config.files[0].parser == "auth" and config.journald and config.batch_size == 200
    assert config.ca_pin_sha256 == "ab" * 32 and config.isolation.dns_resolver == "10.0.0.53"


@pytest.mark.parametrize(
    ("text", "where"),
    [("batch_size: 0\n", "batch_size"), ("files:\n  - {}\n", "files.0.path"), ("bogus: 1\n", "bogus"),
     ("ca_pin_sha256: abc\n", "ca_pin_sha256"), ("files: [\n", ":2")],
)  # fmt: skip
def test_invalid_config_names_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "agent.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_agent_config(path)
    assert str(path) in str(info.value) and where in str(info.value)


def test_journald_entry_to_rfc5424() -> None:
    entry = {
        "__REALTIME_TIMESTAMP": "1732356000123456", "PRIORITY": "4", "SYSLOG_FACILITY": "10",
        "_HOSTNAME": "ws-01", "SYSLOG_IDENTIFIER": "sshd", "_PID": "812",
        "MESSAGE": "Failed password for root from 203.0.113.7 port 4242 ssh2",
    }  # fmt: skip
    assert to_syslog_line(entry) == (
        "<84>1 2024-11-23T10:00:00.123456Z ws-01 sshd 812 - - Failed password for root from 203.0.113.7 port 4242 ssh2"
    )
    # binary messages come as byte arrays
    assert to_syslog_line({"MESSAGE": list(b"hi\x00")}).endswith("- - hi\x00")
