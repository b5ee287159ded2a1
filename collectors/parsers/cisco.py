"""Cisco IOS / IOS XE / NX-OS and ASA syslog, and TACACS+ command accounting → ``product: cisco``.

IOS messages carry ``%FACILITY-SEVERITY-MNEMONIC: text`` (Cisco "System Message Guide"), after an
optional sequence number and timestamp; ASA's are ``%ASA-SEVERITY-MESSAGEID: text``. The Sigma
service follows SigmaHQ's Cisco rules, which search the message text (keywords):

* ``aaa`` — the commands an administrator ran: IOS ``archive log config`` (``%PARSER-5-CFGLOG_LOGGEDCMD``),
  ASA 111008/111009/111010 (``User 'x' executed the 'cmd' command``), and tac_plus accounting
  records (``cmd=...``);
* ``bgp`` / ``ldp`` — BGP and LDP neighbour messages (and TCP MD5 failures on their ports, 179/646);
* ``syslog`` — everything else. ASA connection and ACL messages are also ``category: firewall``.
"""

from __future__ import annotations

import re

from soclite.collectors.parsers.base import LogLine
from soclite.models import Event

# the message tag begins the text or follows a "seq:"/"timestamp:"/"host :" prefix, never mid-sentence
_IOS = re.compile(r"(?:^|:\s)%(?P<facility>[A-Z][A-Z0-9_]*(?:-[A-Z0-9_]+)*?)-(?P<severity>[0-7])-(?P<mnemonic>[A-Z0-9_]+):\s?(?P<text>.*)$", re.S)
_ASA = re.compile(r"(?:^|:\s)%(?P<product>ASA|FTD|PIX|FWSM)-(?P<severity>[0-7])-(?P<msgid>\d{6}):\s?(?P<text>.*)$", re.S)
_IOS_CMD = re.compile(r"User:(?P<user>\S+)\s+logged command:(?P<cmd>.*)$")
_ASA_CMD = re.compile(r"User '(?P<user>[^']*)' executed (?:the )?'?(?P<cmd>[^']*)'? command")
_ASA_CMD_IDS = frozenset({"111008", "111009", "111010"})
# tac_plus accounting: <date> <NAS> <user> <tty> <rem addr> <start|stop|update> ... cmd=<command> <cr>
_TACACS = re.compile(r"^(?:\S+\s+)*?(?P<nas>\d{1,3}(?:\.\d{1,3}){3})\s+(?P<user>\S+)\s+(?P<tty>\S+)\s+(?P<rem>\S+)\s+(?:start|stop|update)\s.*?\bcmd=(?P<cmd>.*?)(?:\s*<cr>)?\s*$")
# 302013/302015 Built, 302014/302016 Teardown, 106023/106100/106001 ACL decisions
_ASA_FLOW = re.compile(
    r"(?P<verb>Built|Teardown|Deny|permitted|denied)\s.*?(?P<proto>tcp|udp|icmp|TCP|UDP|ICMP)\b.*?"
    r"(?:src|for|from)\s+\S*?:(?P<src>[0-9A-Fa-f:.]+?)[/(](?P<sport>\d+)\)?.*?"
    r"(?:dst|to)\s+\S*?:(?P<dst>[0-9A-Fa-f:.]+?)[/(](?P<dport>\d+)"
)
_ROUTING = {"BGP": "bgp", "LDP": "ldp", "MPLS_LDP": "ldp"}


def _service(facility: str, text: str) -> str:
    if facility in _ROUTING:
        return _ROUTING[facility]
    if facility in ("TCP", "IP-TCP") and ("BADAUTH" in text or "MD5" in text):
        return "bgp" if ":179" in text or "(179)" in text else "ldp" if ":646" in text or "(646)" in text else "syslog"
    return "syslog"


class CiscoParser:
    name = "cisco"

    def parse(self, line: LogLine) -> Event | None:
        text = line.message
        if "%" not in text:
            tac = _TACACS.match(text) if "cmd=" in text else None
            if tac is None:
                return None
            return _command(
                {"logsource.product": "cisco", "logsource.service": "aaa", "observer.ip": tac["nas"],
                 "source.ip": tac["rem"], "cisco.tty": tac["tty"]}, tac["user"], tac["cmd"])  # fmt: skip
        asa = _ASA.search(text)
        if asa is not None:
            return _asa(asa)
        ios = _IOS.search(text)
        if ios is None:
            return None
        facility, mnemonic = ios["facility"], ios["mnemonic"]
        event: Event = {
            "logsource.product": "cisco", "observer.vendor": "Cisco", "cisco.facility": facility,
            "cisco.severity": int(ios["severity"]), "cisco.mnemonic": mnemonic,
            "event.code": f"{facility}-{ios['severity']}-{mnemonic}", "event.action": mnemonic.lower(),
        }  # fmt: skip
        cmd = _IOS_CMD.search(ios["text"]) if facility == "PARSER" and mnemonic == "CFGLOG_LOGGEDCMD" else None
        if cmd is not None:
            event["logsource.service"] = "aaa"
            return _command(event, cmd["user"], cmd["cmd"])
        event["logsource.service"] = _service(facility, ios["text"])
        if facility == "SEC_LOGIN" or (facility == "SYS" and mnemonic.startswith("CONFIG")):
            user = re.search(r"(?:\[user: |by )(\S+?)\]?(?: |$)", ios["text"])
            if user:
                event["user.name"] = user.group(1)
        return event


def _command(event: Event, user: str, command: str) -> Event:
    command = command.strip()
    event.update({"event.category": "configuration", "event.action": "command_executed", "user.name": user,
                  "process.command_line": command, "command": command})  # fmt: skip
    return event


def _asa(match: re.Match[str]) -> Event:
    msgid, text = match["msgid"], match["text"]
    event: Event = {
        "logsource.product": "cisco", "logsource.service": "syslog", "observer.vendor": "Cisco",
        "observer.product": match["product"], "cisco.severity": int(match["severity"]), "event.code": msgid,
        "cisco.message_id": msgid,
    }  # fmt: skip
    if msgid in _ASA_CMD_IDS:
        cmd = _ASA_CMD.search(text)
        if cmd is not None:
            event["logsource.service"] = "aaa"
            return _command(event, cmd["user"], cmd["cmd"])
    flow = _ASA_FLOW.search(text)
    if flow is not None:
        action = "deny" if flow["verb"] in ("Deny", "denied") else "allow"
        event.update({
            "logsource.category": "firewall", "event.category": "network", "event.action": action, "action": action,
            "blocked": "true" if action == "deny" else "false",
            "network.transport": flow["proto"].lower(), "src_ip": flow["src"], "src_port": int(flow["sport"]),
            "dst_ip": flow["dst"], "dst_port": int(flow["dport"]), "source.ip": flow["src"],
            "source.port": int(flow["sport"]), "destination.ip": flow["dst"], "destination.port": int(flow["dport"]),
        })  # fmt: skip
    return event
