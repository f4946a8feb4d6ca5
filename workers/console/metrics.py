"""The metrics page: throughput, failures and p50/p95 duration per actor and queue over the last 1, 24 or 72 hours."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import IntegerField, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from workers.console.charts import Series, line_chart
from workers.console.history import actor_names
from workers.console.pages import console_page, render
from workers.durations import DURATION_BUCKETS_MS, percentile_ms
from workers.models import JobMinute
from workers.queues import names as queue_names

#: The long windows' figures are kept this many seconds per minute of a chart point (a minute
#: row is read and summed once, not on every refresh of the page); the last hour is always read afresh.
CACHE_SECONDS_PER_STEP_MINUTE = 4
#: The counts of a minute row, in the order of :class:`Totals`.
COUNTS = ("succeeded", "failed", "retried", "cancelled")
#: Window name -> (length, minutes per chart point): about a hundred to three hundred points a chart.
WINDOWS = {"1h": (timedelta(hours=1), 1), "24h": (timedelta(hours=24), 5), "72h": (timedelta(hours=72), 15)}


@dataclass
class Totals:
    """Runs summed over worker processes (and minutes): counts and the merged duration histogram."""

    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    durations: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS_MS) + 1))

    def add(self, sums: list) -> None:
        """Add a row of summed counts (in the order of COUNTS) and histogram buckets; None counts as 0."""
        self.succeeded += sums[0] or 0
        self.failed += sums[1] or 0
        self.retried += sums[2] or 0
        self.cancelled += sums[3] or 0
        self.durations = [mine + (theirs or 0) for mine, theirs in zip(self.durations, sums[4:], strict=True)]

    @property
    def runs(self) -> int:
        return self.succeeded + self.failed + self.retried + self.cancelled

    @property
    def failures(self) -> int:
        """Runs that raised: failed for good, or failed and retried."""
        return self.failed + self.retried

    @property
    def p50(self) -> float | None:
        return percentile_ms(self.durations, 0.5)

    @property
    def p95(self) -> float | None:
        return percentile_ms(self.durations, 0.95)


def metrics_series(
    *, since: datetime, step_minutes: int, actor: str = "", queue: str = ""
) -> tuple[dict[datetime, Totals], dict[str, Totals], dict[str, Totals]]:
    """Totals per chart point (``step_minutes`` wide) since ``since``, and over the window per actor and per queue.

    The database sums the counts and each histogram bucket (two grouped queries: per minute, per
    actor and queue), so the page reads a row per minute or per actor and queue, not one per
    minute, actor, queue and worker process.
    """
    rows = JobMinute.objects.filter(minute__gte=since)
    if actor:
        rows = rows.filter(actor_name=actor)
    if queue:
        rows = rows.filter(queue_name=queue)
    step = step_minutes * 60
    points: dict[datetime, Totals] = {}
    for minute, *sums in _summed(rows, "minute"):
        slot = datetime.fromtimestamp(int(minute.timestamp()) // step * step, minute.tzinfo)
        totals = points.get(slot)
        if totals is None:
            totals = points[slot] = Totals()
        totals.add(sums)
    by_actor: dict[str, Totals] = {}
    by_queue: dict[str, Totals] = {}
    for actor_name, queue_name, *sums in _summed(rows, "actor_name", "queue_name"):
        by_actor.setdefault(actor_name, Totals()).add(sums)
        by_queue.setdefault(queue_name, Totals()).add(sums)
    return points, by_actor, by_queue


def _summed(rows, *by: str) -> list[tuple]:
    """Rows of ``by`` then the summed counts (in the order of COUNTS) and histogram buckets."""
    sums = {name: Sum(name) for name in COUNTS}
    for index in range(len(DURATION_BUCKETS_MS) + 1):
        sums[f"bucket_{index}"] = Sum(Cast(KT(f"durations__{index}"), IntegerField()))
    return list(rows.order_by().values(*by).annotate(**sums).values_list(*by, *sums))


def metrics_charts(points: dict[datetime, Totals], *, since: datetime, now: datetime, step_minutes: int) -> list:
    """Three charts: runs, failures (per minute, averaged over each point), and p50/p95 duration in ms."""
    step = step_minutes * 60
    start = int(since.timestamp()) // step * step
    # In the shop's time zone, for the axis labels; the points' keys are the same instants in UTC.
    local = timezone.get_current_timezone()
    slots = [datetime.fromtimestamp(t, local) for t in range(start, int(now.timestamp()) + 1, step)]
    empty = Totals()

    def per_minute(value: int) -> float:
        return value / step_minutes

    x_range = (slots[0], slots[-1])
    runs = [(slot, per_minute(points.get(slot, empty).runs)) for slot in slots]
    failed = [(slot, per_minute(points.get(slot, empty).failures)) for slot in slots]
    p50 = [(slot, points[slot].p50 if slot in points else None) for slot in slots]
    p95 = [(slot, points[slot].p95 if slot in points else None) for slot in slots]
    return [
        line_chart("Throughput", [Series("runs per minute", runs)], unit="runs/min", x_range=x_range),
        line_chart("Failures", [Series("failed runs per minute", failed)], unit="failures/min", x_range=x_range),
        line_chart("Duration", [Series("p50", p50), Series("p95", p95)], unit="ms", x_range=x_range),
    ]


@console_page("metrics", "Metrics", permission="workers.view_console_metrics")
def metrics(request):
    window = request.GET.get("window", "1h")
    if window not in WINDOWS:
        window = "1h"
    length, step_minutes = WINDOWS[window]
    actor = request.GET.get("actor", "").strip()
    queue = request.GET.get("queue", "").strip()
    now = timezone.now()
    since = now - length
    key = f"workers:console:metrics:{window}:{actor}:{queue}"
    cached = cache.get(key) if step_minutes > 1 else None
    if cached is None:
        cached = metrics_series(since=since, step_minutes=step_minutes, actor=actor, queue=queue)
        if step_minutes > 1:
            cache.set(key, cached, timeout=step_minutes * CACHE_SECONDS_PER_STEP_MINUTE)
    points, by_actor, by_queue = cached
    context = {
        "window": window,
        "windows": list(WINDOWS),
        "step_minutes": step_minutes,
        "cached_seconds": step_minutes * CACHE_SECONDS_PER_STEP_MINUTE if step_minutes > 1 else 0,
        "actor": actor,
        "queue": queue,
        "actors": actor_names(),
        "queues": queue_names(),
        "charts": metrics_charts(points, since=since, now=now, step_minutes=step_minutes),
        "tables": [("Per actor", "Actor", sorted(by_actor.items())), ("Per queue", "Queue", sorted(by_queue.items()))],
    }
    return render(request, "admin/workers/console/metrics.html", context, title="Jobs: metrics")
