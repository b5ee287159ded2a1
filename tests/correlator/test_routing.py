"""Which SigmaHQ log sources soclite's inputs route: the network and Linux sources must be routed."""

from __future__ import annotations

from collections import Counter

import pytest

from soclite.correlator.engine import Engine
from soclite.correlator.loader import load_paths
from tests.correlator.regression import SIGMA


def test_network_and_linux_rules_are_routed() -> None:
    folders = [SIGMA / "rules" / "network", SIGMA / "rules" / "linux", SIGMA / "rules-emerging-threats"]
    if not all(f.exists() for f in folders):
        pytest.skip("../shared/sigma is not available")
    engine = Engine(load_paths(folders))
    unrouted = set(engine.unrouted_rules())
    routed: Counter[tuple[str | None, str | None]] = Counter()
    for rule in engine.rules:
        if rule.id not in unrouted:
            routed[(rule.product, rule.category or rule.service)] += 1
    for source in [("fortigate", "event"), ("cisco", "aaa"), ("cisco", "syslog"), ("cisco", "bgp"), ("cisco", "ldp"),
                   ("linux", "file_event"), ("linux", "network_connection"), ("zeek", "dns"), ("zeek", "http"),
                   ("zeek", "x509"), ("zeek", "rdp"), ("zeek", "smb_files"), (None, "firewall"), (None, "dns")]:  # fmt: skip
        assert routed[source] > 0, (source, routed)
    # every rule of these products routes (Zeek: the services the sensor produces)
    for rule in engine.rules:
        if (rule.product in ("fortigate", "cisco") and rule.service != "duo") or (
            rule.product == "zeek" and rule.service in ("dns", "http", "x509", "rdp", "smb_files")
        ) or (rule.product == "linux" and rule.category in ("file_event", "network_connection")):
            assert rule.id not in unrouted, (rule.source, rule.product, rule.service, rule.category)
