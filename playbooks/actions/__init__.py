"""The actions registry: every thing a playbook step can do, by name.

``ACTIONS`` is the one place to find them. Registering a name twice raises, so a plugin cannot silently
replace a built-in action.
"""

from __future__ import annotations

from soclite.errors import PlaybookError
from soclite.playbooks.actions.base import Action, ActionContext, Options, PermanentError, RetryableError

ACTIONS: dict[str, type[Action]] = {}


def register(cls: type[Action]) -> type[Action]:
    if cls.name in ACTIONS:
        raise PlaybookError(f"action {cls.name!r} is already registered by {ACTIONS[cls.name].__module__}")
    ACTIONS[cls.name] = cls
    return cls


def get_action(name: str) -> type[Action]:
    try:
        return ACTIONS[name]
    except KeyError:
        raise PlaybookError(f"unknown action {name!r}; known: {', '.join(sorted(ACTIONS))}") from None


from soclite.playbooks.actions import host, intel, national, notify  # noqa: E402  (registration side effects)

for _module in (host, intel, national, notify):
    for _cls in _module.EXPORTED:
        register(_cls)

__all__ = [
    "ACTIONS",
    "Action",
    "ActionContext",
    "Options",
    "PermanentError",
    "RetryableError",
    "get_action",
    "register",
]
