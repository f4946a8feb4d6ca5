"""The job history's buffer: finished runs and per-minute totals of one worker process, written in bulk.

Jobs append to it from their own threads (a lock held for a few microseconds); one thread of
the process writes it every second (``JobHistory``). The minute rows belong to their process
(``worker`` is host:pid), so each write overwrites them with running totals, and no two
processes ever write the same row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from bisect import bisect_left
from collections import deque
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from workers.redaction import redact

logger = logging.getLogger(__name__)

#: Upper bounds, in milliseconds, of the duration histogram's buckets of ``JobMinute.durations``;
#: one more bucket after the last holds every longer run.
DURATION_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000)
#: The longest error text kept with a run.
ERROR_CHARS = 2000
#: Minute totals older than this many seconds are forgotten once written: no run lands in them any more.
MINUTE_KEPT_S = 180
#: A minute older than this is not written any more (its totals are dropped, with a warning): housekeeping
#: merges closed minutes across processes (``workers.metrics_compaction``), and a process rewriting its own
#: row of a merged minute would count its runs twice. Only a database away for this long loses any.
MINUTE_WRITE_HORIZON = timedelta(minutes=50)

#: How long per-minute metrics are kept.
METRICS_KEPT = timedelta(hours=72)

#: The columns of ``JobRun`` the buffer writes, in the order of its rows.
RUN_COLUMNS = (
    "message_id",
    "actor_name",
    "queue_name",
    "outcome",
    "attempt",
    "duration_ms",
    "error",
    "args_hash",
    "worker",
    "started_at",
    "finished_at",
)
COUNTED = {"succeeded": 0, "failed": 1, "retrying": 2, "cancelled": 3}


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


def args_hash(args, kwargs) -> str:
    """SHA-256 of the canonical JSON of a job's arguments: the same arguments always hash the same."""
    canonical = json.dumps([list(args), kwargs], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def duration_bucket(duration_ms: float) -> int:
    """The index in ``JobMinute.durations`` of the bucket a run of this duration falls in."""
    return bisect_left(DURATION_BUCKETS_MS, duration_ms)


def percentile_ms(histogram: list[int], fraction: float) -> float | None:
    """An estimate of the ``fraction`` quantile of a duration histogram (linear within its bucket); None if empty."""
    total = sum(histogram)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = DURATION_BUCKETS_MS[index - 1] if index else 0
            high = DURATION_BUCKETS_MS[index] if index < len(DURATION_BUCKETS_MS) else low * 2
            return low + (high - low) * (rank - seen) / count
        seen += count
    return float(DURATION_BUCKETS_MS[-1])


class HistoryBuffer:
    """Runs waiting to be written, and the minute totals of this process, capped at ``capacity`` runs."""

    def __init__(self, *, worker: str, capacity: int = 50_000) -> None:
        self.worker = worker
        self.capacity = capacity
        self.lock = threading.Lock()
        self.runs: deque[tuple] = deque()
        # (minute epoch, actor, queue) -> [succeeded, failed, retried, cancelled, histogram]
        self.minutes: dict[tuple[int, str, str], list] = {}
        self.dirty: set[tuple[int, str, str]] = set()
        self.dropped = 0
        self.dropped_reported = 0

    def add(self, message, outcome: str, attempt: int, started: float, finished: float, error: str) -> None:
        """Note one finished run (times in seconds since the epoch); cheap enough for every job."""
        duration_ms = (finished - started) * 1000
        run = (
            message.message_id,
            message.actor_name,
            message.queue_name,
            outcome,
            attempt,
            duration_ms,
            error,
            message.args,
            message.kwargs,
            started,
            finished,
        )
        key = (int(finished // 60) * 60, message.actor_name, message.queue_name)
        with self.lock:
            if len(self.runs) >= self.capacity:
                self.runs.popleft()
                self.dropped += 1
            self.runs.append(run)
            if outcome in COUNTED:
                totals = self.minutes.get(key)
                if totals is None:
                    totals = self.minutes[key] = [0, 0, 0, 0, [0] * (len(DURATION_BUCKETS_MS) + 1)]
                totals[COUNTED[outcome]] += 1
                totals[4][duration_bucket(duration_ms)] += 1
                self.dirty.add(key)

    def flush(self) -> int:
        """Write the waiting runs and the changed minutes in one transaction; returns how many runs.

        If the write fails, the runs go back to the front of the buffer (within the cap) and the
        minutes stay marked, and the error is raised for the caller to log.
        """
        with self.lock:
            runs, self.runs = self.runs, deque()
            dirty, self.dirty = self.dirty, set()
            minutes = {key: [*self.minutes[key][:4], list(self.minutes[key][4])] for key in dirty}
            dropped, self.dropped_reported = self.dropped - self.dropped_reported, self.dropped
        closed = timezone.now().timestamp() - MINUTE_WRITE_HORIZON.total_seconds()
        late = [key for key in minutes if key[0] < closed]
        if late:
            logger.warning("job history: %d minute total(s) too old to write (metrics merged them already)", len(late))
            for key in late:
                del minutes[key]
        if dropped:
            logger.warning("job history buffer full: dropped the %d oldest run(s), %d in all", dropped, self.dropped)
        if not runs and not minutes:
            return 0
        # The models are imported late: the middleware package, and so this module, loads with the settings.
        from workers.models import JobMinute

        try:
            with transaction.atomic():
                self._insert_runs(runs)
                JobMinute.objects.bulk_create(
                    [self._job_minute(key, totals) for key, totals in minutes.items()],
                    batch_size=500,
                    update_conflicts=True,
                    unique_fields=["minute", "actor_name", "queue_name", "worker"],
                    update_fields=["succeeded", "failed", "retried", "cancelled", "durations"],
                )
        except Exception:
            self._put_back(runs, dirty)
            connection.close()  # a broken connection is opened afresh on the next try
            raise
        self._forget_old_minutes(max(key[0] for key in self.minutes) if self.minutes else 0)
        return len(runs)

    def _put_back(self, runs: deque, dirty: set) -> None:
        with self.lock:
            room = self.capacity - len(self.runs)
            if len(runs) > room:
                lost = len(runs) - max(room, 0)
                for _ in range(lost):
                    runs.popleft()
                self.dropped += lost
            self.runs.extendleft(reversed(runs))
            self.dirty |= dirty

    def _forget_old_minutes(self, newest: int) -> None:
        with self.lock:
            for key in [key for key in self.minutes if key[0] < newest - MINUTE_KEPT_S and key not in self.dirty]:
                del self.minutes[key]

    def _insert_runs(self, runs: deque) -> None:
        """Write the runs without a model instance per row: by COPY on PostgreSQL, else one INSERT run per row.

        The writing thread shares the process with the jobs, so each microsecond it spends on a
        row is one the jobs wait for.
        """
        from workers.models import JobRun

        rows = [self._run_row(run) for run in runs]
        table = connection.ops.quote_name(JobRun._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(column) for column in RUN_COLUMNS)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                return
            sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(RUN_COLUMNS))})"
            for start in range(0, len(rows), 1000):
                cursor.executemany(sql, rows[start : start + 1000])

    def _run_row(self, run: tuple) -> tuple:
        message_id, actor, queue, outcome, attempt, duration_ms, error, args, kwargs, started, finished = run
        adapt = connection.ops.adapt_datetimefield_value
        return (
            message_id,
            actor,
            queue,
            outcome,
            attempt,
            round(duration_ms, 3),
            redact(error[: ERROR_CHARS * 2])[:ERROR_CHARS] if error else "",
            args_hash(args, kwargs),
            self.worker,
            adapt(datetime.fromtimestamp(started, UTC)),
            adapt(datetime.fromtimestamp(finished, UTC)),
        )

    def _job_minute(self, key: tuple[int, str, str], totals: list):
        from workers.models import JobMinute

        minute, actor, queue = key
        succeeded, failed, retried, cancelled, histogram = totals
        return JobMinute(
            minute=datetime.fromtimestamp(minute, UTC),
            actor_name=actor,
            queue_name=queue,
            worker=self.worker,
            succeeded=succeeded,
            failed=failed,
            retried=retried,
            cancelled=cancelled,
            durations=histogram,
        )
