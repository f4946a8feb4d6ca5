"""Datasets: a sweep split into keyset chunks, one job each, none skipped or done twice."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from orders.models import DATASET_CHUNK_MAX, Dataset, Order
from orders.services.datasets import dataset_process_chunk, dataset_start
from orders.tasks import process_large_dataset
from tests.orders.factories import make_order, make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders_with_wrong_totals() -> list[Order]:
    product = make_product(price=Decimal("2.50"))
    orders = [make_order(items=[(product, n % 3 + 1)]) for n in range(25)]
    Order.objects.update(total=Decimal("999.00"))
    return orders


def test_the_sweep_runs_chunk_after_chunk_until_every_order_is_done(
    orders_with_wrong_totals, jobs, perform_jobs, django_capture_on_commit_callbacks
):
    dataset = Dataset.objects.create(description="Fix totals", chunk_size=10)

    with django_capture_on_commit_callbacks(execute=True):
        dataset_start(dataset_id=dataset.pk)
    ran = perform_jobs()

    dataset.refresh_from_db()
    assert ran == 3  # 10 + 10 + 5 orders
    assert (dataset.status, dataset.total, dataset.processed, dataset.progress) == ("completed", 25, 25, 1.0)
    assert dataset.cursor == orders_with_wrong_totals[-1].pk
    for order in Order.objects.all():
        item = order.items.get()
        assert order.total == item.quantity * Decimal("2.50")


def test_a_redelivered_chunk_does_nothing_and_queues_nothing(
    orders_with_wrong_totals, jobs, django_capture_on_commit_callbacks
):
    dataset = Dataset.objects.create(description="Fix totals", chunk_size=10, status=Dataset.Status.RUNNING, total=25)

    with django_capture_on_commit_callbacks(execute=True):
        dataset_process_chunk(dataset_id=dataset.pk, after_id=0)
    first = Dataset.objects.get(pk=dataset.pk)
    Order.objects.filter(pk__lte=first.cursor).update(total=Decimal("1.00"))  # would be undone by a second run
    with django_capture_on_commit_callbacks(execute=True):
        dataset_process_chunk(dataset_id=dataset.pk, after_id=0)

    dataset.refresh_from_db()
    assert (dataset.cursor, dataset.processed) == (first.cursor, 10)
    assert set(Order.objects.filter(pk__lte=first.cursor).values_list("total", flat=True)) == {Decimal("1.00")}
    jobs.assert_enqueued(process_large_dataset, dataset.pk, after_id=first.cursor, count=1)


def test_an_empty_table_completes_at_once(perform_jobs, django_capture_on_commit_callbacks):
    dataset = Dataset.objects.create(description="Nothing to do")

    with django_capture_on_commit_callbacks(execute=True):
        dataset_start(dataset_id=dataset.pk)
    perform_jobs()

    dataset.refresh_from_db()
    assert (dataset.status, dataset.processed, dataset.progress) == ("completed", 0, 1.0)


@pytest.mark.parametrize("chunk_size", [0, DATASET_CHUNK_MAX + 1])
def test_a_chunk_size_out_of_range_is_refused_by_the_form_and_the_database(chunk_size):
    # A chunk of 0 would queue empty continuations for ever
    with pytest.raises(ValidationError, match="chunk_size"):
        Dataset(description="Fix totals", chunk_size=chunk_size).full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        Dataset.objects.create(description="Fix totals", chunk_size=chunk_size)
