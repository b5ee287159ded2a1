"""nginx / Apache access logs (common and combined formats) → ``category: webserver``.

Field names are the W3C ones SigmaHQ's webserver rules use (c-ip, cs-method,
cs-uri-stem, cs-uri-query, sc-status, cs-user-agent, cs-referer) plus ECS
(source.ip, url.original, http.response.status_code ...).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from soclite.collectors.parsers.base import LogLine
from soclite.models import Event

_ACCESS = re.compile(
    r'^(?:(?P<vhost>\S+) )?(?P<ip>[0-9A-Fa-f:.]+) (?P<ident>\S+) (?P<user>\S+) \[(?P<ts>[^\]]+)\] '
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<ua>(?:[^"\\]|\\.)*)")?'
)
_PRODUCTS = {"nginx": "nginx", "apache": "apache", "apache2": "apache", "httpd": "apache"}


class AccessLogParser:
    name = "webserver"

    def parse(self, line: LogLine) -> Event | None:
        match = _ACCESS.match(line.message)
        if match is None:
            return None
        # vhost is only a vhost if the next thing is an IP; the regex backtracks otherwise.
        try:
            ts = datetime.strptime(match["ts"], "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC)
        except ValueError:
            return None
        request = match["request"]
        method, uri, version = "-", request, ""
        parts = request.split(" ")
        if len(parts) == 3:
            method, uri, version = parts
        elif len(parts) == 2:
            method, uri = parts
        stem, _, query = uri.partition("?")
        status = int(match["status"])
        event: Event = {
            "logsource.category": "webserver",
            "event.category": "web",
            "@timestamp": ts,
            "c-ip": match["ip"],
            "source.ip": match["ip"],
            "cs-method": method,
            "http.request.method": method,
            "cs-uri-stem": stem,
            "url.path": stem,
            "cs-uri-query": query,
            "url.original": uri,
            "sc-status": status,
            "http.response.status_code": status,
            "event.outcome": "success" if status < 400 else "failure",
        }
        if query:
            event["url.query"] = query
        if version:
            event["cs-version"] = version
            event["http.version"] = version.removeprefix("HTTP/")
        if match["bytes"] != "-":
            event["sc-bytes"] = int(match["bytes"])
            event["http.response.body.bytes"] = int(match["bytes"])
        if match["user"] != "-":
            event["cs-username"] = match["user"]
            event["user.name"] = match["user"]
        if match["referer"] is not None:
            event["cs-referer"] = match["referer"]
            event["http.request.referrer"] = match["referer"]
            event["cs-user-agent"] = match["ua"]
            event["user_agent.original"] = match["ua"]
        if match["vhost"]:
            event["cs-host"] = match["vhost"]
        hint = line.program or ""
        if not hint and line.path:
            hint = "nginx" if "nginx" in line.path else ("apache" if "apache" in line.path or "httpd" in line.path else "")
        if hint in _PRODUCTS:
            event["logsource.product"] = _PRODUCTS[hint]
        return event
