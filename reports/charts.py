"""Bar charts of orders and revenue per day for a report's page, drawn by the platform's SVG chart helper.

Inline SVG, no script and no CDN; its ``.console-chart`` classes follow the admin's light and
dark themes. Each day has its slot, a bar at its middle, so the x axis reads in days; a day
without a report has no bar.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.safestring import SafeString

from workers.console.charts import Series, bar_chart


def daily_charts(series: list[tuple[date, int, Decimal]], *, last: date, days: int) -> list[SafeString]:
    """One chart of orders and one of revenue for the ``days`` days up to ``last`` (the report's own day)."""
    first = last - timedelta(days=days - 1)
    zone = timezone.get_current_timezone()
    figures = {day: (orders, revenue) for day, orders, revenue in series}
    every_day = [first + timedelta(days=offset) for offset in range(days)]

    def points(index: int) -> list:
        return [
            (datetime.combine(day, time(12), zone), float(figures[day][index]) if day in figures else None)
            for day in every_day
        ]

    # From the first day's start to the last day's end: each tick label names the day it falls in.
    x_range = (datetime.combine(first, time(0), zone), datetime.combine(last, time(23, 59, 59), zone))
    span = f"{first:%d %b} to {last:%d %b %Y}"
    return [
        bar_chart(f"Orders per day, {span}", [Series("orders", points(0))], unit="orders", x_range=x_range),
        bar_chart(f"Revenue per day, {span}", [Series("revenue", points(1))], unit="revenue", x_range=x_range),
    ]
