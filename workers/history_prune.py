"""The job history's retention: runs kept ``settings.JOB_HISTORY_DAYS``, per-minute metrics 72 hours."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

#: How long per-minute metrics are kept.
METRICS_KEPT = timedelta(hours=72)


def history_prune(*, chunk_size: int = 5000, max_chunks: int = 20) -> dict[str, int]:
    """Delete runs older than ``settings.JOB_HISTORY_DAYS`` and minutes older than 72 hours; returns how many.

    Rows go in chunks, each its own short transaction, and at most ``max_chunks`` of each per
    call, so that a round of housekeeping stays short; the next round takes the rest.
    """
    from workers.models import JobMinute, JobRun

    now = timezone.now()
    runs = JobRun.objects.filter(finished_at__lt=now - timedelta(days=settings.JOB_HISTORY_DAYS))
    minutes = JobMinute.objects.filter(minute__lt=now - METRICS_KEPT)
    return {
        "runs": _delete_chunks(runs, chunk_size, max_chunks),
        "minutes": _delete_chunks(minutes, chunk_size, max_chunks),
    }


def _delete_chunks(queryset, chunk_size: int, max_chunks: int) -> int:
    deleted = 0
    for _ in range(max_chunks):
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:chunk_size])
            if ids:
                queryset.model.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        if len(ids) < chunk_size:
            break
    return deleted
