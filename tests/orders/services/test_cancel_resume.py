"""Long jobs asked to stop (imports, datasets, price batches) keep what they committed and resume from there."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.models import Dataset, Import, InventoryAudit, Order, PriceBatch, PriceBatchItem, Product
from orders.services.datasets import dataset_process_chunk, dataset_resume
from orders.services.imports import import_resume, import_run
from orders.services.price_batches import price_batch_resume, price_batch_start
from orders.tasks import import_data, process_item, process_large_dataset, process_price_batch
from tests.orders.factories import make_import, make_order, make_product, products_csv
from workers.models import Batch

pytestmark = pytest.mark.django_db


def stop_after(checks: int):
    """A ``should_stop`` that says True from its ``checks + 1``-th question on."""
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) > checks

    return should_stop


def test_an_import_asked_to_stop_keeps_its_chunks_and_resumes_after_them(jobs, django_capture_on_commit_callbacks):
    # Given a file of ten products, imported two rows a chunk
    product_import = make_import(products_csv(*(f"SKU-{n},Product {n},1.00,{n + 1}" for n in range(10))))

    # When it is asked to stop after its second chunk
    stopped = import_run(import_id=product_import.pk, chunk_rows=2, should_stop=stop_after(2))

    # Then it is cancelled with those four rows committed
    assert (stopped.status, stopped.processed_rows, stopped.created_count) == (Import.Status.CANCELLED, 4, 4)
    assert Product.objects.count() == 4

    # When it is resumed and its job runs
    with django_capture_on_commit_callbacks(execute=True):
        assert import_resume(import_id=product_import.pk)
    assert [job.args for job in jobs.enqueued(import_data)] == [(product_import.pk,)]
    done = import_run(import_id=product_import.pk, chunk_rows=2)

    # Then it finishes after the rows it had done, creating and auditing each product once
    assert (done.status, done.processed_rows, done.created_count, done.updated_count) == ("completed", 10, 10, 0)
    assert InventoryAudit.objects.count() == 10 == Product.objects.count()


def test_only_a_cancelled_or_never_started_import_is_resumed(jobs, django_capture_on_commit_callbacks):
    finished = make_import(products_csv("A,a,1,1"), status=Import.Status.COMPLETED)
    never_started = make_import(products_csv("B,b,1,1"))

    with django_capture_on_commit_callbacks(execute=True):
        assert not import_resume(import_id=finished.pk)
        assert import_resume(import_id=never_started.pk)

    assert [job.args for job in jobs.enqueued(import_data)] == [(never_started.pk,)]


@pytest.fixture
def orders() -> list[Order]:
    product = make_product(price=Decimal("2.00"))
    made = [make_order(items=[(product, 1)]) for _ in range(5)]
    Order.objects.update(total=Decimal("999.00"))
    return made


def test_a_dataset_asked_to_stop_commits_its_chunk_and_resumes_after_it(
    orders, jobs, django_capture_on_commit_callbacks
):
    dataset = Dataset.objects.create(description="Totals", chunk_size=2, status=Dataset.Status.RUNNING, total=5)

    # When its first chunk is asked to stop
    with django_capture_on_commit_callbacks(execute=True):
        stopped = dataset_process_chunk(dataset_id=dataset.pk, after_id=0, should_stop=lambda: True)

    # Then the chunk is committed, the dataset cancelled, and no next chunk queued
    assert (stopped.status, stopped.processed, stopped.cursor) == (Dataset.Status.CANCELLED, 2, orders[1].pk)
    assert list(Order.objects.filter(total=Decimal("2.00")).values_list("pk", flat=True)) == [o.pk for o in orders[:2]]
    assert jobs.enqueued(process_large_dataset) == []
    # And a late delivery of the next chunk does nothing
    assert dataset_process_chunk(dataset_id=dataset.pk, after_id=orders[1].pk).processed == 2

    # When it is resumed
    with django_capture_on_commit_callbacks(execute=True):
        assert dataset_resume(dataset_id=dataset.pk)

    # Then the chunk after its cursor is queued
    assert [job.kwargs for job in jobs.enqueued(process_large_dataset)] == [{"after_id": orders[1].pk}]
    assert Dataset.objects.get().status == Dataset.Status.RUNNING


def test_a_price_batch_asked_to_stop_keeps_the_jobs_it_queued_and_resumes_after_them(
    jobs, django_capture_on_commit_callbacks
):
    # Given a price batch of 2,500 items, queued 1,000 a chunk
    batch = PriceBatch.objects.create(description="Winter prices")
    products = Product.objects.bulk_create(
        Product(sku=f"P-{n:05d}", name=f"Product {n}", price=Decimal("10.00"), stock=1) for n in range(2500)
    )
    PriceBatchItem.objects.bulk_create(
        PriceBatchItem(batch=batch, product=product, new_price=Decimal("12.50")) for product in products
    )

    # When its start is asked to stop after its first chunk
    with django_capture_on_commit_callbacks(execute=True):
        stopped = price_batch_start(price_batch_id=batch.pk, should_stop=stop_after(1))

    # Then the first 1,000 items' jobs are queued, and the job batch is cancelled, not sealed
    first = [job.args[0] for job in jobs.enqueued(process_item)]
    assert len(first) == 1000 and stopped.cursor == max(first)
    job_batch = Batch.objects.get()
    assert (job_batch.status, job_batch.sealed, job_batch.total) == (Batch.Status.CANCELLED, False, 1000)
    # And a late delivery of its job queues nothing more
    with django_capture_on_commit_callbacks(execute=True):
        price_batch_start(price_batch_id=batch.pk)
    assert len(jobs.enqueued(process_item)) == 1000

    # When it is resumed and its job runs
    with django_capture_on_commit_callbacks(execute=True):
        assert price_batch_resume(price_batch_id=batch.pk)
    assert [job.args for job in jobs.enqueued(process_price_batch)] == [(batch.pk,)]
    with django_capture_on_commit_callbacks(execute=True):
        price_batch_start(price_batch_id=batch.pk)

    # Then every item is queued once, in the one job batch, now sealed
    queued = [job.args[0] for job in jobs.enqueued(process_item)]
    assert len(queued) == len(set(queued)) == 2500
    job_batch.refresh_from_db()
    assert (job_batch.status, job_batch.sealed, job_batch.total) == (Batch.Status.RUNNING, True, 2500)
