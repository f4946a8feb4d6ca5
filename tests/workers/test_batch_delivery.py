"""Batches through real workers: exact counts and one callback under concurrency, retries and a kill."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.support import tasks
from workers.batches import batch_add, batch_open, batch_seal
from workers.models import Batch
from workers.testing import wait_until

pytestmark = pytest.mark.delivery

RECOVERY = {"REDIS_HEARTBEAT_TIMEOUT_MS": "2000", "REDIS_MAINTENANCE_CHANCE": "1000000"}


def open_batch(redis_broker, failures: list[int]) -> Batch:
    with transaction.atomic():
        batch = batch_open(description="members", on_complete=tasks.batch_complete, on_success=tasks.batch_success)
        messages = [tasks.batch_member.message("member", number, fails) for number, fails in enumerate(failures)]
        batch_add(batch, messages, broker=redis_broker)
        batch_seal(batch)
    return batch


def finished(batch: Batch) -> Batch:
    wait_until(lambda: Batch.objects.get(pk=batch.pk).finished_at is not None, timeout=90, what="the batch to end")
    wait_until(lambda: tasks.recorded(f"batch-{batch.pk}:complete"), timeout=30, what="the complete callback")
    return Batch.objects.get(pk=batch.pk)


def test_concurrent_jobs_that_retry_and_fail_are_each_counted_once_and_call_back_once(
    start_worker, redis_broker, redis_url
):
    # 200 jobs on two processes of eight threads: every tenth retries once, every 50th fails for good
    failures = [3 if n % 50 == 0 else 1 if n % 10 == 0 else 0 for n in range(200)]
    start_worker(redis_url=redis_url, processes=2, threads=8)

    batch = finished(open_batch(redis_broker, failures))

    assert (batch.total, batch.pending, batch.succeeded, batch.failed) == (200, 0, 196, 4)
    assert batch.status == Batch.Status.COMPLETE
    assert len(tasks.recorded(f"batch-{batch.pk}:complete")) == 1
    assert tasks.recorded(f"batch-{batch.pk}:success") == []
    assert sum(len(tasks.recorded(f"member:{n}")) for n in range(200)) == 200 + 16 * 1 + 4 * 2


def test_a_batch_survives_a_killed_worker_and_still_calls_back_once(start_worker, redis_broker, redis_url):
    # Given a worker that has taken jobs of a batch and is killed mid-way
    first = start_worker(redis_url=redis_url, threads=8)
    batch = open_batch(redis_broker, [0] * 300)
    first.wait_for_log(r"job finished actor=batch_member", count=20)
    first.kill()

    # When another worker takes over (and recovers what the dead one held)
    start_worker(redis_url=redis_url, threads=8, env=RECOVERY)

    # Then every job is counted once, and both callbacks run once
    batch = finished(batch)
    assert (batch.total, batch.succeeded, batch.failed, batch.status) == (300, 300, 0, Batch.Status.SUCCEEDED)
    wait_until(lambda: tasks.recorded(f"batch-{batch.pk}:success"), timeout=30, what="the success callback")
    assert len(tasks.recorded(f"batch-{batch.pk}:complete")) == 1
    assert len(tasks.recorded(f"batch-{batch.pk}:success")) == 1
    assert all(tasks.recorded(f"member:{n}") for n in range(300))
