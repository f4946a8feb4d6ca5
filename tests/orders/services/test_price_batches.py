"""Price batches: one job per item, walked by keyset, applied once, followed as one job batch."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.models import PriceBatch, PriceBatchItem, Product
from orders.services.price_batches import price_batch_start, price_item_apply
from orders.tasks import process_item, process_price_batch
from tests.orders.factories import make_product
from workers.models import Batch
from workers.uniqueness import DuplicateJob

pytestmark = pytest.mark.django_db


def make_price_batch(count: int) -> PriceBatch:
    batch = PriceBatch.objects.create(description="Winter prices")
    products = Product.objects.bulk_create(
        Product(sku=f"P-{n:05d}", name=f"Product {n}", price=Decimal("10.00"), stock=1) for n in range(count)
    )
    PriceBatchItem.objects.bulk_create(
        PriceBatchItem(batch=batch, product=product, new_price=Decimal("12.50")) for product in products
    )
    return batch


def test_a_batch_of_2500_items_queues_2500_jobs_in_one_job_batch_and_applies_every_price(
    jobs, perform_jobs, django_capture_on_commit_callbacks
):
    batch = make_price_batch(2500)

    with django_capture_on_commit_callbacks(execute=True):
        price_batch_start(price_batch_id=batch.pk)

    batch.refresh_from_db()
    assert len(jobs.enqueued(process_item)) == 2500
    assert (batch.job_batch.total, batch.job_batch.pending) == (2500, 2500)
    assert batch.job_batch.progress == 0.0

    assert perform_jobs() == 2500
    job_batch = Batch.objects.get(pk=batch.job_batch_id)
    assert (job_batch.status, job_batch.succeeded, job_batch.failed, job_batch.progress) == (
        Batch.Status.SUCCEEDED,
        2500,
        0,
        1.0,
    )
    assert set(Product.objects.values_list("price", flat=True)) == {Decimal("12.50")}
    assert not PriceBatchItem.objects.filter(applied_at__isnull=True).exists()


def test_starting_twice_queues_the_items_once(jobs, django_capture_on_commit_callbacks):
    batch = make_price_batch(3)

    with django_capture_on_commit_callbacks(execute=True):
        price_batch_start(price_batch_id=batch.pk)
        price_batch_start(price_batch_id=batch.pk)

    assert len(jobs.enqueued(process_item)) == 3
    assert Batch.objects.count() == 1


def test_a_second_process_price_batch_while_one_is_queued_is_dropped(jobs):
    batch = make_price_batch(1)

    process_price_batch.send(batch.pk)
    with pytest.raises(DuplicateJob):
        process_price_batch.send(batch.pk)

    jobs.assert_enqueued(process_price_batch, batch.pk, count=1)


def test_a_job_queued_under_the_former_name_process_batch_still_applies_its_prices(jobs, perform_jobs):
    # Given a price batch whose job was queued before the actor took its present name
    batch = make_price_batch(2)
    jobs.broker.get_actor("process_batch").send(batch.pk)

    # When the jobs run
    perform_jobs()

    # Then every price is applied, through one job batch
    assert set(Product.objects.values_list("price", flat=True)) == {Decimal("12.50")}
    assert Batch.objects.get().status == Batch.Status.SUCCEEDED


def test_an_item_applied_twice_changes_the_price_once():
    product = make_product(price=Decimal("10.00"))
    batch = PriceBatch.objects.create(description="Once")
    item = PriceBatchItem.objects.create(batch=batch, product=product, new_price=Decimal("8.00"))

    price_item_apply(item_id=item.pk)
    Product.objects.filter(pk=product.pk).update(price=Decimal("9.00"))  # changed by hand since
    price_item_apply(item_id=item.pk)

    item.refresh_from_db()
    product.refresh_from_db()
    assert (item.old_price, item.new_price, product.price) == (Decimal("10.00"), Decimal("8.00"), Decimal("9.00"))
