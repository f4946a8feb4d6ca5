"""The job body every benchmark no-op runs: count itself in Redis, stamping the first start and last end."""

from __future__ import annotations

import os
import time

import redis

DONE = "bench:done"
FIRST_STARTED = "bench:first_started"
LAST_FINISHED = "bench:last_finished"
#: The recovery scenario's keys: the message ids that ran, and the times of crashes.
RAN = "bench:ran"
CRASHES = "bench:crashes"

#: How many jobs the run has; the job that brings the count there stamps the end.
TOTAL = int(os.environ.get("BENCH_EXPECTED_JOBS", "0"))

_client: redis.Redis | None = None


def client() -> redis.Redis:
    """One client (a thread-safe connection pool) per process, made on first use, after any fork."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return _client


def count_job() -> None:
    """Count this job; the first one stamps when it started and the last when it finished."""
    started = time.time()
    done = client().incr(DONE)
    if done == 1:
        client().set(FIRST_STARTED, repr(started))
    if done == TOTAL:
        client().set(LAST_FINISHED, repr(time.time()))
