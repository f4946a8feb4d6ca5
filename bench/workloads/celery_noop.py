"""Celery 5 on its Redis broker, results ignored, with one no-op task."""

from __future__ import annotations

import os

from celery import Celery

from bench.workloads.counter import count_job

app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True)


@app.task(name="bench.noop")
def noop() -> None:
    count_job()


def enqueue(jobs: int) -> None:
    """Send ``jobs`` messages, one broker call each, as application code would."""
    for _ in range(jobs):
        noop.apply_async()
