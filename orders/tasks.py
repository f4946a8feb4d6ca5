"""Order actors: each loads its row by id, calls one service, and lets exceptions speak."""

from __future__ import annotations

from datetime import timedelta

import dramatiq
from django.conf import settings
from django_tasks import task
from dramatiq.middleware import CurrentMessage
from dramatiq_crontab import cron

from orders.errors import OutOfStock
from orders.gateway import CHARGES_PER_SECOND
from orders.models import Dataset, Import
from orders.services.datasets import dataset_process_chunk
from orders.services.import_files import import_files_prune
from orders.services.imports import import_fail, import_run
from orders.services.inventory import inventory_adjust, stock_adjustment_apply
from orders.services.orders import order_process
from orders.services.payments import payment_charge, payment_fail, payment_reverse
from orders.services.price_batches import price_batch_start, price_item_apply
from workers import queues
from workers.cancellation import JobCancelled, cancel_requested
from workers.models import Batch
from workers.tasks_backend import job_options


@dramatiq.actor(queue_name=queues.DEFAULT, max_retries=10)
def process_order(order_id: int) -> None:
    order_process(order_id=order_id)


@dramatiq.actor(queue_name=queues.DEFAULT, max_retries=10, discard=(OutOfStock,))
def update_inventory(product_id: int, quantity_change: int, reason: str) -> None:
    message = CurrentMessage.get_current_message()
    inventory_adjust(
        product_id=product_id,
        change=quantity_change,
        reason=reason,
        idempotency_key=f"update_inventory:{message.message_id}" if message else None,
    )


@task(queue_name=queues.DEFAULT)
@job_options(max_retries=10)
def adjust_stock(adjustment_id: int) -> str:
    """A stock change staff asked for, as a task (Django's tasks API): its result says how it ended."""
    adjustment = stock_adjustment_apply(adjustment_id=adjustment_id)
    return f"{adjustment.status}: {adjustment.outcome}" if adjustment.outcome else adjustment.status


@dramatiq.actor(actor_name="adjust_stock", queue_name=queues.DEFAULT, max_retries=10)
def adjust_stock_queued_as_actor(adjustment_id: int) -> None:
    """Jobs queued under the actor name ``adjust_stock`` before it became a task still run."""
    stock_adjustment_apply(adjustment_id=adjustment_id)


@dramatiq.actor(queue_name=queues.URGENT, max_retries=10)
def process_payment_exhausted(payment_id: int, error: str) -> None:
    payment_fail(payment_id=payment_id, error=error)


@dramatiq.actor(
    queue_name=queues.URGENT,
    max_retries=8,
    min_backoff=5_000,
    max_backoff=600_000,
    on_retries_exhausted=process_payment_exhausted,
    # Kept under the gateway's limit, which would answer "rate limited" and cost a retry.
    rate=("gateway", f"{CHARGES_PER_SECOND}/s"),
)
def process_payment(payment_id: int) -> None:
    payment_charge(payment_id=payment_id)


@dramatiq.actor(queue_name=queues.URGENT, max_retries=10, min_backoff=5_000, max_backoff=600_000)
def reverse_payment(payment_id: int) -> None:
    payment_reverse(payment_id=payment_id)


@dramatiq.actor(queue_name=queues.LOW, max_retries=10)
def import_data_exhausted(import_id: int, error: str) -> None:
    import_fail(import_id=import_id, message=f"Retries exhausted: {error}")


def _import_uploader(import_id: int) -> str:
    """Who uploaded the import (the flow limit's key); an import of no one's is limited only by itself."""
    user_id = Import.objects.filter(pk=import_id).values_list("created_by_id", flat=True).first()
    return f"user-{user_id}" if user_id else f"import-{import_id}"


@dramatiq.actor(
    queue_name=queues.LOW,
    max_retries=5,
    time_limit=3_600_000,
    on_retries_exhausted=import_data_exhausted,
    unique="until_executed",
    # One running import per uploading user: a second waits for the first, spending no retry.
    concurrency=(_import_uploader, 1),
)
def import_data(import_id: int) -> None:
    product_import = import_run(import_id=import_id, should_stop=cancel_requested)
    if product_import.status == Import.Status.CANCELLED:
        raise JobCancelled(f"import {import_id} stopped after {product_import.processed_rows} rows")


@cron("45 3 * * *")
@dramatiq.actor(queue_name=queues.LOW, max_retries=3)
def prune_import_files() -> None:
    import_files_prune(older_than=timedelta(days=settings.IMPORT_FILE_RETENTION_DAYS))


@dramatiq.actor(queue_name=queues.LOW, max_retries=5, unique="until_executed")
def process_price_batch(price_batch_id: int) -> None:
    batch = price_batch_start(price_batch_id=price_batch_id, should_stop=cancel_requested)
    if batch.job_batch.status == Batch.Status.CANCELLED:
        raise JobCancelled(f"price batch {price_batch_id} stopped with the items up to {batch.cursor} queued")


@dramatiq.actor(queue_name=queues.LOW, max_retries=5, unique="until_executed")
def process_batch(batch_id: int) -> None:
    """The former name of ``process_price_batch``, kept for the messages queued under it before the rename.

    Nothing sends it any more; it may go once no queue, retry or dead letter holds such a message.
    """
    process_price_batch(batch_id)


@dramatiq.actor(queue_name=queues.LOW, max_retries=5)
def process_item(item_id: int) -> None:
    price_item_apply(item_id=item_id)


@dramatiq.actor(queue_name=queues.LOW, max_retries=5)
def process_large_dataset(dataset_id: int, after_id: int = 0) -> None:
    dataset = dataset_process_chunk(dataset_id=dataset_id, after_id=after_id, should_stop=cancel_requested)
    if dataset.status == Dataset.Status.CANCELLED:
        raise JobCancelled(f"dataset {dataset_id} stopped after {dataset.processed} rows")
