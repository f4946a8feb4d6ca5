"""Price batches: one job per price change, followed as one batch with its progress."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from orders.models import PriceBatch, PriceBatchItem, Product
from workers.batches import batch_add, batch_open, batch_seal
from workers.keyset import keyset_chunks


def price_batch_start(*, batch_id: int) -> PriceBatch:
    """Queue one ``process_item`` job per item, as one sealed job batch; at most once per price batch.

    The items are walked by keyset in chunks of 1,000, and their jobs go out in bulk once the
    transaction commits (through the outbox), so a batch of any size is started in one
    transaction and a crash before the commit starts nothing.
    """
    from orders.tasks import process_item

    with transaction.atomic():
        batch = PriceBatch.objects.select_for_update().get(pk=batch_id)
        if batch.job_batch_id is not None:
            return batch  # started already: a redelivered job, or a second click
        job_batch = batch_open(description=f"Price batch #{batch.pk}: {batch.description}")
        for item_ids in keyset_chunks(PriceBatchItem.objects.filter(batch=batch)):
            batch_add(job_batch, (process_item.message(item_id) for item_id in item_ids))
        batch_seal(job_batch)
        batch.job_batch = job_batch
        batch.started_at = timezone.now()
        batch.save(update_fields=["job_batch", "started_at"])
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
