"""Batches: exact counts under retries and redelivery, and callbacks that fire once."""

from __future__ import annotations

import dramatiq
import pytest
from django.db import transaction

from workers.batches import batch_add, batch_open, batch_record, batch_seal
from workers.models import Batch

pytestmark = pytest.mark.django_db

calls: list[tuple[str, int]] = []
attempts: dict[int, int] = {}


@dramatiq.actor(max_retries=3, retry_backoff=lambda count: 1)
def batch_item(number: int, fail_times: int) -> None:
    attempts[number] = attempts.get(number, 0) + 1
    if attempts[number] <= fail_times:
        raise ConnectionError("try again")


@dramatiq.actor
def batch_done(batch_id: int) -> None:
    calls.append(("complete", batch_id))


@dramatiq.actor
def batch_all_good(batch_id: int) -> None:
    calls.append(("success", batch_id))


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()
    attempts.clear()


def run_batch(perform_jobs, django_capture_on_commit_callbacks, fail_times: list[int]) -> Batch:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        batch = batch_open(description="items", on_complete=batch_done, on_success=batch_all_good)
        batch_add(batch, [batch_item.message(n, times) for n, times in enumerate(fail_times)])
        batch_seal(batch)
    perform_jobs()
    batch.refresh_from_db()
    return batch


def test_a_batch_whose_jobs_all_succeed_after_retries_calls_both_callbacks_once(
    perform_jobs, django_capture_on_commit_callbacks
):
    batch = run_batch(perform_jobs, django_capture_on_commit_callbacks, [0, 2, 0, 1, 0])
    assert (batch.total, batch.pending, batch.succeeded, batch.failed) == (5, 0, 5, 0)
    assert batch.status == Batch.Status.SUCCEEDED and batch.finished_at is not None
    assert sorted(calls) == [("complete", batch.pk), ("success", batch.pk)]
    assert attempts == {0: 1, 1: 3, 2: 1, 3: 2, 4: 1}


def test_a_job_that_fails_for_good_completes_the_batch_without_success(
    perform_jobs, django_capture_on_commit_callbacks
):
    batch = run_batch(perform_jobs, django_capture_on_commit_callbacks, [0, 9, 1])
    assert (batch.total, batch.pending, batch.succeeded, batch.failed) == (3, 0, 2, 1)
    assert batch.status == Batch.Status.COMPLETE
    assert calls == [("complete", batch.pk)]


def test_a_redelivered_job_is_counted_once(perform_jobs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_open(description="two", on_complete=batch_done)
        batch_add(batch, [batch_item.message(1, 0), batch_item.message(2, 0)])
    first_id = batch.jobs.order_by("pk").first().message_id
    assert batch_record(batch_id=batch.pk, message_id=first_id, succeeded=True) is True
    assert batch_record(batch_id=batch.pk, message_id=first_id, succeeded=True) is False
    batch.refresh_from_db()
    assert (batch.pending, batch.succeeded) == (1, 1)


def test_callbacks_wait_for_the_seal_even_when_every_job_has_finished(perform_jobs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_open(description="open", on_complete=batch_done)
        batch_add(batch, [batch_item.message(1, 0)])
    perform_jobs()
    assert calls == []
    with django_capture_on_commit_callbacks(execute=True):
        batch_seal(batch)
    perform_jobs()
    assert calls == [("complete", batch.pk)]
    with pytest.raises(ValueError, match="is sealed"):
        batch_add(batch, [batch_item.message(2, 0)])
