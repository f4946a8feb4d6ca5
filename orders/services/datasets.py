"""Datasets: a sweep over every order, split into chunks that each run as one job.

Each ``process_large_dataset`` job does one chunk by keyset (ids after the cursor), moves the
cursor in the same transaction, and queues the next chunk's job after commit. A chunk is
idempotent: a redelivered job whose ``after_id`` is behind the cursor finds its work done and
queues nothing, so the sweep neither skips nor doubles a chunk, and its cost is linear in the
number of orders.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import DecimalField, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders.models import Dataset, Order, OrderItem
from workers.enqueue import enqueue_on_commit
from workers.keyset import keyset_page

logger = logging.getLogger(__name__)


def dataset_start(*, dataset_id: int) -> Dataset:
    """Count the rows to visit and queue the first chunk, once."""
    from orders.tasks import process_large_dataset

    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
        if dataset.status != Dataset.Status.PENDING:
            return dataset
        dataset.status = Dataset.Status.RUNNING
        dataset.total = Order.objects.count()
        dataset.save(update_fields=["status", "total"])
        enqueue_on_commit(process_large_dataset, dataset.pk, after_id=0)
    return dataset


def dataset_process_chunk(*, dataset_id: int, after_id: int) -> Dataset:
    """Do the chunk after ``after_id`` and queue the next one; nothing if this chunk is done already."""
    from orders.tasks import process_large_dataset

    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
        if dataset.status == Dataset.Status.COMPLETED or dataset.cursor != after_id:
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
        else:
            enqueue_on_commit(process_large_dataset, dataset.pk, after_id=dataset.cursor)
        dataset.save(update_fields=["cursor", "processed", "status", "finished_at"])
    return dataset


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
