"""Linux authentication: sshd, sudo, su and the shadow-utils tools (useradd, usermod, groupadd, passwd).

Sigma log sources: sshd lines are ``product: linux, service: sshd``; sudo/su/account
changes are ``product: linux, service: auth``. Normalized fields: event.action,
event.outcome (success|failure), source.ip, source.port, user.name.
"""

from __future__ import annotations

import re

from soclite.collectors.parsers.base import LogLine
from soclite.models import Event

_IP = r"(?P<ip>[0-9A-Fa-f:.]+)"
_SSHD = [
    (re.compile(rf"^Accepted (?P<method>\S+) for (?P<user>\S+) from {_IP} port (?P<port>\d+)"), "ssh_login", "success"),
    (
        re.compile(rf"^Failed (?P<method>\S+) for (?:invalid user )?(?P<user>\S*) from {_IP} port (?P<port>\d+)"),
        "ssh_login",
        "failure",
    ),
    (re.compile(rf"^Invalid user (?P<user>\S*) from {_IP}(?: port (?P<port>\d+))?"), "ssh_invalid_user", "failure"),
    (
        re.compile(
            rf"^Disconnected from (?:(?:invalid|authenticating) )?(?:user (?P<user>\S+) )?{_IP} port (?P<port>\d+)"
        ),
        "ssh_disconnect",
        None,
    ),
    (
        re.compile(rf"^Connection closed by (?:(?:invalid|authenticating) )?(?:user (?P<user>\S+) )?{_IP} port (?P<port>\d+)"),
        "ssh_connection_closed",
        None,
    ),
    (
        re.compile(rf"^error: maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S+) from {_IP} port (?P<port>\d+)"),
        "ssh_max_auth_attempts",
        "failure",
    ),
]
_SUDO = re.compile(
    r"^\s*(?P<user>\S+) : (?:(?P<attempts>\d+) incorrect password attempts? ; |(?P<refused>[^;]*?(?i:not in (?:the )?sudoers|not allowed|command not allowed)[^;]*) ; )?"
    r"(?:TTY=(?P<tty>[^;]*) ; )?PWD=(?P<pwd>[^;]*) ; USER=(?P<target>[^;]*) ;(?: GROUP=[^;]* ;)?(?: ENV=[^;]* ;)? COMMAND=(?P<cmd>.*)$"
)
_PAM_FAIL = re.compile(
    r"^pam_unix\((?P<svc>[\w-]+):auth\): authentication failure;.*?ruser=(?P<ruser>\S*) rhost=(?P<rhost>\S*)(?:\s+user=(?P<user>\S+))?"
)
_PAM_SESSION = re.compile(
    r"^pam_unix\((?P<svc>[\w-]+):session\): session (?P<what>opened|closed) for user (?P<target>[^\s(]+)(?:\(uid=\d+\))?(?: by (?P<user>[^\s(]*)(?:\(uid=\d+\))?)?"
)
_SU = re.compile(r"^(?P<failed>FAILED SU )?\(to (?P<target>[^)]+)\) (?P<user>\S+) on (?P<tty>\S+)")
_SU_NEW = re.compile(r"^(?P<failed>FAILED )?su(?: for)? (?P<target>\S+) by (?P<user>\S+)")
_KV = re.compile(r"(\w+)=([^,]*)")
_USERMOD_GROUP = re.compile(r"^add '(?P<user>[^']+)' to (?:shadow )?group '(?P<group>[^']+)'")
_USERMOD_CHANGE = re.compile(r"^(?P<what>change|lock|unlock) user '(?P<user>[^']+)' (?P<attr>\w+)")
_PASSWD = re.compile(r"^pam_unix\(passwd:chauthtok\): password changed for (?P<user>\S+)")
_GPASSWD_ADD = re.compile(r"^user (?P<user>\S+) added by (?P<by>\S+) to group (?P<group>\S+)")
_USERDEL = re.compile(r"^delete user '(?P<user>[^']+)'")

_ACCOUNT_TOOLS = {"useradd", "usermod", "groupadd", "groupmod", "userdel", "groupdel", "passwd", "chpasswd", "chage", "gpasswd"}


def _auth(action: str, outcome: str | None, **fields: str | None) -> Event:
    event: Event = {
        "logsource.product": "linux",
        "logsource.service": "auth",
        "event.category": "authentication",
        "event.action": action,
    }
    if outcome:
        event["event.outcome"] = outcome
    event.update({k: v for k, v in fields.items() if v not in (None, "")})
    return event


class SshdParser:
    name = "sshd"

    def parse(self, line: LogLine) -> Event | None:
        if line.program != "sshd" and not (line.program or "").startswith("sshd-"):
            return None
        event: Event = {"logsource.product": "linux", "logsource.service": "sshd", "process.name": "sshd"}
        for pattern, action, outcome in _SSHD:
            match = pattern.match(line.message)
            if match is None:
                continue
            event["event.category"] = "authentication"
            event["event.action"] = action
            if outcome:
                event["event.outcome"] = outcome
            groups = match.groupdict()
            if groups.get("user"):
                event["user.name"] = groups["user"]
            event["source.ip"] = groups["ip"]
            if groups.get("port"):
                event["source.port"] = int(groups["port"])
            if groups.get("method"):
                event["ssh.auth_method"] = groups["method"]
            break
        return event


class SudoParser:
    name = "sudo"

    def parse(self, line: LogLine) -> Event | None:
        if line.program != "sudo":
            return None
        match = _SUDO.match(line.message)
        if match is not None:
            failed = bool(match["attempts"] or match["refused"])
            event = _auth(
                "sudo", "failure" if failed else "success", **{"user.name": match["user"],
                "user.target.name": match["target"].strip(), "process.command_line": match["cmd"].strip(),
                "process.working_directory": match["pwd"].strip(), "tty": (match["tty"] or "").strip() or None},
            )  # fmt: skip
            if match["attempts"]:
                event["sudo.incorrect_attempts"] = int(match["attempts"])
            return event
        return _pam(line) or _auth("sudo", None)


def _pam(line: LogLine) -> Event | None:
    fail = _PAM_FAIL.match(line.message)
    if fail is not None:
        return _auth(f"{fail['svc']}_auth", "failure", **{"user.name": fail["user"] or fail["ruser"],
                     "source.address": fail["rhost"]})  # fmt: skip
    session = _PAM_SESSION.match(line.message)
    if session is not None:
        return _auth(f"{session['svc']}_session_{session['what']}", "success", **{
            "user.target.name": session["target"], "user.name": session["user"]})  # fmt: skip
    return None


class SuParser:
    name = "su"

    def parse(self, line: LogLine) -> Event | None:
        if line.program not in ("su", "su-l"):
            return None
        for pattern in (_SU, _SU_NEW):
            match = pattern.match(line.message)
            if match is not None:
                return _auth("su", "failure" if match["failed"] else "success", **{
                    "user.name": match["user"], "user.target.name": match["target"]})  # fmt: skip
        return _pam(line) or _auth("su", None)


class AccountParser:
    """shadow-utils: useradd/usermod/groupadd/userdel/passwd (and pam_unix password changes)."""

    name = "account"

    def parse(self, line: LogLine) -> Event | None:
        if line.program not in _ACCOUNT_TOOLS:
            return None
        text = line.message
        if text.startswith(("new user:", "new group:", "group added to", "new user ", "new group ")):
            kv = {k: v.strip() for k, v in _KV.findall(text)}
            if text.startswith("new user"):
                event = _auth("user_created", "success", **{"user.target.name": kv.get("name"),
                              "user.target.id": kv.get("UID"), "group.id": kv.get("GID")})  # fmt: skip
                event["event.category"] = "iam"
                return event
            event = _auth("group_created", "success", **{"group.name": kv.get("name"), "group.id": kv.get("GID")})
            event["event.category"] = "iam"
            return event
        for pattern, action in ((_USERMOD_GROUP, "user_added_to_group"), (_GPASSWD_ADD, "user_added_to_group"),
                                (_USERDEL, "user_deleted"),
                                (_PASSWD, "password_changed")):  # fmt: skip
            match = pattern.match(text)
            if match is not None:
                groups = match.groupdict()
                event = _auth(action, "success", **{"user.target.name": groups.get("user"), "group.name": groups.get("group")})
                event["event.category"] = "iam"
                return event
        change = _USERMOD_CHANGE.match(text)
        if change is not None:
            event = _auth(f"user_{change['what']}_{change['attr']}", "success", **{"user.target.name": change["user"]})
            event["event.category"] = "iam"
            return event
        return _pam(line) or _auth(line.program or "account", None)
