"""Log-source routing: which Sigma ``logsource`` an event belongs to.

This is SigmaHQ's own mapping (``sigma/tests/thor.yml``): a Sysmon event's
EventID gives its category (1 → process_creation ...), Security 4688 is also
process_creation with its fields renamed to Sysmon's names, PowerShell
4103/4104 are ps_module/ps_script, Defender detections are ``antivirus``, and
each Windows channel is a service. Non-Windows events carry ``logsource.*`` set
by their normalizer and are taken as they are.

An event's :class:`LogKey` is what the engine keys its per-type rule index on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from soclite.models import (
    LOGSOURCE_CATEGORY,
    LOGSOURCE_PRODUCT,
    LOGSOURCE_SERVICE,
    SYSTEM_CHANNEL,
    SYSTEM_EVENT_ID,
    Event,
)

SYSMON_CHANNEL = "microsoft-windows-sysmon/operational"

#: Sysmon EventID → categories (registry 12 is refined by EventType below).
SYSMON_CATEGORIES: dict[int, tuple[str, ...]] = {
    1: ("process_creation",),
    2: ("file_change",),
    3: ("network_connection",),
    4: ("sysmon_status",),
    5: ("process_termination",),
    6: ("driver_load",),
    7: ("image_load",),
    8: ("create_remote_thread",),
    9: ("raw_access_thread",),
    10: ("process_access",),
    11: ("file_event",),
    12: ("registry_event",),
    13: ("registry_event", "registry_set"),
    14: ("registry_event", "registry_rename"),
    15: ("create_stream_hash",),
    16: ("sysmon_status",),
    17: ("pipe_created",),
    18: ("pipe_created",),
    19: ("wmi_event",),
    20: ("wmi_event",),
    21: ("wmi_event",),
    22: ("dns_query",),
    23: ("file_delete",),
    24: ("clipboard_change",),
    25: ("process_tampering",),
    26: ("file_delete_detected",),
    27: ("file_block_executable",),
    28: ("file_block_shredding",),
    29: ("file_executable_detected",),
    255: ("sysmon_error",),
}
REGISTRY_12 = {"createkey": "registry_add", "deletekey": "registry_delete", "deletevalue": "registry_delete"}

#: Windows channel (lower-cased) → Sigma service.
CHANNEL_SERVICES: dict[str, str] = {
    "application": "application",
    "security": "security",
    "system": "system",
    "microsoft-windows-ntlm/operational": "ntlm",
    SYSMON_CHANNEL: "sysmon",
    "microsoft-windows-powershell/operational": "powershell",
    "powershellcore/operational": "powershell",
    "windows powershell": "powershell-classic",
    "microsoft-windows-taskscheduler/operational": "taskscheduler",
    "microsoft-windows-wmi-activity/operational": "wmi",
    "microsoft-windows-dhcp-server/operational": "dhcp",
    "microsoft-windows-printservice/admin": "printservice-admin",
    "microsoft-windows-printservice/operational": "printservice-operational",
    "microsoft-windows-smbclient/security": "smbclient-security",
    "microsoft-windows-smbclient/connectivity": "smbclient-connectivity",
    "microsoft-windows-smbserver/connectivity": "smbserver-connectivity",
    "microsoft-windows-terminalservices-localsessionmanager/operational": "terminalservices-localsessionmanager",
    "microsoft-windows-codeintegrity/operational": "codeintegrity-operational",
    "microsoft-windows-applocker/msi and script": "applocker",
    "microsoft-windows-applocker/exe and dll": "applocker",
    "microsoft-windows-applocker/packaged app-deployment": "applocker",
    "microsoft-windows-applocker/packaged app-execution": "applocker",
    "msexchange management": "msexchange-management",
    "microsoft-windows-windows defender/operational": "windefend",
    "microsoft-windows-windows firewall with advanced security/firewall": "firewall-as",
    "microsoft-windows-bits-client/operational": "bits-client",
    "microsoft-windows-security-mitigations/kernel mode": "security-mitigations",
    "microsoft-windows-security-mitigations/user mode": "security-mitigations",
    "microsoft-windows-diagnosis-scripted/operational": "diagnosis-scripted",
    "microsoft-windows-shell-core/operational": "shell-core",
    "openssh/operational": "openssh",
    "microsoft-windows-ldap-client/debug": "ldap",
    "microsoft-windows-bitlocker/bitlocker management": "bitlocker",
    "microsoft-windows-vhdmp/operational": "vhdmp",
    "microsoft-windows-appxdeploymentserver/operational": "appxdeployment-server",
    "microsoft-windows-lsa/operational": "lsa-server",
    "microsoft-windows-appxpackaging/operational": "appxpackaging-om",
    "microsoft-windows-dns client events/operational": "dns-client",
    "microsoft-windows-appmodel-runtime/admin": "appmodel-runtime",
    "microsoft-windows-capi2/operational": "capi2",
    "microsoft-windows-certificateservicesclient-lifecycle-system/operational": (
        "certificateservicesclient-lifecycle-system"
    ),
    "microsoft-windows-kernel-shimengine/operational": "kernel-shimengine",
    "microsoft-windows-kernel-shimengine/diagnostic": "kernel-shimengine",
    "microsoft-windows-application-experience/program-telemetry": "application-experience",
    "microsoft-windows-application-experience/program-compatibility-assistant": "application-experience",
    "microsoft-windows-ntfs/operational": "ntfs",
    "microsoft-windows-hyper-v-worker": "hyper-v-worker",
    "microsoft-windows-hyper-v-worker-admin": "hyper-v-worker",
    "microsoft-windows-kernel-eventtracing": "kernel-event-tracing",
    "microsoft-windows-sense/operational": "sense",
    "microsoft-servicebus-client/admin": "servicebus-client",
    "microsoft-servicebus-client/operational": "servicebus-client",
    "microsoft-iis-configuration/operational": "iis-configuration",
    "directory service": "directory-service",
    "dns server": "dns-server",
    "microsoft-windows-dns-server/analytical": "dns-server-analytic",
    "microsoft-windows-dns-server/audit": "dns-server-audit",
}

POWERSHELL_CATEGORIES = {4103: "ps_module", 4104: "ps_script"}
CLASSIC_PS_CATEGORIES = {400: "ps_classic_start", 600: "ps_classic_provider_start", 800: "ps_classic_script"}
DEFENDER_AV_IDS = frozenset({1006, 1007, 1008, 1009, 1010, 1011, 1012, 1017, 1018, 1019, 1115, 1116})

#: Security 4688 fields renamed to Sysmon names (rule field → event field), as thor.yml does.
SECURITY_4688_FIELDS = {"Image": "NewProcessName", "ParentImage": "ParentProcessName"}
#: Defender detection fields renamed for ``category: antivirus`` rules.
DEFENDER_AV_FIELDS = {"Signature": "ThreatName", "Filename": "Path"}

#: Log sources soclite's collectors produce outside Windows (product, service/category).
OTHER_PRODUCED: set[tuple[str | None, str | None, str | None]] = {
    # (product, category, service)
    ("linux", None, "auth"),
    ("linux", None, "sshd"),
    ("linux", None, "syslog"),
    ("linux", None, "sudo"),
    ("linux", None, "cron"),
    ("linux", None, "auditd"),
    ("linux", None, "clamav"),
    ("linux", "antivirus", None),
    ("clamav", "antivirus", None),
    ("linux", "process_creation", "auditd"),
    ("linux", "process_creation", None),
    (None, "antivirus", None),
    (None, "webserver", None),
    (None, "dns", None),
    (None, "firewall", None),
    (None, "proxy", None),
    # auditd's joined syscall events (collectors.parsers.auditd)
    ("linux", "file_event", None),
    ("linux", "network_connection", None),
    # FortiGate: the service is the log type (collectors.parsers.fortigate); traffic is also a firewall log
    ("fortigate", None, "event"),
    ("fortigate", None, "utm"),
    ("fortigate", "firewall", "traffic"),
    # Cisco IOS/ASA syslog and command accounting (collectors.parsers.cisco)
    ("cisco", None, "aaa"),
    ("cisco", None, "syslog"),
    ("cisco", "firewall", "syslog"),
    ("cisco", None, "bgp"),
    ("cisco", None, "ldp"),
    ("pfsense", "firewall", None),
    # Windows DNS Server debug log and DHCP Server audit log (collectors.parsers.windows_text)
    ("windows", "dns", None),
    # the network sensor's Zeek-shaped logs (collectors.sensor, collectors.sensor_rpc)
    ("zeek", "dns", "dns"),
    ("zeek", "firewall", "conn"),
    ("zeek", "proxy", "http"),
    ("zeek", "proxy", "ssl"),
    ("zeek", None, "x509"),
    ("zeek", None, "rdp"),
    ("zeek", None, "smb_files"),
    ("zeek", None, "kerberos"),
    ("zeek", None, "dce_rpc"),
}


@dataclass(frozen=True)
class LogKey:
    """The routing key of an event: product, service and (possibly several) categories."""

    product: str | None
    service: str | None
    categories: tuple[str, ...]

    def matches(self, product: str | None, category: str | None, service: str | None) -> bool:
        """Does a rule's logsource select events of this key?"""
        if product is not None and product != self.product:
            return False
        if service is not None and service != self.service:
            return False
        return category is None or category in self.categories


def event_id(event: Event) -> int | None:
    """The System EventID (not a data field of that name, see soclite.models.SYSTEM_PREFIX)."""
    value = event.get(SYSTEM_EVENT_ID)
    if value is None:
        value = event.get("EventID")
    if type(value) is int:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, dict):  # Winlogbeat-like {"#text": "4688"}
        return event_id({"EventID": value.get("#text") or value.get("value")})
    return None


def windows_key(channel: str, eid: int | None, event: Event) -> LogKey:
    """The key of a Windows event (``channel`` lower-cased)."""
    service = CHANNEL_SERVICES.get(channel)
    cats: tuple[str, ...] = ()
    if service == "sysmon" and eid is not None:
        cats = SYSMON_CATEGORIES.get(eid, ())
        if eid == 12:
            extra = REGISTRY_12.get(str(event.get("EventType", "")).lower())
            if extra:
                cats = (*cats, extra)
    elif service == "security" and eid == 4688:
        cats = ("process_creation",)
    elif service == "powershell" and eid in POWERSHELL_CATEGORIES:
        cats = (POWERSHELL_CATEGORIES[eid],)
    elif service == "powershell-classic" and eid in CLASSIC_PS_CATEGORIES:
        cats = (CLASSIC_PS_CATEGORIES[eid],)
    elif service == "windefend" and eid in DEFENDER_AV_IDS:
        cats = ("antivirus",)
    return LogKey("windows", service or channel, cats)


def key_of(event: Event) -> LogKey:
    """The routing key of an event, from its System Channel and EventID; does not modify it."""
    channel = event.get(SYSTEM_CHANNEL)
    if channel is None:
        channel = event.get("Channel")
    if isinstance(channel, str) and (
        event.get(SYSTEM_EVENT_ID) is not None or event.get("EventID") is not None
    ):
        return windows_key(channel.lower(), event_id(event), event)
    cat = event.get(LOGSOURCE_CATEGORY)
    return LogKey(event.get(LOGSOURCE_PRODUCT), event.get(LOGSOURCE_SERVICE), (cat,) if cat else ())


def apply_field_aliases(event: Event, key: LogKey) -> None:
    """Add the Sysmon-named aliases of Security 4688 / Defender fields (never overwriting a field)."""
    if "process_creation" in key.categories and key.service == "security":
        aliases: dict[str, str] = SECURITY_4688_FIELDS
    elif "antivirus" in key.categories and key.product == "windows":
        aliases = DEFENDER_AV_FIELDS
    else:
        return
    for rule_field, event_field in aliases.items():
        if rule_field not in event and event_field in event:
            event[rule_field] = event[event_field]


def route(event: Event) -> Event:
    """Set ``logsource.*`` (and 4688/Defender field aliases) where the normalizer did not; returns the event."""
    key = key_of(event)
    apply_field_aliases(event, key)
    if key.product and LOGSOURCE_PRODUCT not in event:
        event[LOGSOURCE_PRODUCT] = key.product
    if key.service and LOGSOURCE_SERVICE not in event:
        event[LOGSOURCE_SERVICE] = key.service
    if key.categories and LOGSOURCE_CATEGORY not in event:
        event[LOGSOURCE_CATEGORY] = key.categories[-1]
    return event


def _windows_produced() -> set[tuple[str | None, str | None, str | None]]:
    out: set[tuple[str | None, str | None, str | None]] = set()
    for service in set(CHANNEL_SERVICES.values()):
        out.add(("windows", None, service))
    for cats in SYSMON_CATEGORIES.values():
        for cat in cats:
            out.add(("windows", cat, None))
            out.add(("windows", cat, "sysmon"))
    extra = ["registry_add", "registry_delete", "ps_module", "ps_script", "ps_classic_start"]
    extra += ["ps_classic_provider_start", "ps_classic_script", "antivirus"]
    for cat in extra:
        out.add(("windows", cat, None))
    out.add(("windows", "process_creation", "security"))
    out.add(("windows", None, None))
    return out


PRODUCED = _windows_produced() | OTHER_PRODUCED


def is_produced(product: str | None, category: str | None, service: str | None) -> bool:
    """Whether anything soclite ingests can carry this logsource (else the rule is 'unrouted')."""
    for p, c, s in PRODUCED:
        if (
            (product is None or product == p)
            and (category is None or category == c)
            and (service is None or service == s)
        ):
            return True
    return False


def describe(logsource: Any) -> dict[str, str]:
    return {k: v for k in ("product", "category", "service") if (v := getattr(logsource, k, None))}
