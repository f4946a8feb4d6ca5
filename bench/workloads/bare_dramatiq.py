"""Bare Dramatiq: a RedisBroker with Dramatiq's default middleware and one no-op actor."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.workloads.counter import count_job

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="default")
def noop() -> None:
    count_job()


def enqueue(jobs: int) -> None:
    """Send ``jobs`` messages, one broker call each, as application code would."""
    for _ in range(jobs):
        noop.send()
