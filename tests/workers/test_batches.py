"""Batches: exact counts under retries, redelivery and failed writes, and callbacks that are sent once."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import dramatiq
import pytest
from django.db import OperationalError, connections, transaction

from workers import batches
from workers.batches import batch_add, batch_open, batch_record, batch_seal, batches_reconcile
from workers.models import Batch, BatchJob, DeadLetter, OutboxMessage
from workers.outbox import outbox_relay

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


def open_batch(django_capture_on_commit_callbacks, fail_times: list[int]) -> Batch:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        batch = batch_open(description="items", on_complete=batch_done, on_success=batch_all_good)
        batch_add(batch, [batch_item.message(n, times) for n, times in enumerate(fail_times)])
        batch_seal(batch)
    return batch


def run_batch(perform_jobs, django_capture_on_commit_callbacks, fail_times: list[int]) -> Batch:
    batch = open_batch(django_capture_on_commit_callbacks, fail_times)
    perform_jobs()
    batch.refresh_from_db()
    return batch


def failing_once(function, error: Exception):
    """``function``, except that its first call raises ``error``."""
    failures = [error]

    def call(*args, **kwargs):
        if failures:
            raise failures.pop()
        return function(*args, **kwargs)

    return call


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


def test_batch_callbacks_refused_by_the_broker_at_commit_wait_in_the_outbox_for_the_relay(
    jobs, perform_jobs, django_capture_on_commit_callbacks
):
    # Given a batch whose last job finishes while the broker refuses every send after the commit
    batch = open_batch(django_capture_on_commit_callbacks, [0, 0])
    with django_capture_on_commit_callbacks() as at_commit:
        jobs.drain()
    with mock.patch.object(jobs.broker, "enqueue", side_effect=ConnectionError("broker down")):
        for callback in at_commit:
            callback()

    # Then the batch says it has finished, and its callbacks wait in the outbox
    batch.refresh_from_db()
    assert batch.status == Batch.Status.SUCCEEDED
    assert calls == []
    assert sorted(row.message["actor_name"] for row in OutboxMessage.objects.all()) == ["batch_all_good", "batch_done"]

    # When the relay runs with the broker back, each callback runs once
    assert outbox_relay(older_than=timedelta(0)) == 2
    perform_jobs()
    assert sorted(calls) == [("complete", batch.pk), ("success", batch.pk)]
    assert batches_reconcile() == 0
    perform_jobs()
    assert len(calls) == 2


def test_a_failed_count_write_is_repaired_by_reconcile_which_finishes_the_batch_once(
    perform_jobs, django_capture_on_commit_callbacks
):
    # Given a batch whose jobs' count writes fail (lock waits on the batch row time out)
    with mock.patch.object(batches, "_count_end", side_effect=OperationalError("lock timeout")):
        batch = open_batch(django_capture_on_commit_callbacks, [0, 0, 0])
        perform_jobs()

    # Then the jobs' own rows say they ended, but the batch's counters lag and it is still running
    batch.refresh_from_db()
    assert (batch.status, batch.total, batch.pending, batch.succeeded, batch.failed) == ("running", 3, 3, 0, 0)
    assert not batch.jobs.filter(status=BatchJob.Status.PENDING).exists()
    assert calls == []

    # When housekeeping reconciles the batches, twice
    with django_capture_on_commit_callbacks(execute=True):
        assert batches_reconcile() == 1
        assert batches_reconcile() == 0
    perform_jobs()

    # Then the counts are the rows', the batch has finished, and each callback ran once
    batch.refresh_from_db()
    assert (batch.total, batch.pending, batch.succeeded, batch.failed) == (3, 0, 3, 0)
    assert batch.status == Batch.Status.SUCCEEDED
    assert sorted(calls) == [("complete", batch.pk), ("success", batch.pk)]


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_while_counting_a_job_fails_the_count_instead_of_dropping_it(
    django_capture_on_commit_callbacks,
):
    # Given a running batch, and a database connection that dies while a job's end is counted
    # (the counter's write fails, and so does rolling back to the savepoint around it)
    batch = open_batch(django_capture_on_commit_callbacks, [0])
    job = batch.jobs.get()
    lost = OperationalError("server closed the connection unexpectedly")
    with (
        mock.patch.object(batches, "_count_end", side_effect=lost),
        mock.patch.object(connections["default"], "savepoint_rollback", side_effect=lost),
        pytest.raises(OperationalError),
    ):
        # When the job's end is recorded, then the failure is raised, not swallowed
        batch_record(batch_id=batch.pk, message_id=job.message_id, succeeded=True)

    # And nothing was half-written: the job is still pending, so the retried record counts it
    job.refresh_from_db()
    assert job.status == BatchJob.Status.PENDING
    assert batch_record(batch_id=batch.pk, message_id=job.message_id, succeeded=True) is True
    batch.refresh_from_db()
    assert (batch.status, batch.pending, batch.succeeded) == (Batch.Status.SUCCEEDED, 0, 1)


def test_reconcile_repairs_the_counters_of_a_batch_still_running(django_capture_on_commit_callbacks):
    # Given a running batch whose counters say nothing ended, though one of its jobs did
    batch = open_batch(django_capture_on_commit_callbacks, [0, 0])
    BatchJob.objects.filter(pk=batch.jobs.order_by("pk").first().pk).update(status=BatchJob.Status.SUCCEEDED)

    # When it is reconciled
    assert batches_reconcile() == 0

    # Then its counters show the ended job, and it still runs
    batch.refresh_from_db()
    assert (batch.status, batch.total, batch.pending, batch.succeeded, batch.failed) == ("running", 2, 1, 1, 0)


def test_a_job_whose_end_cannot_be_written_runs_again_and_is_counted_once(
    perform_jobs, django_capture_on_commit_callbacks, caplog
):
    # Given a batch whose one job succeeds while the database refuses its end once
    with mock.patch.object(
        batches, "batch_record", side_effect=failing_once(batch_record, OperationalError("database is locked"))
    ):
        batch = open_batch(django_capture_on_commit_callbacks, [0])
        perform_jobs()

    # Then the job ran again, was counted once, and the batch finished with its callbacks
    batch.refresh_from_db()
    assert attempts == {0: 2}
    assert (batch.total, batch.pending, batch.succeeded, batch.failed, batch.status) == (1, 0, 1, 0, "succeeded")
    assert sorted(calls) == [("complete", batch.pk), ("success", batch.pk)]
    assert any(r.getMessage().startswith("Could not count batch job") for r in caplog.records)


def test_a_job_that_failed_for_good_but_whose_end_was_not_written_is_counted_from_its_dead_letter(
    perform_jobs, django_capture_on_commit_callbacks
):
    # Given a batch whose one job fails for good while the database refuses its end once
    with mock.patch.object(
        batches, "batch_record", side_effect=failing_once(batch_record, OperationalError("database is locked"))
    ):
        batch = open_batch(django_capture_on_commit_callbacks, [9])
        perform_jobs()
    batch.refresh_from_db()
    assert batch.status == Batch.Status.RUNNING
    assert DeadLetter.objects.get().reason == "exhausted"

    # When housekeeping reconciles the batches
    with django_capture_on_commit_callbacks(execute=True):
        assert batches_reconcile() == 1
    perform_jobs()

    # Then the job counts as failed, the batch completed, and only on_complete ran
    batch.refresh_from_db()
    assert (batch.total, batch.pending, batch.succeeded, batch.failed) == (1, 0, 0, 1)
    assert batch.status == Batch.Status.COMPLETE
    assert calls == [("complete", batch.pk)]


def test_a_batch_finishes_with_the_counts_of_its_rows_though_an_earlier_count_write_failed(
    perform_jobs, django_capture_on_commit_callbacks
):
    # Given a batch whose first job's count write fails, and whose later jobs' succeed
    with mock.patch.object(
        batches, "_count_end", side_effect=failing_once(batches._count_end, OperationalError("lock timeout"))
    ):
        batch = run_batch(perform_jobs, django_capture_on_commit_callbacks, [0, 0, 9])

    # Then the last job finished it, with every job counted from the rows, and no reconcile needed
    assert (batch.total, batch.pending, batch.succeeded, batch.failed) == (3, 0, 2, 1)
    assert batch.status == Batch.Status.COMPLETE
    assert calls == [("complete", batch.pk)]
