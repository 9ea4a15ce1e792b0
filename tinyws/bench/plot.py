"""``--plot FILE.svg``: a latency-by-percentile plot, as HdrHistogram's plotter draws it.

The horizontal axis is ``1/(1-p)`` on a log scale, so 90 %, 99 %, 99.9 % …
are evenly spaced and the tail gets as much room as the median; the
vertical axis is the latency, linear, in milliseconds. One line per series
(``latency``; ``service`` too under ``--rate``; one per URL under
``--compare``), each a ``<polyline class="series" data-series="NAME">``.
Plain SVG written by hand: no plotting library.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape, quoteattr

from tinyws.bench.hdr import percentile_rows
from tinyws.bench.histogram import Histogram

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50
# Tops of the latency axis, per power of ten: the curve fills most of the height.
STEPS = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _points(hist: Histogram) -> list[tuple[float, float]]:
    """Return ``(log10(1/(1-p)), milliseconds)`` for every step below 100 %."""
    return [
        (math.log10(1 / (1 - level / 100)), value / 1e6)
        for value, level, _ in percentile_rows(hist)
        if level < 100.0
    ]


def _nice_top(value: float) -> float:
    """Return a round number at or above ``value`` for the top of the latency axis."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in STEPS if step * power >= value)


def _percent(decade: int) -> str:
    return "0%" if decade == 0 else f"{100 - 100 / 10**decade:.{max(0, decade - 2)}f}%"


def to_svg(series: list[tuple[str, Histogram]], title: str) -> str:
    """Return the SVG document plotting each named histogram (nanoseconds)."""
    curves = [(name, _points(hist)) for name, hist in series]
    decades = max([math.ceil(x) for _, pts in curves for x, _ in pts] + [1])
    top = _nice_top(max([y for _, pts in curves for _, y in pts] + [0.0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(x: float, y: float) -> str:
        return f"{LEFT + x / decades * plot_w:.1f},{TOP + plot_h - y / top * plot_h:.1f}"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    out += _axes(decades, top, plot_w, plot_h)
    for i, (name, pts) in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(at(x, y) for x, y in pts)
        out.append(
            f'<polyline class="series" data-series={quoteattr(name)} fill="none" '
            f'stroke="{colour}" stroke-width="2" points="{coords}"><title>{escape(name)}</title>'
            "</polyline>"
        )
        y = TOP + 16 * (i + 1)
        out.append(
            f'<line x1="{LEFT + 12}" y1="{y - 4}" x2="{LEFT + 36}" y2="{y - 4}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{LEFT + 42}" y="{y}">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _axes(decades: int, top: float, plot_w: int, plot_h: int) -> list[str]:
    bottom = TOP + plot_h
    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#888"/>',
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">'
        "percentile (log scale of 1/(1-p))</text>",
        f'<text transform="translate(16,{TOP + plot_h / 2}) rotate(-90)" '
        'text-anchor="middle">latency (ms)</text>',
    ]
    for decade in range(decades + 1):
        x = LEFT + decade / decades * plot_w
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{_percent(decade)}</text>'
        )
    for tick in range(5):
        value = top * tick / 4
        y = bottom - tick / 4 * plot_h
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>'
        )
    return parts
