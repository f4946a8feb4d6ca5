"""Closed minutes merged across worker processes (and into 5-minute rows past a day): fewer rows, the same figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum

from workers.console.metrics import metrics_series
from workers.history import HistoryBuffer
from workers.metrics_compaction import ALL_WORKERS, ALL_WORKERS_COARSE, metrics_compact
from workers.models import JobMinute

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def minute_rows(*, hours_ago: float, minutes: int, workers: tuple[str, ...] = ("host:1", "host:2")) -> None:
    """Rows as worker processes write them: each process its own row per minute, 3 runs in it."""
    start = NOW - timedelta(hours=hours_ago)
    JobMinute.objects.bulk_create(
        JobMinute(
            minute=start + timedelta(minutes=offset),
            actor_name="process_order",
            queue_name="default",
            worker=worker,
            succeeded=2,
            failed=1,
            durations=[1, 2] + [0] * 13,
        )
        for offset in range(minutes)
        for worker in workers
    )


def figures() -> dict:
    series, by_actor, _ = metrics_series(since=NOW - timedelta(hours=72), step_minutes=15)
    totals = by_actor["process_order"]
    return {
        "points": {slot: (point.succeeded, point.failed, point.durations) for slot, point in series.items()},
        "window": (totals.succeeded, totals.failed, totals.durations),
    }


def test_closed_minutes_are_merged_across_processes_and_into_five_minute_rows_past_a_day():
    # Given 10 minutes two days ago, 10 minutes two hours ago and the last 10 minutes, each in two processes
    minute_rows(hours_ago=48, minutes=10)
    minute_rows(hours_ago=2, minutes=10)
    minute_rows(hours_ago=10 / 60, minutes=10)
    before = figures()

    # When housekeeping compacts them
    removed = metrics_compact(now=NOW)

    # Then two days ago is two 5-minute rows, two hours ago one row a minute, the last minutes untouched
    old = NOW - timedelta(hours=48)
    assert list(JobMinute.objects.filter(minute__lt=old + timedelta(hours=1)).values_list("worker", "succeeded")) == [
        (ALL_WORKERS_COARSE, 20),
        (ALL_WORKERS_COARSE, 20),
    ]
    recent = JobMinute.objects.filter(minute__gte=NOW - timedelta(hours=3), minute__lt=NOW - timedelta(hours=1))
    assert set(recent.values_list("worker", flat=True)) == {ALL_WORKERS} and recent.count() == 10
    assert JobMinute.objects.filter(worker__startswith="host:").count() == 20
    assert removed == 60 - 2 - 10 - 20
    # And the page's figures are the same
    assert figures() == before


def test_a_second_compaction_adds_late_rows_to_their_merged_minute():
    # Given a merged minute, and a row of a third process for that minute written afterwards
    minute_rows(hours_ago=2, minutes=1)
    metrics_compact(now=NOW)
    minute_rows(hours_ago=2, minutes=1, workers=("host:3",))

    # When housekeeping compacts again
    metrics_compact(now=NOW)

    # Then the minute is one row holding the three processes' runs
    assert list(JobMinute.objects.values_list("worker", "succeeded", "failed")) == [(ALL_WORKERS, 6, 3)]
    assert JobMinute.objects.aggregate(runs=Sum("succeeded"))["runs"] == 6


def test_a_process_does_not_write_a_minute_past_its_horizon(caplog, time_machine):
    # Given runs recorded an hour ago, written only now (the database was away)
    buffer = HistoryBuffer(worker="host:1")
    key = (int((NOW - timedelta(hours=1)).timestamp()), "process_order", "default")
    buffer.minutes[key] = [1, 0, 0, 0, [1] + [0] * 14]
    buffer.dirty.add(key)
    time_machine.move_to(NOW)

    # When it flushes
    buffer.flush()

    # Then the minute is not written (it may be merged already) and the log says so
    assert not JobMinute.objects.exists()
    assert "1 minute total(s) too old to write" in caplog.text
