"""Compaction of the per-minute metrics: closed minutes merged across worker processes, and into 5-minute rows.

Each worker process writes its own row per minute, actor and queue (``JobMinute``), so a busy
cluster of a few processes leaves tens of thousands of rows for the 72 hours the metrics page
shows, and the page sums them all on a fresh read. Housekeeping merges the minutes no process
will write again (older than ``COMPACT_AFTER``; a process stops writing a minute after
``workers.history.MINUTE_WRITE_HORIZON``) into one row per minute, actor and queue, and those
older than ``COARSE_AFTER`` into one row per 5 minutes, which the 24 and 72 hour charts (points
of 5 and 15 minutes) show alike. The sums are the same before and after; only the rows are fewer.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from workers.durations import DURATION_BUCKETS_MS
from workers.history import MINUTE_WRITE_HORIZON

logger = logging.getLogger(__name__)

#: Minutes older than this are merged across worker processes: none of them writes such a minute any more.
COMPACT_AFTER = timedelta(hours=1)
#: Minutes older than this are merged into 5-minute rows.
COARSE_AFTER = timedelta(hours=24)
COARSE_MINUTES = 5
#: The ``worker`` of a merged row: all processes, one minute; all processes, ``COARSE_MINUTES`` minutes.
ALL_WORKERS = "(all)"
ALL_WORKERS_COARSE = f"(all, {COARSE_MINUTES} min)"
#: Rows merged per transaction: a first compaction of 72 hours goes in several short ones.
SPAN = timedelta(hours=2)

assert MINUTE_WRITE_HORIZON < COMPACT_AFTER, "a process must stop writing a minute before it is compacted"


def metrics_compact(*, now: datetime | None = None, max_spans: int = 50) -> int:
    """Merge the closed minutes' rows (at most ``max_spans`` spans of ``SPAN`` a call); returns how many rows went."""
    now = now or timezone.now()
    removed = 0
    for before, label, width in (
        (now - COARSE_AFTER, ALL_WORKERS_COARSE, COARSE_MINUTES),
        (now - COMPACT_AFTER, ALL_WORKERS, 1),
    ):
        for _ in range(max_spans):
            merged = _compact_span(before, label, width)
            if merged is None:
                break
            removed += merged
    if removed:
        logger.info("metrics: merged closed minutes, %d row(s) fewer", removed)
    return removed


def _compact_span(before: datetime, label: str, width: int) -> int | None:
    """Merge the oldest ``SPAN`` of rows older than ``before`` not merged yet; None when there are none."""
    from workers.models import JobMinute

    pending = JobMinute.objects.filter(minute__lt=before).exclude(worker__in=_merged_as(label))
    with transaction.atomic():
        oldest = pending.order_by("minute").values_list("minute", flat=True).first()
        if oldest is None:
            return None
        start = _floor(oldest, width)
        end = min(before, start + SPAN)
        # The merged rows of the span come in too, so a late row is added to its bucket, not beside it.
        rows = list(
            JobMinute.objects.select_for_update()
            .filter(minute__gte=start, minute__lt=end)
            .exclude(worker__in=_merged_as(label, coarser_only=True))
        )
        buckets: dict[tuple, list] = {}
        for row in rows:
            key = (_floor(row.minute, width), row.actor_name, row.queue_name)
            totals = buckets.setdefault(key, [0, 0, 0, 0, [0] * (len(DURATION_BUCKETS_MS) + 1)])
            totals[0] += row.succeeded
            totals[1] += row.failed
            totals[2] += row.retried
            totals[3] += row.cancelled
            for index, count in enumerate(row.durations[: len(totals[4])]):
                totals[4][index] += count or 0
        JobMinute.objects.filter(pk__in=[row.pk for row in rows]).delete()
        JobMinute.objects.bulk_create(
            JobMinute(
                minute=minute,
                actor_name=actor,
                queue_name=queue,
                worker=label,
                succeeded=totals[0],
                failed=totals[1],
                retried=totals[2],
                cancelled=totals[3],
                durations=totals[4],
            )
            for (minute, actor, queue), totals in buckets.items()
        )
    return len(rows) - len(buckets)


def _merged_as(label: str, *, coarser_only: bool = False) -> list[str]:
    """The rows a pass leaves alone: those it wrote, and coarser ones (the 1-minute pass keeps the 5-minute rows)."""
    if label == ALL_WORKERS_COARSE:
        return [] if coarser_only else [ALL_WORKERS_COARSE]
    return [ALL_WORKERS_COARSE] if coarser_only else [ALL_WORKERS, ALL_WORKERS_COARSE]


def _floor(moment: datetime, width: int) -> datetime:
    """The start of the ``width``-minute bucket of ``moment``."""
    seconds = width * 60
    return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, moment.tzinfo)
