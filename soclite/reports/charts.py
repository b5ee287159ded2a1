"""Charts drawn with matplotlib (Agg, no display) and embedded as PNG data URIs.

PNG rather than SVG: WeasyPrint and every mail client show a PNG the same way,
and the Vietnamese labels are rasterised with DejaVu Sans (matplotlib's bundled
font covers Vietnamese), so the chart does not depend on the reader's fonts.
"""

from __future__ import annotations

import base64
import io
import threading
from typing import Any

from soclite.reports.context import ReportContext
from soclite.reports.i18n import t
from soclite.reports.periods import timezone_of

_COLORS = {"high": "#c0392b", "medium": "#e67e22", "low": "#f1c40f"}
#: pyplot keeps global state; one chart at a time across threads (API + scheduler).
_LOCK = threading.Lock()


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams["font.family"] = "DejaVu Sans"
    return plt


def _to_data_uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def bar_labels(ctx: ReportContext) -> list[str]:
    """The x labels of the over-time chart: each bucket's local date (``period.start`` is UTC: not its zone)."""
    tz = timezone_of(ctx.period.tz)
    fmt = "%d/%m" if ctx.histogram_interval == "day" else "%m/%Y"
    return [b.start.astimezone(tz).strftime(fmt) for b in ctx.histogram]


def severity_over_time(ctx: ReportContext, lang: str) -> str | None:
    """Stacked bars of alerts per day (or month) by severity bucket; None when there is nothing to draw."""
    if not ctx.histogram or ctx.total == 0:
        return None
    with _LOCK:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(7.5, 2.8))
        try:
            labels = bar_labels(ctx)
            xs = list(range(len(labels)))
            bottom = [0] * len(xs)
            for sev in ("high", "medium", "low"):
                values = [b.counts.get(sev, 0) for b in ctx.histogram]
                ax.bar(xs, values, bottom=bottom, color=_COLORS[sev], label=t(sev, lang), width=0.8)
                bottom = [a + b for a, b in zip(bottom, values, strict=True)]
            step = max(1, len(xs) // 12)
            ax.set_xticks(xs[::step], labels[::step], fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
            # counts of alerts: whole-number ticks only (never 0.5 alert)
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.set_title(t("chart_over_time", lang), fontsize=9)
            ax.legend(fontsize=7, frameon=False, loc="upper left")  # "best" searches and warns on many points
            ax.spines[["top", "right"]].set_visible(False)
            return _to_data_uri(fig)
        finally:
            plt.close(fig)


def by_unit(ctx: ReportContext, lang: str) -> str | None:
    """Horizontal bars of alerts per unit (top 12)."""
    rows = ctx.by_unit[:12]
    if not rows:
        return None
    with _LOCK:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(rows) + 0.8))
        try:
            names = [name or t("no_unit", lang) for _code, name, _n in rows][::-1]
            values = [n for _c, _name, n in rows][::-1]
            ax.barh(names, values, color="#2e86c1")
            ax.tick_params(labelsize=7)
            ax.set_title(t("chart_by_unit", lang), fontsize=9)
            ax.spines[["top", "right"]].set_visible(False)
            return _to_data_uri(fig)
        finally:
            plt.close(fig)
