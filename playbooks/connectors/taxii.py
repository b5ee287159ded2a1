"""TAXII 2.1 adapter: STIX 2.1 objects pushed to one collection, indicators pulled from another.

``national.taxii_url`` is the API root (``https://host/api1/``); collections are given by id. The
``added_after`` cursor of the pull is kept in the outbox db, so a restart continues where it stopped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Collection, as_pages

from soclite.errors import ConfigError
from soclite.models import isoformat, utcnow
from soclite.playbooks.actions.base import PermanentError, RetryableError
from soclite.playbooks.connectors.base import (
    Connector,
    ConnectorOptions,
    IocKind,
    NationalItem,
    NationalReport,
    PulledIndicator,
)
from soclite.playbooks.connectors.stix_mapping import alert_to_stix, report_to_stix, stix_id

_COMPARISON = re.compile(
    r"(ipv4-addr|ipv6-addr|domain-name|url|file):(value|hashes\.'?[A-Za-z0-9-]+'?)\s*=\s*'((?:[^'\\]|\\.)*)'"
)
_KINDS: dict[str, IocKind] = {
    "ipv4-addr": "ip",
    "ipv6-addr": "ip",
    "domain-name": "domain",
    "url": "url",
    "file": "hash",
}


class TaxiiOptions(ConnectorOptions):
    taxii_url: str
    taxii_push_collection: str
    taxii_pull_collection: str | None = None
    username: str | None = None
    password: Any = None
    verify_tls: bool = True
    ca_certs: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None


def parse_pattern(pattern: str) -> list[tuple[IocKind, str]]:
    """The (kind, value) equality comparisons of a STIX pattern; anything fancier is not an IoC list entry."""
    return [(_KINDS[m.group(1)], m.group(3).replace("\\'", "'")) for m in _COMPARISON.finditer(pattern)]


def _classify(exc: Exception, what: str) -> Exception:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500 and status not in (401, 403, 408, 425, 429):
        body = response.text[:300] if response is not None else ""
        return PermanentError(f"{what}: HTTP {status}: {body}")
    # 401/403: the province's credentials are wrong or expired — fixable by an admin, so hold, don't drop.
    return RetryableError(f"{what}: {type(exc).__name__}: {exc}"[:500])


class TaxiiConnector(Connector):
    name = "taxii"
    options = TaxiiOptions

    def __init__(self, runtime: Any) -> None:
        national = runtime.settings.national
        for key in ("taxii_url", "taxii_push_collection"):
            if not getattr(national, key):
                raise ConfigError("required by the TAXII connector", key=f"national.{key}")
        super().__init__(runtime)
        assert isinstance(self.opts, TaxiiOptions)
        self.topts: TaxiiOptions = self.opts

    def _collection(self, collection_id: str) -> Collection:
        opts = self.topts
        root = opts.taxii_url if opts.taxii_url.endswith("/") else opts.taxii_url + "/"
        verify: bool | str = str(opts.ca_certs) if (opts.verify_tls and opts.ca_certs) else opts.verify_tls
        password = self.settings.national.password
        collection = Collection(
            f"{root}collections/{collection_id}/",
            user=opts.username,
            password=password.get_secret_value() if password is not None else None,
            verify=verify,
            cert=(str(opts.client_cert), str(opts.client_key or opts.client_cert))
            if opts.client_cert
            else None,
        )
        return collection

    def _post(self, objects: list[dict[str, Any]]) -> str:
        collection = self._collection(self.topts.taxii_push_collection)
        try:
            status = collection.add_objects(
                {"objects": objects}, wait_for_completion=True, poll_interval=1, timeout=30
            )
        except (requests.RequestException, TAXIIServiceException, ValueError) as exc:
            raise _classify(exc, "TAXII add_objects") from exc
        # A failure entry for an object already present (same id and version) is the resend we designed for.
        return (
            f"TAXII status {status.id}: {status.success_count} added, {status.failure_count} already present"
        )

    def send(self, items: list[NationalItem]) -> str:
        objects: dict[str, dict[str, Any]] = {}
        for item in items:
            try:
                mapped = alert_to_stix(self.prepare(item), self.settings.province)
            except (ValueError, KeyError, TypeError) as exc:
                raise PermanentError(
                    f"alert {item.alert.get('id')} cannot be expressed in STIX: {exc}"
                ) from exc
            for obj in mapped:
                objects[obj["id"]] = obj
        return self._post(list(objects.values()))

    def send_report(self, report: NationalReport) -> str:
        """A STIX ``report`` SDO plus an ``artifact`` with the file, pushed to the alerts collection."""
        try:
            objects = report_to_stix(report, self.settings.province)
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"report {report.report_id} cannot be expressed in STIX: {exc}") from exc
        return self._post(objects)

    def heartbeat(self, stats: dict[str, Any]) -> None:
        now = isoformat(utcnow())
        note = {
            "type": "note",
            "spec_version": "2.1",
            "id": stix_id("note", self.settings.province, "heartbeat", now),
            "created": now,
            "modified": now,
            "abstract": "soclite heartbeat",
            "content": "heartbeat",
            "object_refs": [stix_id("identity", self.settings.province)],
            "x_soclite_heartbeat": stats,
        }
        self._post([note])

    def pull_indicators(self, cursor: str | None) -> tuple[list[PulledIndicator], str | None]:
        if not self.topts.taxii_pull_collection:
            return [], cursor
        collection = self._collection(self.topts.taxii_pull_collection)
        filters: dict[str, Any] = {"type": "indicator"}
        if cursor:
            filters["added_after"] = cursor
        found: list[PulledIndicator] = []
        newest = cursor
        try:
            for page in as_pages(collection.get_manifest, per_request=500, **filters):
                for entry in page.get("objects", []):
                    if newest is None or entry["date_added"] > newest:
                        newest = entry["date_added"]
            for page in as_pages(collection.get_objects, per_request=500, **filters):
                for obj in page.get("objects", []):
                    found.extend(self._indicator(obj))
        except (requests.RequestException, TAXIIServiceException, ValueError) as exc:
            raise _classify(exc, "TAXII pull") from exc
        return found, newest

    @staticmethod
    def _indicator(obj: dict[str, Any]) -> list[PulledIndicator]:
        if obj.get("type") != "indicator" or obj.get("pattern_type", "stix") != "stix":
            return []
        active = not obj.get("revoked", False)
        valid_until = obj.get("valid_until")
        if valid_until and valid_until < isoformat(utcnow()):
            active = False
        return [
            PulledIndicator(source_id=obj["id"], kind=kind, value=value, active=active)
            for kind, value in parse_pattern(str(obj.get("pattern", "")))
        ]
