"""The UI's templates are compiled once, at start, and not looked at again (api.ui.web.warm_templates)."""

from __future__ import annotations

from soclite.api.ui import web


def test_every_template_compiles_at_start_and_is_not_re_read() -> None:
    names = sorted(p.name for p in web.TEMPLATES.glob("*.html"))
    assert web.warm_templates() == len(names) > 20
    # auto_reload would stat() each template (and each it extends or includes) on every page
    assert web._env.auto_reload is False
    assert web._env.cache is not None
    cached = {key[1] for key in web._env.cache}
    assert set(names) <= cached
