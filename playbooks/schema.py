"""Playbooks are data: the YAML schema, validated on load with ``file:line`` errors.

A folder with one broken playbook loads the others; each problem names the file, the line of the
offending key (from the YAML node marks) and what was expected. Step parameters are validated against the
action's own options model (``playbooks.actions``), with ``{{ field }}`` placeholders checked against a
sample alert, so a typo in a parameter name fails at load, not at 3 a.m. when the alert comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from soclite.errors import TemplateError
from soclite.playbooks.conditions import Condition, render
from soclite.playbooks.outbox import RetryPolicy

Change = Literal["created", "updated", "escalated"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class TriggerMatch(_Strict):
    """Every given criterion must hold; a list means any of its values. ``tags`` and ``rule_ids`` are globs."""

    severity: list[Literal["high", "medium", "low"]] = Field(default_factory=list)
    level: list[Literal["critical", "high", "medium", "low", "informational"]] = Field(default_factory=list)
    rule_ids: list[str] = Field(default_factory=list, alias="rule_id")
    tags: list[str] = Field(default_factory=list)
    unit: list[str] = Field(default_factory=list)
    host_type: list[Literal["server", "workstation"]] = Field(default_factory=list)
    kind: list[str] = Field(default_factory=list)
    logsource_product: list[str] = Field(default_factory=list)
    logsource_category: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _merge_rule_ids(cls, data: Any) -> Any:
        if isinstance(data, dict) and "rule_ids" in data and "rule_id" in data:
            data = dict(data)
            data["rule_id"] = _as_list(data.pop("rule_id")) + _as_list(data.pop("rule_ids"))
        elif isinstance(data, dict) and "rule_ids" in data:
            data = dict(data)
            data["rule_id"] = data.pop("rule_ids")
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return _as_list(value)


class Trigger(_Strict):
    @model_validator(mode="before")
    @classmethod
    def _yaml11_on(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean True (the GitHub Actions trap); take it as "on".
        if isinstance(data, dict) and True in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data

    on: list[Change] = Field(default_factory=lambda: list[Change](["created"]))
    match: TriggerMatch = Field(default_factory=TriggerMatch)
    #: any of these groups matching also triggers (alternatives to ``match``)
    any: list[TriggerMatch] = Field(default_factory=list)

    @field_validator("on", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return _as_list(value)


class Step(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    when: list[Condition] = Field(default_factory=list)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: float = Field(60.0, gt=0, le=3600)
    #: None = the action decides (destructive → approval unless the playbook is automatic)
    requires_approval: bool | None = None

    @field_validator("when", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return _as_list(value)


class Playbook(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    enabled: bool = True
    #: run destructive steps without waiting for an admin's approval
    automatic: bool = False
    trigger: Trigger
    steps: list[Step] = Field(min_length=1)
    #: where it was loaded from, for messages (not part of the YAML)
    source: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _unique_steps(self) -> Playbook:
        names = [s.name for s in self.steps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"step names must be unique: {', '.join(dupes)}")
        return self

    def approval_needed(self, step: Step) -> bool:
        from soclite.playbooks.actions import get_action

        if step.requires_approval is not None:
            return step.requires_approval
        return get_action(step.action).destructive and not self.automatic


#: a complete alert context for load-time checks of ``{{ placeholders }}``
SAMPLE_CONTEXT: dict[str, Any] = {
    "id": "0" * 32,
    "fingerprint": "0" * 32,
    "rule_id": "sample",
    "rule_title": "Sample",
    "level": "high",
    "severity": "high",
    "status": "new",
    "assignee": None,
    "host": "ws-001",
    "unit": "unit",
    "first_seen": "2024-01-01T00:00:00.000Z",
    "last_seen": "2024-01-01T00:00:00.000Z",
    "count": 1,
    "event_ids": [],
    "tags": [],
    "kind": "sigma",
    "description": "",
    "created_at": "2024-01-01T00:00:00.000Z",
    "updated_at": "2024-01-01T00:00:00.000Z",
    "host_type": "workstation",
    "change": "created",
    "event": {},
}


@dataclass
class LoadProblem:
    source: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}" if self.line else f"{self.source}: {self.message}"


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest YAML node along ``loc`` (pydantic's error location)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part or (part == "rule_id" and key.value == "rule_ids"):
                    line = key.start_mark.line + 1
                    node = value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _check_params(playbook: Playbook, root: yaml.Node | None, source: str) -> list[LoadProblem]:
    from soclite.playbooks.actions import ACTIONS

    problems: list[LoadProblem] = []
    for index, step in enumerate(playbook.steps):
        where = ("steps", index)
        cls = ACTIONS.get(step.action)
        if cls is None:
            problems.append(
                LoadProblem(
                    source,
                    _line_of(root, (*where, "action")),
                    f"unknown action {step.action!r}; known: {', '.join(sorted(ACTIONS))}",
                )
            )
            continue
        try:
            rendered = render(step.params, SAMPLE_CONTEXT)
        except TemplateError as exc:
            problems.append(LoadProblem(source, _line_of(root, (*where, "params")), str(exc)))
            continue
        try:
            cls.options.model_validate(rendered)
        except ValidationError as exc:
            for error in exc.errors():
                loc = (*where, "params", *error["loc"])
                field = ".".join(str(p) for p in error["loc"])
                problems.append(
                    LoadProblem(
                        source, _line_of(root, loc), f"{step.action} parameter {field}: {error['msg']}"
                    )
                )
    return problems


def parse_playbook(text: str, source: str) -> tuple[Playbook | None, list[LoadProblem]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [
            LoadProblem(
                source, mark.line + 1 if mark else None, f"invalid YAML: {getattr(exc, 'problem', exc)}"
            )
        ]
    if not isinstance(data, dict):
        return None, [LoadProblem(source, 1, "a playbook is a mapping with id, trigger and steps")]
    try:
        playbook = Playbook.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            key = ".".join(str(p) for p in loc) or "(top level)"
            problems.append(LoadProblem(source, _line_of(root, loc), f"{key}: {error['msg']}"))
        return None, problems
    problems = _check_params(playbook, root, source)
    return (None if problems else playbook), problems


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()))
        else:
            found.append(path)
    return found


def load_playbooks(paths: list[Path]) -> tuple[list[Playbook], list[LoadProblem]]:
    """Load every playbook under ``paths``; the bad ones are reported, the rest returned."""
    playbooks: list[Playbook] = []
    problems: list[LoadProblem] = []
    seen: dict[str, str] = {}
    for file in _files(paths):
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(LoadProblem(str(file), None, f"cannot read: {exc.strerror}"))
            continue
        playbook, found = parse_playbook(text, str(file))
        problems.extend(found)
        if playbook is None:
            continue
        if playbook.id in seen:
            problems.append(
                LoadProblem(
                    str(file), 1, f"duplicate playbook id {playbook.id!r} (also in {seen[playbook.id]})"
                )
            )
            continue
        seen[playbook.id] = str(file)
        playbooks.append(playbook)
    return playbooks, problems
