"""Price batches: one job per price change, followed as one batch with its progress."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from orders.models import PriceBatch, PriceBatchItem, Product
from workers.batches import batch_add, batch_open, batch_seal
from workers.enqueue import actor_named, enqueue_on_commit
from workers.keyset import CHUNK_SIZE, keyset_page
from workers.models import Batch

logger = logging.getLogger(__name__)

PROCESS_ITEM = actor_named("process_item")
PROCESS_BATCH = actor_named("process_batch")


def price_batch_start(*, batch_id: int, should_stop: Callable[[], bool] | None = None) -> PriceBatch:
    """Queue one ``process_item`` job per item, as one sealed job batch; each item once, however often it runs.

    The items are walked by keyset in chunks of 1,000: each chunk's jobs are added to the job
    batch (and go out in bulk through the outbox once it commits) in the transaction that moves
    the price batch's cursor past them, so a run that dies, or is asked to stop
    (``should_stop``, asked before each chunk), has queued exactly the items before its cursor,
    and the next run goes on after it. Once every item is queued, the job batch is sealed. A
    run asked to stop marks the job batch cancelled; :func:`price_batch_resume` queues the job
    again, which goes on from the cursor.
    """
    with transaction.atomic():
        batch = PriceBatch.objects.select_for_update().get(pk=batch_id)
        if batch.job_batch_id is None:
            batch.job_batch = batch_open(description=f"Price batch #{batch.pk}: {batch.description}")
            batch.started_at = timezone.now()
            batch.save(update_fields=["job_batch", "started_at"])
    while True:
        if should_stop is not None and should_stop():
            return _price_batch_cancel(batch_id)
        with transaction.atomic():
            batch = PriceBatch.objects.select_for_update().select_related("job_batch").get(pk=batch_id)
            if batch.job_batch.sealed or batch.job_batch.status == Batch.Status.CANCELLED:
                return batch  # every item queued already (a redelivered job, a second click), or cancelled
            items = PriceBatchItem.objects.filter(batch=batch)
            item_ids = keyset_page(items, after=batch.cursor or None, size=CHUNK_SIZE)
            batch_add(batch.job_batch, (PROCESS_ITEM.actor.message(item_id) for item_id in item_ids))
            if len(item_ids) < CHUNK_SIZE:
                batch_seal(batch.job_batch)
            if item_ids:
                batch.cursor = item_ids[-1]
                batch.save(update_fields=["cursor"])
            if len(item_ids) < CHUNK_SIZE:
                return batch


def price_batch_resume(*, batch_id: int) -> bool:
    """Queue a cancelled price batch's job again, to queue the items after its cursor; False if not cancelled."""
    with transaction.atomic():
        batch = PriceBatch.objects.select_for_update().select_related("job_batch").get(pk=batch_id)
        job_batch = batch.job_batch
        if job_batch is None or job_batch.status != Batch.Status.CANCELLED or job_batch.finished_at is not None:
            return False  # not cancelled, or its waiting jobs were cancelled too: nothing to go on with
        Batch.objects.filter(pk=batch.job_batch_id).update(status=Batch.Status.RUNNING)
        enqueue_on_commit(PROCESS_BATCH, batch.pk)
    logger.info("price batch %s resumed after item %s", batch_id, batch.cursor)
    return True


def _price_batch_cancel(batch_id: int) -> PriceBatch:
    with transaction.atomic():
        batch = PriceBatch.objects.select_for_update().select_related("job_batch").get(pk=batch_id)
        if not batch.job_batch.sealed:
            Batch.objects.filter(pk=batch.job_batch_id).update(status=Batch.Status.CANCELLED)
            batch.job_batch.status = Batch.Status.CANCELLED
            logger.info("price batch %s cancelled with the items up to %s queued", batch_id, batch.cursor)
    return batch


def price_item_apply(*, item_id: int) -> PriceBatchItem:
    """Set the product's price to the item's, once: an item applied already is left as it is."""
    with transaction.atomic():
        item = PriceBatchItem.objects.select_for_update().get(pk=item_id)
        if item.applied_at is not None:
            return item
        product = Product.objects.select_for_update().get(pk=item.product_id)
        item.old_price, product.price = product.price, item.new_price
        product.save(update_fields=["price", "updated_at"])
        item.applied_at = timezone.now()
        item.save(update_fields=["old_price", "applied_at"])
    return item
