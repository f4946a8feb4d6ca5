"""Bar charts of orders and revenue per day, drawn on the server as inline SVG: no script, no CDN."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

#: The drawing area of one chart, in SVG user units.
WIDTH, HEIGHT = 600, 80


@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    title: str
    current: bool


@dataclass(frozen=True)
class Chart:
    title: str
    peak: str
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT


def daily_charts(series: list[tuple[date, int, Decimal]], *, last: date, days: int) -> list[Chart]:
    """One chart of orders and one of revenue for the ``days`` days up to ``last``.

    Each day has its slot; a day without a report has no bar, and ``last`` is highlighted.
    Bars scale to the highest value of their chart.
    """
    first = last - timedelta(days=days - 1)
    orders = {day: Decimal(count) for day, count, _ in series}
    revenue = {day: amount for day, _, amount in series}
    return [
        _chart("Orders per day", orders, first=first, days=days, last=last, unit="orders"),
        _chart("Revenue per day", revenue, first=first, days=days, last=last, unit="revenue"),
    ]


def _chart(title: str, values: dict[date, Decimal], *, first: date, days: int, last: date, unit: str) -> Chart:
    slot = WIDTH / days
    peak = max(values.values(), default=Decimal(0))
    bars = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        if day not in values:
            continue
        height = float(values[day] / peak) * HEIGHT if peak else 0.0
        bars.append(
            Bar(
                x=f"{offset * slot + 1:.1f}",
                y=f"{HEIGHT - height:.1f}",
                width=f"{max(slot - 2, 1):.1f}",
                height=f"{height:.1f}",
                title=f"{day.isoformat()}: {values[day]} {unit}",
                current=day == last,
            )
        )
    return Chart(title=f"{title}, {first.isoformat()} to {last.isoformat()}", peak=f"{peak} {unit}", bars=bars)
