"""Translations of the web UI: gettext catalogs (Babel) read straight from the .po files.

Message ids are English; ``dashboards/i18n/vi/LC_MESSAGES/messages.po`` holds
the Vietnamese (the default language) and ``en`` the identity catalog. The
.po files are parsed with :mod:`babel.messages.pofile` at start, so no
compiled .mo step can be forgotten at install time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from babel.messages.pofile import read_po

from soclite.config import PACKAGE_ROOT

I18N_DIR = PACKAGE_ROOT / "dashboards" / "i18n"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """msgid → translation for one language ({} when the catalog is missing: English ids show)."""
    path: Path = I18N_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        cat = read_po(handle, locale=lang)
    out: dict[str, str] = {}
    for message in cat:
        usable = isinstance(message.id, str) and isinstance(message.string, str) and not message.fuzzy
        if usable and message.id and message.string:
            out[str(message.id)] = str(message.string)
    return out


def translator(lang: str) -> Callable[..., str]:
    """A gettext function for templates: ``_("Alerts")``, with %-style named arguments."""
    table = catalog(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)

    def gettext(message: str, **kwargs: object) -> str:
        text = table.get(message, message)
        return text % kwargs if kwargs else text

    return gettext
