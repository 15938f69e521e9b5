"""Charts drawn in the page, as CSS and inline SVG: nothing to download, nothing to run.

    bars      horizontal bars (CSS), one per category: records per split and per class,
              image sizes and formats, orientations
    lines     values over categories (SVG), one line per series with min-max bars: the
              benchmark's throughput against the thread setting

Every label is escaped (``html.fmt``): class names and file names are data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .html import Html, fmt, join

__all__ = ["Series", "bars", "lines"]

_WIDTH = 720
_LABEL_CHARS = 30
#: Colours of lines, in order (colour-blind safe: Okabe & Ito's).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000")


def _cut(text: str, n: int = _LABEL_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def bars(
    items: Sequence[tuple[str, float]],
    *,
    label: str,
    colour: str = "#2f6fd0",
    limit: int = 60,
    unit: str = "",
) -> Html:
    """A horizontal bar per (name, value), in the order given (CSS: the text stays the
    page's size whatever the width); after ``limit`` bars the rest are summed into one.
    ``label`` names the chart for screen readers."""
    items = list(items)
    if len(items) > limit:
        rest = items[limit:]
        items = [*items[:limit], (f"({len(rest):,} more)", sum(v for _, v in rest))]
    if not items:
        return fmt('<p class="muted">none</p>')
    top = max((v for _, v in items), default=0) or 1
    rows = []
    for name, value in items:
        shown = f"{value:,.0f}{unit}" if float(value).is_integer() else f"{value:,.3g}{unit}"
        rows.append(
            fmt(
                '<span class="name" title="{}">{}</span><span class="track"><span class="fill" '
                'style="width: {:.2f}%; background: {}"></span></span><span class="value">{}'
                "</span>",
                name,
                name,
                100 * value / top,
                colour,
                shown,
            )
        )
    return fmt('<div class="bars" role="img" aria-label="{}">{}</div>', label, join(rows))


@dataclass(frozen=True)
class Series:
    """One line: a value (and optional low/high) per x category; None: no point there."""

    name: str
    values: Sequence[float | None]
    low: Sequence[float | None] | None = None
    high: Sequence[float | None] | None = None
    dashed: bool = False
    colour: str | None = None  # None: the palette's next


def lines(
    x: Sequence[str], series: Sequence[Series], *, title: str, y_label: str, x_label: str
) -> Html:
    """A line chart of ``series`` over the categories ``x``, y from 0, with a legend."""
    left, right, top, bottom = 64, 16, 28, 44
    legend_rows = (len(series) + 1) // 2
    plot_h = 260
    height = top + plot_h + bottom + legend_rows * 18 + 8
    span_x = _WIDTH - left - right
    peak = max(
        (v for s in series for v in (*(s.high or ()), *s.values) if v is not None), default=1
    )
    scale = _nice(peak)

    def px(i: int) -> float:
        return left + (span_x * (i + 0.5) / max(len(x), 1))

    def py(v: float) -> float:
        return top + plot_h - plot_h * v / scale

    parts = [fmt('<text x="{}" y="16" font-weight="600">{}</text>', left, title)]
    for k in range(6):  # grid lines and y ticks
        v = scale * k / 5
        y = py(v)
        parts.append(
            fmt(
                '<line class="grid" x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}"></line>'
                '<text x="{}" y="{:.1f}" text-anchor="end">{}</text>',
                left,
                _WIDTH - right,
                y,
                y,
                left - 6,
                y + 4,
                _short(v),
            )
        )
    parts.append(
        fmt(
            '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"></line>',
            left,
            _WIDTH - right,
            top + plot_h,
            top + plot_h,
        )
    )
    for i, name in enumerate(x):
        parts.append(
            fmt(
                '<text x="{:.1f}" y="{}" text-anchor="middle">{}</text>',
                px(i),
                top + plot_h + 16,
                name,
            )
        )
    parts.append(
        fmt(
            '<text x="{:.1f}" y="{}" text-anchor="middle" class="muted">{}</text>',
            left + span_x / 2,
            top + plot_h + 34,
            x_label,
        )
    )
    parts.append(
        fmt(
            '<text transform="translate(14 {:.1f}) rotate(-90)" text-anchor="middle">{}</text>',
            top + plot_h / 2,
            y_label,
        )
    )
    for n, s in enumerate(series):
        colour = s.colour or PALETTE[n % len(PALETTE)]
        points = [(px(i), py(v)) for i, v in enumerate(s.values) if v is not None]
        dash = Html(' stroke-dasharray="6 4"' if s.dashed else "")
        if len(points) > 1:
            parts.append(
                fmt(
                    '<polyline fill="none" stroke="{}" stroke-width="2"{} points="{}"></polyline>',
                    colour,
                    dash,
                    " ".join(f"{a:.1f},{b:.1f}" for a, b in points),
                )
            )
        for i, v in enumerate(s.values):
            if v is None:
                continue
            lo = s.low[i] if s.low is not None else None
            hi = s.high[i] if s.high is not None else None
            if lo is not None and hi is not None:
                parts.append(
                    fmt(
                        '<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" stroke="{3}"></line>',
                        px(i),
                        py(lo),
                        py(hi),
                        colour,
                    )
                )
            parts.append(
                fmt(
                    '<circle cx="{:.1f}" cy="{:.1f}" r="3.5" fill="{}"><title>{}: {}</title>'
                    "</circle>",
                    px(i),
                    py(v),
                    colour,
                    s.name,
                    f"{v:,.1f}",
                )
            )
    for n, s in enumerate(series):  # the legend, two columns
        colour = s.colour or PALETTE[n % len(PALETTE)]
        lx = left + (n % 2) * (span_x / 2)
        ly = top + plot_h + bottom + (n // 2) * 18 + 4
        dash = Html(' stroke-dasharray="6 4"' if s.dashed else "")
        parts.append(
            fmt(
                '<line x1="{:.1f}" x2="{:.1f}" y1="{}" y2="{}" stroke="{}" stroke-width="2"{}>'
                '</line><text x="{:.1f}" y="{}">{}</text>',
                lx,
                lx + 22,
                ly,
                ly,
                colour,
                dash,
                lx + 28,
                ly + 4,
                _cut(s.name, 48),
            )
        )
    return fmt(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        _WIDTH,
        height,
        title,
        join(parts),
    )


def _nice(peak: float) -> float:
    """A round number at or above ``peak`` for the top of an axis."""
    if peak <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(peak))) / 10 if peak >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= peak:
            return step * magnitude
    return 10 * magnitude


def _short(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"
