"""The no-op actor on the project's own broker and middleware, found by rundramatiq's autodiscovery."""

from __future__ import annotations

import dramatiq

from bench.workloads.counter import count_job
from workers import queues
from workers.enqueue import enqueue_on_commit


@dramatiq.actor(queue_name=queues.DEFAULT)
def noop() -> None:
    count_job()


def enqueue(jobs: int) -> None:
    """Send ``jobs`` messages the way project code does (outside a transaction: at once)."""
    for _ in range(jobs):
        enqueue_on_commit(noop)
