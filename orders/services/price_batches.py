"""Price batches: one job per price change, followed as one batch with its progress."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from orders.models import PriceBatch, PriceBatchItem, Product
from workers.batches import batch_add, batch_open, batch_seal
from workers.bulk import chunked
from workers.enqueue import actor_named, enqueue_on_commit
from workers.keyset import CHUNK_SIZE, keyset_page
from workers.models import Batch

logger = logging.getLogger(__name__)

PROCESS_ITEM = actor_named("process_item")
PROCESS_PRICE_BATCH = actor_named("process_price_batch")
#: Items written per INSERT.
ITEMS_PER_INSERT = 1_000
CENT = Decimal("0.01")
#: The highest price a product's column holds (12 digits, 2 of them decimals).
PRICE_MAX = Decimal("9999999999.99")


class PriceBatchStarted(Exception):
    """The batch's job has walked its items already: they are fixed."""


class PriceOutOfRange(ValueError):
    """A percentage change would take some prices past what a price can hold; ``skus`` names a few."""

    def __init__(self, skus: list[str]) -> None:
        super().__init__(f"the new price of {', '.join(skus)} would be above {PRICE_MAX}")
        self.skus = skus


def price_batch_from_products(
    *,
    description: str,
    products: QuerySet[Product],
    new_price: Decimal | None = None,
    percent: Decimal | None = None,
    created_by_id: int | None = None,
) -> PriceBatch:
    """A new (not started) price batch giving each of ``products`` ``new_price``, or its price changed by ``percent``.

    Percentage changes are rounded half up to the cent. Products are read and items written a
    thousand at a time, in one transaction: the batch has every item or does not exist.
    """
    if (new_price is None) == (percent is None):
        raise ValueError("give either new_price or percent")
    with transaction.atomic():
        batch = PriceBatch.objects.create(description=description, created_by_id=created_by_id)
        _items_insert(batch, _prices(products, new_price=new_price, percent=percent))
    logger.info("price batch %s created from %s products", batch.pk, batch.items.count())
    return batch


def price_batch_items_set(*, batch_id: int, prices: dict[int, Decimal]) -> int:
    """Give each product of ``prices`` (product id -> new price) an item in a batch not started; returns how many.

    A product that has an item already gets the new price. Raises PriceBatchStarted once the
    batch's job has started: the items it walks do not change under it.
    """
    with transaction.atomic():
        batch = PriceBatch.objects.select_for_update().get(pk=batch_id)
        if batch.job_batch_id is not None:
            raise PriceBatchStarted(f"price batch {batch_id} has started; its items are fixed")
        _items_insert(batch, iter(prices.items()))
    return len(prices)


def _prices(products: QuerySet[Product], *, new_price: Decimal | None, percent: Decimal | None) -> Iterator:
    factor = None if percent is None else (100 + percent) / 100
    too_high = []
    for product_id, sku, price in products.order_by("pk").values_list("pk", "sku", "price").iterator(2_000):
        price = new_price if factor is None else (price * factor).quantize(CENT, rounding=ROUND_HALF_UP)
        if price > PRICE_MAX:
            too_high.append(sku)
        yield product_id, price
    if too_high:
        raise PriceOutOfRange(too_high[:10])


def _items_insert(batch: PriceBatch, prices: Iterator[tuple[int, Decimal]]) -> None:
    # A product with an item already gets the new price (the unique key is the conflict).
    for chunk in chunked(prices, ITEMS_PER_INSERT):
        PriceBatchItem.objects.bulk_create(
            [PriceBatchItem(batch=batch, product_id=product_id, new_price=price) for product_id, price in chunk],
            update_conflicts=True,
            unique_fields=["batch", "product"],
            update_fields=["new_price"],
        )


def price_batch_queue(*, price_batch_ids: list[int]) -> int:
    """Queue the job of each of these price batches that has not started, after commit; returns how many."""
    pending = PriceBatch.objects.filter(pk__in=price_batch_ids, job_batch__isnull=True).values_list("pk", flat=True)
    pending = list(pending)
    with transaction.atomic():
        for price_batch_id in pending:
            enqueue_on_commit(PROCESS_PRICE_BATCH, price_batch_id)
    return len(pending)


def price_batch_start(*, price_batch_id: int, should_stop: Callable[[], bool] | None = None) -> PriceBatch:
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
        batch = PriceBatch.objects.select_for_update().get(pk=price_batch_id)
        if batch.job_batch_id is None:
            batch.job_batch = batch_open(description=f"Price batch #{batch.pk}: {batch.description}")
            batch.started_at = timezone.now()
            batch.save(update_fields=["job_batch", "started_at"])
    while True:
        if should_stop is not None and should_stop():
            return _price_batch_cancel(price_batch_id)
        with transaction.atomic():
            batch = (
                PriceBatch.objects.select_for_update(of=("self",)).select_related("job_batch").get(pk=price_batch_id)
            )
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


def price_batch_resume(*, price_batch_id: int) -> bool:
    """Queue a cancelled price batch's job again, to queue the items after its cursor; False if not cancelled."""
    with transaction.atomic():
        batch = PriceBatch.objects.select_for_update(of=("self",)).select_related("job_batch").get(pk=price_batch_id)
        job_batch = batch.job_batch
        if job_batch is None or job_batch.status != Batch.Status.CANCELLED or job_batch.finished_at is not None:
            return False  # not cancelled, or its waiting jobs were cancelled too: nothing to go on with
        Batch.objects.filter(pk=batch.job_batch_id).update(status=Batch.Status.RUNNING)
        enqueue_on_commit(PROCESS_PRICE_BATCH, batch.pk)
    logger.info("price batch %s resumed after item %s", price_batch_id, batch.cursor)
    return True


def _price_batch_cancel(price_batch_id: int) -> PriceBatch:
    with transaction.atomic():
        batch = PriceBatch.objects.select_for_update(of=("self",)).select_related("job_batch").get(pk=price_batch_id)
        if not batch.job_batch.sealed:
            Batch.objects.filter(pk=batch.job_batch_id).update(status=Batch.Status.CANCELLED)
            batch.job_batch.status = Batch.Status.CANCELLED
            logger.info("price batch %s cancelled with the items up to %s queued", price_batch_id, batch.cursor)
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
