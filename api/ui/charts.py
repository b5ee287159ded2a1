"""Charts as inline SVG drawn here: readable at a glance, no front-end library, printable.

Severity colours follow the usual SOC convention (red high, amber medium,
blue-grey low) and every bar carries a <title> so hovering shows the number.
"""

from __future__ import annotations

from html import escape

SEVERITY_COLOURS = {"high": "#c62828", "medium": "#ef8f00", "low": "#5c7a99"}


def _num(value: int, lang: str) -> str:
    text = f"{value:,}"
    return text.replace(",", ".") if lang == "vi" else text


def nice_ticks(peak: int, most: int = 5) -> list[int]:
    """Integer axis ticks from 0 to the first "nice" value at or above ``peak``: steps of 1, 2 or 5 × 10^k.

    Counts are whole numbers: a 0-10 axis reads 0, 2, 4, 6, 8, 10 (not 0, 2, 5, 8, 10 from rounding
    quarters) and a 0-1 axis reads 0, 1 (not 0, 0, 0, 1, 1).
    """
    peak = max(int(peak), 1)
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if -(-peak // step) <= most:  # ceil(peak / step) intervals
                top = -(-peak // step) * step
                return list(range(0, top + 1, step))
        magnitude *= 10


def stacked_bars(
    buckets: list[tuple[str, dict[str, int]]], series: list[str], labels: dict[str, str], lang: str,
    width: int = 720, height: int = 220, slots: bool = False,
) -> str:
    """Vertical stacked bars, one per time bucket (label, {series: count}), with a legend and y axis.

    ``slots``: a transparent full-height ``rect.slot`` (``data-i``) under each bar, so a script can tell
    which bucket a pointer is over, even an empty one (brushing a range of buckets to zoom into).
    """
    pad_left, pad_bottom, pad_top = 44, 34, 24
    plot_w, plot_h = width - pad_left - 10, height - pad_bottom - pad_top
    ticks = nice_ticks(max((sum(c.get(s, 0) for s in series) for _, c in buckets), default=0))
    peak = ticks[-1]  # bars scale to the top tick, so the grid lines are where their labels say
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for value in ticks:  # grid lines and y labels
        y = pad_top + plot_h - plot_h * value / peak
        parts.append(f'<line x1="{pad_left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#e3e7ec"/>')
        parts.append(f'<text x="{pad_left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{_num(value, lang)}</text>')
    n = max(len(buckets), 1)
    slot = plot_w / n
    bar_w = max(2.0, slot * 0.7)
    step = max(1, n // 10)
    if slots:
        for index in range(len(buckets)):
            parts.append(f'<rect class="slot" data-i="{index}" x="{pad_left + index * slot:.1f}" y="{pad_top}" '
                         f'width="{slot:.1f}" height="{plot_h}" fill="transparent"/>')
    for index, (label, counts) in enumerate(buckets):
        x = pad_left + index * slot + (slot - bar_w) / 2
        y = pad_top + plot_h
        for name in series:
            value = counts.get(name, 0)
            if value <= 0:
                continue
            h = plot_h * value / peak
            y -= h
            colour = SEVERITY_COLOURS.get(name, "#607d8b")
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(label)} · {escape(labels.get(name, name))}: {_num(value, lang)}</title></rect>"
            )
        if index % step == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - pad_bottom + 16}" text-anchor="middle" class="axis">'
                f"{escape(label)}</text>"
            )
    lx = pad_left
    for name in series:
        parts.append(f'<rect x="{lx}" y="4" width="12" height="12" fill="{SEVERITY_COLOURS.get(name, "#607d8b")}"/>')
        parts.append(f'<text x="{lx + 16}" y="14" class="legend">{escape(labels.get(name, name))}</text>')
        lx += 24 + 8 * len(labels.get(name, name))
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(items: list[tuple[str, int]], lang: str, width: int = 520, colour: str = "#34618f") -> str:
    """Ranked horizontal bars (top rules, noisiest hosts), label left, count right."""
    row = 24
    height = max(row * len(items) + 8, 32)
    peak = max((v for _, v in items), default=0) or 1
    label_w = 230
    bar_space = width - label_w - 60
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        short = label if len(label) <= 34 else label[:33] + "…"
        w = max(1.0, bar_space * value / peak)
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="label">'
                     f"<title>{escape(label)}</title>{escape(short)}</text>")
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="16" rx="2" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" class="value">{_num(value, lang)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def baseline_line(
    points: list[tuple[str, int, float | None, float | None, bool]], labels: dict[str, str], lang: str,
    width: int = 720, height: int = 220,
) -> str:
    """Observed hourly counts as a line over the seasonal baseline (dashed) and its threshold (shaded band);
    hours flagged by statistical trend detection as red dots. ``points``: (label, observed, median, threshold,
    flagged), one per hour; ``labels``: observed, baseline, threshold, flagged."""
    pad_left, pad_bottom, pad_top = 44, 34, 24
    plot_w, plot_h = width - pad_left - 10, height - pad_bottom - pad_top
    peak_value = max((max(p[1], p[3] or 0) for p in points), default=0)
    ticks = nice_ticks(int(peak_value + 0.999))
    peak = ticks[-1]
    n = max(len(points) - 1, 1)

    def xy(i: int, value: float) -> tuple[float, float]:
        return pad_left + plot_w * i / n, pad_top + plot_h - plot_h * value / peak

    parts = [f'<svg class="chart trend-chart" viewBox="0 0 {width} {height}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for value in ticks:
        y = pad_top + plot_h - plot_h * value / peak
        parts.append(f'<line x1="{pad_left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#e3e7ec"/>')
        parts.append(f'<text x="{pad_left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{_num(value, lang)}</text>')
    band = [(i, p[3]) for i, p in enumerate(points) if p[3] is not None]
    if band:  # the band between the baseline and the threshold: where a count is still "usual"
        upper = [xy(i, v) for i, v in band]
        lower = [xy(i, points[i][2] or 0) for i, _v in reversed(band)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in upper + lower)
        parts.append(f'<polygon class="band" points="{path}" fill="#dfe9f3" stroke="none"/>')
        median = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, points[i][2] or 0) for i, _v in band))
        parts.append(f'<polyline class="baseline" points="{median}" fill="none" stroke="#5c7a99" '
                     f'stroke-dasharray="4 3" stroke-width="1.5"/>')
    observed = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, p[1]) for i, p in enumerate(points)))
    parts.append(f'<polyline class="observed" points="{observed}" fill="none" stroke="#34618f" stroke-width="1.5"/>')
    step = max(1, len(points) // 7)
    for i, (label, value, median_value, _threshold, flagged) in enumerate(points):
        if flagged:
            x, y = xy(i, value)
            base = "–" if median_value is None else f"{median_value:g}"
            parts.append(f'<circle class="flagged" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#c62828"><title>'
                         f'{escape(label)} · {escape(labels["observed"])}: {_num(value, lang)} · '
                         f'{escape(labels["baseline"])}: {base}</title></circle>')
        if i % step == 0:
            x, _y = xy(i, 0)
            parts.append(f'<text x="{x:.1f}" y="{height - pad_bottom + 16}" text-anchor="middle" class="axis">'
                         f"{escape(label.split(' ')[0])}</text>")
    lx = pad_left
    for key, colour in (("observed", "#34618f"), ("baseline", "#5c7a99"), ("threshold", "#dfe9f3"),
                        ("flagged", "#c62828")):
        parts.append(f'<rect x="{lx}" y="4" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 16}" y="14" class="legend">{escape(labels[key])}</text>')
        lx += 22 + 6 * len(labels[key])
    parts.append("</svg>")
    return "".join(parts)
