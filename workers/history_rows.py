"""The job history's rows written in bulk: finished runs (``JobRun``) and one process's minute totals (``JobMinute``).

The writing thread shares its process with the jobs, so each microsecond it spends on a row is
one the jobs wait for: runs are written without a model instance per row. The models are
imported late: the middleware package, and so this module, loads with the settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import connection

from workers.redaction import redact

#: The longest error text kept with a run.
ERROR_CHARS = 2000

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


def args_hash(args, kwargs) -> str:
    """SHA-256 of the canonical JSON of a job's arguments: the same arguments always hash the same."""
    canonical = json.dumps([list(args), kwargs], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def runs_insert(runs: Iterable[tuple], *, worker: str) -> None:
    """Write the buffer's runs: by COPY on PostgreSQL, else one INSERT run per row."""
    from workers.models import JobRun

    rows = [_run_row(run, worker) for run in runs]
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


def minutes_upsert(minutes: dict[tuple[int, str, str], list], *, worker: str) -> None:
    """Write the process's minute totals, each overwriting the running totals its row held."""
    from workers.models import JobMinute

    JobMinute.objects.bulk_create(
        [_job_minute(key, totals, worker) for key, totals in minutes.items()],
        batch_size=500,
        update_conflicts=True,
        unique_fields=["minute", "actor_name", "queue_name", "worker"],
        update_fields=["succeeded", "failed", "retried", "cancelled", "durations"],
    )


def _run_row(run: tuple, worker: str) -> tuple:
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
        worker,
        adapt(datetime.fromtimestamp(started, UTC)),
        adapt(datetime.fromtimestamp(finished, UTC)),
    )


def _job_minute(key: tuple[int, str, str], totals: list, worker: str):
    from workers.models import JobMinute

    minute, actor, queue = key
    succeeded, failed, retried, cancelled, histogram = totals
    return JobMinute(
        minute=datetime.fromtimestamp(minute, UTC),
        actor_name=actor,
        queue_name=queue,
        worker=worker,
        succeeded=succeeded,
        failed=failed,
        retried=retried,
        cancelled=cancelled,
        durations=histogram,
    )
