"""Datasets: a sweep over every order, split into chunks that each run as one job.

Each ``process_large_dataset`` job does one chunk by keyset (ids after the cursor), moves the
cursor in the same transaction, and queues the next chunk's job after commit. A chunk is
idempotent: a redelivered job whose ``after_id`` is behind the cursor finds its work done and
queues nothing, so the sweep neither skips nor doubles a chunk, and its cost is linear in the
number of orders. A chunk asked to stop (``should_stop``) commits its work and cancels the
dataset instead of queueing the next chunk; :func:`dataset_resume` queues the chunk after the cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models import DecimalField, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders.models import Dataset, Order, OrderItem
from workers.enqueue import actor_named, enqueue_on_commit
from workers.keyset import keyset_page

logger = logging.getLogger(__name__)

PROCESS_LARGE_DATASET = actor_named("process_large_dataset")


def dataset_start(*, dataset_id: int) -> Dataset:
    """Count the rows to visit and queue the first chunk, once."""
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
        if dataset.status != Dataset.Status.PENDING:
            return dataset
        dataset.status = Dataset.Status.RUNNING
        dataset.total = Order.objects.count()
        dataset.save(update_fields=["status", "total"])
        enqueue_on_commit(PROCESS_LARGE_DATASET, dataset.pk, after_id=0)
    return dataset


def dataset_process_chunk(*, dataset_id: int, after_id: int, should_stop: Callable[[], bool] | None = None) -> Dataset:
    """Do the chunk after ``after_id`` and queue the next one; nothing if this chunk is done already.

    Once ``should_stop`` says True (asked after the chunk's work, before its commit), the dataset
    is cancelled in the chunk's transaction and no next chunk is queued.
    """
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
        if dataset.status in (Dataset.Status.COMPLETED, Dataset.Status.CANCELLED) or dataset.cursor != after_id:
            logger.info("dataset %s: the chunk after %s is done already", dataset_id, after_id)
            return dataset
        ids = keyset_page(Order.objects.all(), after=after_id, size=dataset.chunk_size)
        if ids:
            OPERATIONS[dataset.operation](ids)
            dataset.cursor = ids[-1]
            dataset.processed += len(ids)
        if len(ids) < dataset.chunk_size:
            dataset.status = Dataset.Status.COMPLETED
            dataset.finished_at = timezone.now()
        elif should_stop is not None and should_stop():
            dataset.status = Dataset.Status.CANCELLED
            logger.info("dataset %s cancelled after %s rows", dataset_id, dataset.processed)
        else:
            enqueue_on_commit(PROCESS_LARGE_DATASET, dataset.pk, after_id=dataset.cursor)
        dataset.save(update_fields=["cursor", "processed", "status", "finished_at"])
    return dataset


def dataset_resume(*, dataset_id: int) -> bool:
    """Queue the chunk after the cursor of a cancelled (or stalled running) dataset; False if it has ended.

    A running dataset whose next chunk job was cancelled before it started waits for nothing:
    it is queued again too. Should that job still be queued, the two find the same cursor and
    the second one to run does nothing.
    """
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
        if dataset.status not in (Dataset.Status.CANCELLED, Dataset.Status.RUNNING):
            return False
        dataset.status = Dataset.Status.RUNNING
        dataset.save(update_fields=["status"])
        enqueue_on_commit(PROCESS_LARGE_DATASET, dataset.pk, after_id=dataset.cursor)
    logger.info("dataset %s resumed after id %s", dataset_id, dataset.cursor)
    return True


def order_totals_recompute(order_ids: list[int]) -> int:
    """Set each order's total to the sum of its items, in one UPDATE; returns the rows updated."""
    item_sums = (
        OrderItem.objects.filter(order=OuterRef("pk"))
        .values("order")
        .annotate(sum=Sum(F("quantity") * F("unit_price")))
        .values("sum")
    )
    money = DecimalField(max_digits=12, decimal_places=2)
    return Order.objects.filter(pk__in=order_ids).update(
        total=Coalesce(Subquery(item_sums, output_field=money), Value(0), output_field=money)
    )


OPERATIONS = {Dataset.Operation.RECOMPUTE_TOTALS: order_totals_recompute}
