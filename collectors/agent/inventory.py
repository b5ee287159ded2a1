"""What a host tells the server about itself, and when the server considers it offline.

Collected with the standard library only (ioctl for IPv4, /proc/net/if_inet6 for
IPv6, /sys/class/net for MACs): no subprocess per heartbeat, no extra package.
"""

from __future__ import annotations

import contextlib
import platform
import socket
import struct
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soclite.config import Settings
    from soclite.models import Host


def is_online(host: Host, now: datetime, settings: Settings) -> bool:
    """A host is online if it was heard from (heartbeat or event) within ``offline_after_seconds``."""
    if host.last_seen is None:
        return False
    return (now - host.last_seen).total_seconds() <= settings.agent.offline_after_seconds


def hostname() -> str:
    """The short host name, the inventory key (Host.id is its lower-cased form)."""
    return socket.gethostname().split(".", 1)[0]


def os_description() -> str:
    if sys.platform.startswith("linux"):
        try:
            for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
                if line.startswith("PRETTY_NAME="):
                    return f"{line.split('=', 1)[1].strip(chr(34))} (Linux {platform.release()})"
        except OSError:
            pass
    return f"{platform.system()} {platform.release()}".strip()


def _ipv4_of(name: str) -> str | None:
    import fcntl

    siocgifaddr = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), siocgifaddr, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def addresses() -> tuple[list[str], list[str]]:
    """(IPs, MACs) of the host's interfaces, loopback excluded."""
    ips: list[str] = []
    macs: list[str] = []
    if not sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ips = sorted({info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)})
        return [str(ip) for ip in ips], macs
    for _, name in socket.if_nameindex():
        if name == "lo":
            continue
        ip = _ipv4_of(name)
        if ip:
            ips.append(ip)
        try:
            mac = Path(f"/sys/class/net/{name}/address").read_text(encoding="ascii").strip()
        except OSError:
            mac = ""
        if mac and mac != "00:00:00:00:00:00":
            macs.append(mac)
    try:
        for line in Path("/proc/net/if_inet6").read_text(encoding="ascii").splitlines():
            fields = line.split()
            if len(fields) >= 6 and fields[5] != "lo":
                raw = bytes.fromhex(fields[0])
                ips.append(socket.inet_ntop(socket.AF_INET6, raw))
    except OSError:
        pass
    return ips, sorted(set(macs))


def collect(*, version: str, host_type: str, dropped: int, isolation: dict[str, Any]) -> dict[str, Any]:
    ips, macs = addresses()
    return {
        "hostname": hostname(),
        "os": os_description(),
        "ips": ips,
        "macs": macs,
        "agent_version": version,
        "host_type": host_type,
        "dropped": dropped,
        "isolation": isolation,
    }
