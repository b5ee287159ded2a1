"""Alert → STIX 2.1 objects with deterministic ids.

Every id is a uuid5 over what the object *is* (the alert id, the rule id, the province), and every
``created``/``modified`` comes from the alert snapshot, so sending the same snapshot again yields byte-equal
objects: a TAXII server keeps one copy (same id and version), and an alert that changed later is a new
*version* of the same objects, never a second sighting.

- ``identity``: the province (where_sighted_refs / created_by_ref).
- ``indicator``: the detection rule (pattern_type ``sigma``), one per rule.
- ``observed-data`` + SCOs (ipv4/ipv6-addr, domain-name, url, file hashes) when the event has observables.
- ``sighting``: the alert itself (count, first/last seen) with ``x_soclite_*`` properties.
- ``incident``: for high-severity alerts. STIX 2.1 defines incident as a stub SDO, so its content rides
  in ``x_soclite_*`` custom properties as the spec allows.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import uuid
from typing import Any

import stix2

NAMESPACE = uuid.UUID("6f1e5a3c-2b0d-5c55-9e59-50c11e7e0a11")
#: rule indicators are versionless in soclite: a fixed timestamp keeps their version stable across resends
RULE_EPOCH = "2024-01-01T00:00:00.000Z"


def stix_id(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, '|'.join((kind, *parts)))}"


def _observables(event: dict[str, Any]) -> list[Any]:
    found: list[Any] = []
    for key in ("source.ip", "destination.ip", "host.ip"):
        value = event.get(key)
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str):
                continue
            try:
                address = ipaddress.ip_address(item)
            except ValueError:
                continue
            cls = stix2.IPv4Address if address.version == 4 else stix2.IPv6Address
            found.append(cls(value=str(address)))
    domain = event.get("dns.question.name")
    if isinstance(domain, str) and domain:
        found.append(stix2.DomainName(value=domain.rstrip(".").lower()))
    url = event.get("url.original")
    if isinstance(url, str) and "://" in url:
        found.append(stix2.URL(value=url))
    hashes = {
        name: event[key]
        for key, name in (
            ("file.hash.sha256", "SHA-256"),
            ("file.hash.sha1", "SHA-1"),
            ("file.hash.md5", "MD5"),
        )
        if isinstance(event.get(key), str) and event[key]
    }
    if hashes:
        found.append(stix2.File(hashes=hashes))
    unique: dict[str, Any] = {}
    for obj in found:
        unique.setdefault(obj.id, obj)
    return list(unique.values())


def identity_for(province: str) -> Any:
    return stix2.Identity(
        id=stix_id("identity", province),
        name=province,
        identity_class="organization",
        created=RULE_EPOCH,
        modified=RULE_EPOCH,
    )


def alert_to_stix(alert: dict[str, Any], province: str) -> list[dict[str, Any]]:
    """The STIX objects for one alert snapshot (JSON form of soclite.models.Alert), as plain dicts."""
    identity = identity_for(province)
    created, modified = alert["created_at"], max(alert["updated_at"], alert["created_at"])
    rule_id = str(alert["rule_id"])
    indicator = stix2.Indicator(
        id=stix_id("indicator", rule_id),
        created_by_ref=identity.id,
        created=RULE_EPOCH,
        modified=RULE_EPOCH,
        valid_from=RULE_EPOCH,
        name=str(alert["rule_title"]),
        pattern_type="sigma",
        pattern=json.dumps({"title": alert["rule_title"], "id": rule_id}, ensure_ascii=False),
        labels=[str(alert.get("kind", "sigma"))],
        allow_custom=True,
        x_soclite_rule_id=rule_id,
    )
    objects: list[Any] = [identity, indicator]
    event = alert.get("event") or {}
    observables = _observables(event)
    observed_refs: list[str] = []
    if observables:
        observed = stix2.ObservedData(
            id=stix_id("observed-data", alert["id"]),
            created_by_ref=identity.id,
            created=created,
            modified=modified,
            first_observed=alert["first_seen"],
            last_observed=max(alert["last_seen"], alert["first_seen"]),
            number_observed=max(int(alert.get("count", 1)), 1),
            object_refs=[o.id for o in observables],
        )
        objects.extend(observables)
        objects.append(observed)
        observed_refs.append(observed.id)
    custom = {
        "x_soclite_alert_id": alert["id"],
        "x_soclite_fingerprint": alert["fingerprint"],
        "x_soclite_rule_id": rule_id,
        "x_soclite_level": alert["level"],
        "x_soclite_severity": alert["severity"],
        "x_soclite_status": alert.get("status"),
        "x_soclite_host": alert.get("host"),
        "x_soclite_unit": alert.get("unit"),
        "x_soclite_tags": list(alert.get("tags") or []),
        "x_soclite_event": event,
    }
    sighting_args: dict[str, Any] = {}
    if observed_refs:
        sighting_args["observed_data_refs"] = observed_refs
    sighting = stix2.Sighting(
        id=stix_id("sighting", alert["id"]),
        created_by_ref=identity.id,
        created=created,
        modified=modified,
        first_seen=alert["first_seen"],
        last_seen=max(alert["last_seen"], alert["first_seen"]),
        count=max(int(alert.get("count", 1)), 1),
        sighting_of_ref=indicator.id,
        where_sighted_refs=[identity.id],
        allow_custom=True,
        **sighting_args,
        **{k: v for k, v in custom.items() if v is not None},
    )
    objects.append(sighting)
    if alert.get("severity") == "high":
        extra = {
            "description": alert.get("description"),
            "x_soclite_alert_id": alert["id"],
            "x_soclite_sighting_ref": sighting.id,
            "x_soclite_severity": alert["severity"],
            "x_soclite_host": alert.get("host"),
            "x_soclite_unit": alert.get("unit"),
        }
        incident = stix2.Incident(
            id=stix_id("incident", alert["id"]),
            created_by_ref=identity.id,
            created=created,
            modified=modified,
            name=str(alert["rule_title"]),
            allow_custom=True,
            **{k: v for k, v in extra.items() if v},
        )
        objects.append(incident)
    return [json.loads(obj.serialize()) for obj in objects]


def report_to_stix(report: Any, province: str) -> list[dict[str, Any]]:
    """A periodic report as STIX: an ``artifact`` carrying the file (base64, with its SHA-256) and a
    ``report`` SDO that describes it (number, period, summary in ``x_soclite_*``) and refers to it.

    ``report`` is a :class:`playbooks.connectors.base.NationalReport`. Ids are deterministic (the
    artifact's from its content, the report's from the province and report id): a resend is a no-op.
    """
    identity = identity_for(province)
    artifact = stix2.Artifact(
        mime_type=report.content_type,
        payload_bin=base64.b64encode(report.content).decode("ascii"),
        hashes={"SHA-256": report.sha256},
    )
    sdo = stix2.Report(
        id=stix_id("report", province, report.report_id),
        created_by_ref=identity.id,
        created=report.created_at,
        modified=report.created_at,
        published=report.created_at,
        name=f"{report.doc_number} ({report.period})",
        description=report.summary,
        report_types=["threat-report"],
        object_refs=[artifact.id, identity.id],
        lang=report.lang,
        allow_custom=True,
        x_soclite_report_id=report.report_id,
        x_soclite_doc_number=report.doc_number,
        x_soclite_period=report.period,
        x_soclite_filename=report.filename,
        x_soclite_sha256=report.sha256,
        x_soclite_query=report.params,
    )
    return [json.loads(obj.serialize()) for obj in (identity, artifact, sdo)]
