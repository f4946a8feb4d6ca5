"""Batches: many jobs tracked as one, counted from their job rows, with callbacks that are never lost.

Usage::

    with transaction.atomic():
        batch = batch_open(description="Reports 2026", on_complete=reports_done)
        batch_add(batch, [generate_daily_report.message(day) for day in days])
        batch_seal(batch)

Jobs are sent when the transaction commits. Each job reports its end through the
``BatchProgress`` middleware: success, or failure for good (retries do not count). The
``BatchJob`` rows are the truth; the batch's counters follow them for the progress bar. When
the batch is sealed and no job is pending, it is finished with the counts of its rows, and
``on_complete`` is sent the batch id, and so is ``on_success`` if none failed: through the
outbox, in the transaction that finishes the batch, so each is sent once and a broker that is
down at that moment delays them instead of losing them. ``batches_reconcile`` repairs what a
failed write left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import dramatiq
from django.db import DatabaseError, transaction
from django.db.models import Count, F
from django.db.models.functions import Greatest
from django.utils import timezone

from workers.models import Batch, BatchJob, DeadLetter
from workers.outbox import outbox_add

logger = logging.getLogger(__name__)


def batch_open(
    *, description: str, on_complete: dramatiq.Actor | None = None, on_success: dramatiq.Actor | None = None
) -> Batch:
    """Create an open batch; add jobs to it, then seal it."""
    return Batch.objects.create(
        description=description[:200],
        on_complete=on_complete.actor_name if on_complete else "",
        on_success=on_success.actor_name if on_success else "",
    )


def batch_add(batch: Batch, messages: Iterable[dramatiq.Message], *, broker: dramatiq.Broker | None = None) -> int:
    """Add jobs to an open batch and send them after commit; returns how many were added."""
    broker = broker or dramatiq.get_broker()
    tagged = [message.copy(options={"batch_id": batch.pk}) for message in messages]
    if not tagged:
        return 0
    with transaction.atomic():
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        if locked.sealed:
            raise ValueError(f"batch {batch.pk} is sealed; open a new batch for more jobs")
        BatchJob.objects.bulk_create(
            BatchJob(batch_id=batch.pk, message_id=message.message_id, actor_name=message.actor_name)
            for message in tagged
        )
        Batch.objects.filter(pk=batch.pk).update(total=F("total") + len(tagged), pending=F("pending") + len(tagged))
        outbox_add(tagged, broker=broker)
    return len(tagged)


def batch_seal(batch: Batch) -> None:
    """Declare that no more jobs come; the callbacks can fire once every job has finished."""
    with transaction.atomic():
        Batch.objects.filter(pk=batch.pk).update(sealed=True)
        _finish_if_done(batch.pk)


def batch_record(*, batch_id: int, message_id: str, succeeded: bool, cancelled: bool = False) -> bool:
    """Count a job's end once; returns False if it was counted already (a redelivery).

    A job ends succeeded, failed, or cancelled (asked to stop, it was skipped or stopped
    itself). The job's row is what counts. Moving the batch's counters and finishing it is done in a
    savepoint: if that fails (the batch row is contended, a lock wait times out), the job's
    end is still written, and ``batches_reconcile`` brings the batch up to date.
    """
    status = _ended_as(succeeded=succeeded, cancelled=cancelled)
    with transaction.atomic():
        changed = BatchJob.objects.filter(
            batch_id=batch_id, message_id=message_id, status=BatchJob.Status.PENDING
        ).update(status=status, finished_at=timezone.now())
        if not changed:
            return False
        try:
            with transaction.atomic():
                _count_end(batch_id, status)
                _finish_if_done(batch_id)
        except DatabaseError:
            if transaction.get_rollback():
                # The savepoint could not be rolled back either: the connection is gone, and the
                # job's row with it. Django would roll back silently on leaving the block; say so
                # instead, so that the job's end is written again, not lost.
                raise
            logger.warning(
                "batch %s: could not count job %s; batches_reconcile will", batch_id, message_id, exc_info=True
            )
    return True


def batches_reconcile(*, limit: int = 1000) -> int:
    """Bring running batches up to date with their job rows; returns how many it finished.

    For a batch whose count write failed, or whose job ended while the database was away:
    a pending job with a dead letter failed for good and is marked so; the counters are set
    from the rows; and a sealed batch with no pending job is finished and its callbacks sent,
    once, as ``batch_record`` would have. Meant to run every minute; each batch in its own
    transaction.
    """
    finished = 0
    running = Batch.objects.filter(status=Batch.Status.RUNNING).order_by("pk").values_list("pk", flat=True)
    for batch_id in list(running[:limit]):
        with transaction.atomic():
            finished += _reconcile(batch_id)
    return finished


def _reconcile(batch_id: int) -> bool:
    batch = Batch.objects.select_for_update().filter(pk=batch_id, status=Batch.Status.RUNNING).first()
    if batch is None:
        return False  # finished (or pruned) meanwhile
    lost_failures = BatchJob.objects.filter(
        batch_id=batch_id,
        status=BatchJob.Status.PENDING,
        message_id__in=DeadLetter.objects.values("message_id"),
    ).update(status=BatchJob.Status.FAILED, finished_at=timezone.now())
    counts = _counts(batch_id)
    held = tuple(getattr(batch, name) for name in COUNTERS)
    if lost_failures or counts != held:
        logger.warning(
            "batch %s: counts repaired from its jobs: (%s) %s -> %s", batch_id, ", ".join(COUNTERS), held, counts
        )
        Batch.objects.filter(pk=batch_id).update(**dict(zip(COUNTERS, counts, strict=True)))
    return _finish_if_done(batch_id)


def _ended_as(*, succeeded: bool, cancelled: bool) -> str:
    if cancelled:
        return BatchJob.Status.CANCELLED
    return BatchJob.Status.SUCCEEDED if succeeded else BatchJob.Status.FAILED


def _count_end(batch_id: int, status: str) -> None:
    # The batch's counter of each end is named as the job's status is.
    Batch.objects.filter(pk=batch_id).update(pending=Greatest(F("pending") - 1, 0), **{status: F(status) + 1})


#: The batch's counters, each the number of its jobs in the status of that name (total: all of them).
COUNTERS = ("total", "pending", "succeeded", "failed", "cancelled")


def _counts(batch_id: int) -> tuple[int, int, int, int, int]:
    """Total, pending, succeeded, failed and cancelled jobs of the batch, from its rows."""
    by_status = dict(
        BatchJob.objects.filter(batch_id=batch_id).order_by().values_list("status").annotate(count=Count("pk"))
    )
    ended = tuple(by_status.get(name, 0) for name in COUNTERS[1:])
    return (sum(ended), *ended)


def _finish_if_done(batch_id: int) -> bool:
    batch = Batch.objects.select_for_update().get(pk=batch_id)
    if not batch.sealed or batch.finished_at:
        return False
    if BatchJob.objects.filter(batch_id=batch_id, status=BatchJob.Status.PENDING).exists():
        return False
    for name, count in zip(COUNTERS, _counts(batch_id), strict=True):
        setattr(batch, name, count)
    batch.status = Batch.Status.COMPLETE if batch.failed or batch.cancelled else Batch.Status.SUCCEEDED
    batch.finished_at = timezone.now()
    batch.save(update_fields=[*COUNTERS, "status", "finished_at"])
    callbacks = [batch.on_complete] + ([batch.on_success] if batch.status == Batch.Status.SUCCEEDED else [])
    broker = dramatiq.get_broker()
    messages = [broker.get_actor(name).message(batch_id) for name in callbacks if name]
    if messages:
        outbox_add(messages, broker=broker)
    return True
