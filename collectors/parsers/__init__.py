"""The parser registry: every message parser of soclite, by name, tried in order.

``PARSERS`` is the one place to look. Parsers are tried in registration order and
the first that recognises a line wins; ``syslog`` (generic) is last and takes
anything. Log sources: Linux sshd/sudo/su/shadow-utils/auditd, web access logs, ClamAV, BIND and
dnsmasq, FortiGate, pfSense/OPNsense filterlog, the Windows DNS Server debug log and DHCP Server audit
log, Cisco IOS/ASA (and TACACS+ accounting). Windows records (EVTX, NXLog/Winlogbeat JSON) are not lines and go
through :mod:`collectors.windows` instead (see :func:`collectors.normalize.normalize`).
"""

from __future__ import annotations

from soclite.collectors.parsers.antivirus import ClamavParser
from soclite.collectors.parsers.auditd import AuditdParser
from soclite.collectors.parsers.base import LogLine, Parser
from soclite.collectors.parsers.cisco import CiscoParser
from soclite.collectors.parsers.dns import DnsParser
from soclite.collectors.parsers.filterlog import FilterlogParser
from soclite.collectors.parsers.fortigate import FortigateParser
from soclite.collectors.parsers.generic import GenericSyslogParser
from soclite.collectors.parsers.linux_auth import AccountParser, SshdParser, SudoParser, SuParser
from soclite.collectors.parsers.webserver import AccessLogParser
from soclite.collectors.parsers.windows_text import WindowsDhcpAuditParser, WindowsDnsDebugParser
from soclite.errors import ConfigError
from soclite.models import Event

PARSERS: dict[str, Parser] = {}


def register(parser: Parser) -> Parser:
    """Add a parser; a second parser with the same name is a programming error."""
    if parser.name in PARSERS:
        raise ConfigError(f"parser {parser.name!r} is already registered", key="parsers")
    PARSERS[parser.name] = parser
    return parser


for _parser in (
    SshdParser(), SudoParser(), SuParser(), AccountParser(), AuditdParser(), AccessLogParser(),
    ClamavParser(), DnsParser(), FortigateParser(), FilterlogParser(), WindowsDnsDebugParser(),
    WindowsDhcpAuditParser(),
    # Cisco's %FACILITY-SEVERITY-MNEMONIC: is searched anywhere in the text: after every parser that
    # recognises its lines by their start or tag, so it never takes another format's line.
    CiscoParser(), GenericSyslogParser(),
):  # fmt: skip
    register(_parser)


def parse_line(line: LogLine) -> tuple[str, Event]:
    """Run the parsers in order; return the name of the one that recognised the line and its fields."""
    for name, parser in PARSERS.items():
        event = parser.parse(line)
        if event is not None:
            return name, event
    raise AssertionError("the generic syslog parser accepts every line")  # pragma: no cover


__all__ = ["PARSERS", "LogLine", "Parser", "parse_line", "register"]
