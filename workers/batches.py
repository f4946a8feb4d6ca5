"""Batches: many jobs tracked as one, with exact counts and callbacks that fire once.

Usage::

    with transaction.atomic():
        batch = batch_open(description="Reports 2026", on_complete=reports_done)
        batch_add(batch, [generate_daily_report.message(day) for day in days])
        batch_seal(batch)

Jobs are sent when the transaction commits. Each job reports its end through the
``BatchProgress`` middleware: success, or failure for good (retries do not count). When the
batch is sealed and no job is pending, ``on_complete`` is sent the batch id, and so is
``on_success`` if none failed, each exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable

import dramatiq
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from workers.models import Batch, BatchJob
from workers.outbox import outbox_add


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


def batch_record(*, batch_id: int, message_id: str, succeeded: bool) -> bool:
    """Count a job's end once; returns False if it was counted already (a redelivery)."""
    status = BatchJob.Status.SUCCEEDED if succeeded else BatchJob.Status.FAILED
    with transaction.atomic():
        changed = BatchJob.objects.filter(
            batch_id=batch_id, message_id=message_id, status=BatchJob.Status.PENDING
        ).update(status=status, finished_at=timezone.now())
        if not changed:
            return False
        counter = "succeeded" if succeeded else "failed"
        Batch.objects.filter(pk=batch_id).update(pending=F("pending") - 1, **{counter: F(counter) + 1})
        _finish_if_done(batch_id)
    return True


def _finish_if_done(batch_id: int) -> None:
    batch = Batch.objects.select_for_update().get(pk=batch_id)
    if not batch.sealed or batch.pending or batch.finished_at:
        return
    batch.status = Batch.Status.COMPLETE if batch.failed else Batch.Status.SUCCEEDED
    batch.finished_at = timezone.now()
    batch.save(update_fields=["status", "finished_at"])
    callbacks = [batch.on_complete] + ([batch.on_success] if batch.status == Batch.Status.SUCCEEDED else [])
    for actor_name in filter(None, callbacks):
        transaction.on_commit(lambda name=actor_name: dramatiq.get_broker().get_actor(name).send(batch_id))
