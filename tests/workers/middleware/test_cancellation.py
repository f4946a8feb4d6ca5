"""Cancelling in-process: a cancelled job is skipped, gives its lock back and ends its place in its batch."""

from __future__ import annotations

from unittest import mock

import dramatiq
import pytest
from django.db import OperationalError, transaction

from tests.support.users import login_staff
from workers import batches
from workers.batches import batch_add, batch_open, batch_record, batch_seal
from workers.cancellation import raise_if_cancelled, request_cancel
from workers.models import Batch, BatchJob, DeadLetter, OperatorAction

pytestmark = pytest.mark.django_db

runs: list[str] = []


@dramatiq.actor(queue_name="default", unique="until_executed")
def cancellable(key: str) -> None:
    runs.append(key)


@dramatiq.actor(queue_name="default", max_retries=3)
def stops_when_asked(key: str) -> None:
    runs.append(key)
    request_cancel(dramatiq.middleware.CurrentMessage.get_current_message().message_id)
    raise_if_cancelled()


@pytest.fixture(autouse=True)
def no_runs():
    runs.clear()


def test_a_cancelled_unique_job_is_skipped_and_gives_its_lock_back(jobs):
    # Given a unique job waiting, cancelled
    message = cancellable.send("k")
    request_cancel(message.message_id)

    # When it comes to run
    jobs.drain()

    # Then it did not run, nor became a dead letter, and the same job can be sent again at once
    assert runs == [] and jobs.dead_letters == [] and not DeadLetter.objects.exists()
    cancellable.send("k")
    jobs.drain()
    assert runs == ["k"]


def test_a_job_that_stops_when_asked_ends_cancelled_not_retried(jobs):
    stops_when_asked.send("once")

    jobs.drain()

    assert runs == ["once"]
    assert jobs.enqueued() == [] and jobs.dead_letters == [] and not DeadLetter.objects.exists()


def batch_of_two_with_one_cancelled(jobs, django_capture_on_commit_callbacks):
    """A sealed batch of two waiting jobs, "a" and "b", and the message of "a", cancelled."""
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        batch = batch_open(description="two")
        batch_add(batch, [cancellable.message("a"), cancellable.message("b")])
        batch_seal(batch)
    cancelled = next(job for job in jobs.enqueued(cancellable) if job.args == ("a",))
    request_cancel(cancelled.message_id)
    return batch, cancelled


def test_a_cancelled_batch_job_ends_its_place_in_the_batch(jobs, django_capture_on_commit_callbacks):
    # Given a sealed batch of two jobs, one of them cancelled
    batch, cancelled = batch_of_two_with_one_cancelled(jobs, django_capture_on_commit_callbacks)

    # When both come to run
    with django_capture_on_commit_callbacks(execute=True):
        jobs.drain()

    # Then the batch is finished, the cancelled job counted as cancelled, not failed
    batch.refresh_from_db()
    assert runs == ["b"]
    assert (batch.status, batch.succeeded, batch.failed, batch.cancelled, batch.pending) == (
        Batch.Status.COMPLETE,
        1,
        0,
        1,
        0,
    )
    assert batch.progress == 1.0
    assert BatchJob.objects.get(message_id=cancelled.message_id).status == BatchJob.Status.CANCELLED


def test_a_cancelled_batch_job_whose_end_cannot_be_written_is_counted_when_it_comes_up_again(
    jobs, django_capture_on_commit_callbacks, caplog
):
    # Given a sealed batch of two jobs, one of them cancelled, and a database that refuses the
    # cancelled job's end the first time it is written (the connection died while it was counted)
    batch, cancelled = batch_of_two_with_one_cancelled(jobs, django_capture_on_commit_callbacks)
    refusals = [OperationalError("server closed the connection unexpectedly")]

    def record(**kwargs):
        if kwargs.get("cancelled") and refusals:
            raise refusals.pop()
        return batch_record(**kwargs)

    # When both come to run
    with mock.patch.object(batches, "batch_record", side_effect=record):
        with django_capture_on_commit_callbacks(execute=True):
            jobs.drain()

    # Then the cancelled job never ran, and its end was counted when it came up again: the batch finished
    batch.refresh_from_db()
    assert runs == ["b"] and not refusals
    assert (batch.status, batch.succeeded, batch.failed, batch.cancelled, batch.pending) == (
        Batch.Status.COMPLETE,
        1,
        0,
        1,
        0,
    )
    assert BatchJob.objects.get(message_id=cancelled.message_id).status == BatchJob.Status.CANCELLED
    assert any(r.getMessage().startswith(f"Could not count cancelled {cancelled.message_id}") for r in caplog.records)


def test_a_cancelled_batch_job_sent_again_to_be_counted_leaves_its_lock_free(jobs, django_capture_on_commit_callbacks):
    # Given a batch of one unique job, cancelled, whose end the database refuses to count once
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        batch = batch_open(description="one")
        batch_add(batch, [cancellable.message("a")])
        batch_seal(batch)
    request_cancel(jobs.enqueued(cancellable)[0].message_id)
    lost = OperationalError("server closed the connection unexpectedly")

    # When it comes up, and is sent again to be counted later
    with mock.patch.object(batches, "batch_record", side_effect=lost):
        assert jobs.run_next()

    # Then the same job can be sent again at once (a resume), not dropped as the copy's duplicate
    resumed = cancellable.send("a")
    assert resumed.message_id in {job.message_id for job in jobs.enqueued(cancellable)}


def test_cancelling_a_batch_skips_its_waiting_jobs_and_finishes_it_cancelled(
    client, jobs, django_capture_on_commit_callbacks
):
    # Given a backfill-like batch of three waiting jobs
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        batch = batch_open(description="Daily reports", on_complete=cancellable)
        batch_add(batch, [cancellable.message(day) for day in ("d1", "d2", "d3")])
        batch_seal(batch)

    # When staff cancel the batch from the console
    login_staff(client, "view_console_scheduled", "cancel_job")
    page = client.post(
        "/admin/jobs/scheduled/", {"action": "cancel_batch", "batch_id": batch.pk, "token": "b"}, follow=True
    )
    with django_capture_on_commit_callbacks(execute=True):
        jobs.drain()

    # Then none ran, the batch is cancelled with each job counted, no callback was sent, and it is audited
    assert f"Cancelled batch {batch.pk}: 3 job(s)" in page.content.decode()
    batch.refresh_from_db()
    assert runs == []
    assert (batch.status, batch.pending, batch.succeeded, batch.failed, batch.cancelled) == (
        Batch.Status.CANCELLED,
        0,
        0,
        0,
        3,
    )
    assert OperatorAction.objects.get().action == "cancel_batch"
