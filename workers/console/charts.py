"""Line and bar charts drawn on the server as inline SVG: axes, ticks, a unit, a legend, a tooltip per point.

Generic on purpose: a chart is a list of series of (x, y) points, x a number or a datetime.
Colours come from the ``.console-chart`` classes of ``workers/static/workers/console.css``,
which use the admin's colour variables, so charts follow its light and dark themes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

#: The whole drawing and its margins (room for tick labels, the unit and the legend), in SVG units.
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 28, 28


@dataclass(frozen=True)
class Series:
    """One line (or one set of bars) of a chart; ``points`` are (x, y) pairs, y None for a gap."""

    name: str
    points: list[tuple[float | datetime, float | None]]


def line_chart(title: str, series: list[Series], *, unit: str, x_range: tuple | None = None) -> SafeString:
    """An SVG line chart of ``series``; ``x_range`` (first, last) fixes the x axis, else the points span it."""
    return _chart(title, series, unit=unit, x_range=x_range, bars=False)


def bar_chart(title: str, series: list[Series], *, unit: str, x_range: tuple | None = None) -> SafeString:
    """An SVG bar chart: each x gets one bar per series, side by side."""
    return _chart(title, series, unit=unit, x_range=x_range, bars=True)


def nice_ticks(high: float, *, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``high``: steps of 1, 2 or 5 times a power of ten."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [step * i for i in range(math.ceil(high / step - 1e-9) + 1)]


def _number(x: float | datetime) -> float:
    return x.timestamp() if isinstance(x, datetime) else float(x)


def _label(x: float | datetime, span_s: float) -> str:
    if isinstance(x, datetime):
        # Past three days the hour is noise: a chart that long is read by the day.
        return x.strftime("%H:%M" if span_s <= 86_400 else "%d %b %H:%M" if span_s <= 3 * 86_400 else "%d %b")
    return f"{x:g}"


def _value(y: float) -> str:
    return f"{y:,.0f}" if abs(y) >= 100 or y == int(y) else f"{y:,.1f}"


def _chart(title: str, series: list[Series], *, unit: str, x_range: tuple | None, bars: bool) -> SafeString:
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if y is not None]
    first, last = x_range or ((min(xs, key=_number), max(xs, key=_number)) if xs else (0, 1))
    x0, x1 = _number(first), _number(last)
    span = max(x1 - x0, 1e-9)
    ticks = nice_ticks(max(ys, default=0))
    top = ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x) -> float:
        return round(LEFT + (_number(x) - x0) / span * plot_w, 1)

    def py(y: float) -> float:
        return round(TOP + plot_h - (y / top) * plot_h, 1)

    parts = [format_html('<text x="{}" y="14" class="chart-title">{}</text>', LEFT, title)]
    for tick in ticks:
        y = py(tick)
        parts.append(format_html('<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>', LEFT, WIDTH - RIGHT, y, y))
        parts.append(
            format_html('<text x="{}" y="{}" text-anchor="end">{}</text>', LEFT - 4, round(y + 4, 1), _value(tick))
        )
    parts.append(
        format_html(
            '<text x="12" y="{}" text-anchor="middle" transform="rotate(-90 12 {})" class="unit">{}</text>',
            TOP + plot_h / 2,
            TOP + plot_h / 2,
            unit,
        )
    )
    for i in range(5):
        x = x0 + span * i / 4
        label = _label(datetime.fromtimestamp(x, first.tzinfo) if isinstance(first, datetime) else x, span)
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(format_html('<text x="{}" y="{}" text-anchor="{}">{}</text>', px(x), HEIGHT - 8, anchor, label))
    parts.append(
        format_html(
            '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>', LEFT, WIDTH - RIGHT, TOP + plot_h, TOP + plot_h
        )
    )
    parts.append(format_html('<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>', LEFT, LEFT, TOP, TOP + plot_h))
    slot = plot_w / max(len({_number(x) for x in xs}), 1)
    for index, s in enumerate(series):
        css = f"series-{index % 3}"
        if bars:
            parts.extend(_bars(s, index, len(series), css, px, py, slot, span, unit))
        else:
            parts.extend(_line(s, css, px, py, span, unit))
        legend_x = WIDTH - RIGHT - 150 * (len(series) - index)
        parts.append(
            format_html(
                '<line class="{}" x1="{}" x2="{}" y1="10" y2="10"/><text x="{}" y="14">{}</text>',
                css,
                legend_x,
                legend_x + 16,
                legend_x + 20,
                s.name,
            )
        )
    body = mark_safe("".join(parts))  # noqa: S308 - every part was built by format_html
    return format_html(
        '<svg class="console-chart" viewBox="0 0 {} {}" role="img" aria-label="{}"><title>{}</title>{}</svg>',
        WIDTH,
        HEIGHT,
        title,
        title,
        body,
    )


def _tooltip(name: str, x, y: float, span: float, unit: str) -> str:
    return f"{name}, {_label(x, span)}: {_value(y)} {unit}"


def _line(s: Series, css: str, px, py, span: float, unit: str) -> list[SafeString]:
    parts, run = [], []
    for x, y in [*s.points, (None, None)]:
        if y is None:
            if len(run) > 1:
                parts.append(format_html('<polyline class="{}" points="{}"/>', css, " ".join(run)))
            run = []
            continue
        run.append(f"{px(x):.1f},{py(y):.1f}")
    for x, y in s.points:
        if y is not None:
            parts.append(
                format_html(
                    '<circle class="{} point" cx="{}" cy="{}" r="2"><title>{}</title></circle>',
                    css,
                    px(x),
                    py(y),
                    _tooltip(s.name, x, y, span, unit),
                )
            )
    return parts


def _bars(s: Series, index: int, count: int, css: str, px, py, slot: float, span: float, unit: str) -> list:
    width = max(slot * 0.8 / count, 1)
    parts = []
    for x, y in s.points:
        if y is None:
            continue
        left = px(x) - slot * 0.4 + index * width
        parts.append(
            format_html(
                '<rect class="{} bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
                css,
                round(left, 1),
                py(y),
                round(width, 1),
                round(py(0) - py(y), 1),
                _tooltip(s.name, x, y, span, unit),
            )
        )
    return parts
