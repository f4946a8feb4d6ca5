"""Price batches and datasets from the admin: queued after commit, behind their permissions, with progress."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from orders.models import Dataset, PriceBatch, PriceBatchItem
from orders.tasks import process_large_dataset, process_price_batch
from tests.orders.factories import make_order, make_product
from tests.support.users import login_staff

pytestmark = pytest.mark.django_db


def staff(client, *codenames: str) -> User:
    return login_staff(client, "view_pricebatch", "view_dataset", *codenames)


def price_batch() -> PriceBatch:
    batch = PriceBatch.objects.create(description="Sale")
    PriceBatchItem.objects.create(batch=batch, product=make_product(), new_price=Decimal("5.00"))
    return batch


def process(client, batch: PriceBatch):
    url = reverse("admin:orders_pricebatch_changelist")
    return client.post(url, {"action": "process_batches", "_selected_action": [batch.pk]}, follow=True)


def test_processing_a_price_batch_queues_it_and_shows_its_progress(
    client, jobs, perform_jobs, django_capture_on_commit_callbacks
):
    staff(client, "process_pricebatch")
    batch = price_batch()

    with django_capture_on_commit_callbacks(execute=True):
        response = process(client, batch)
    assert "1 price batch(es) queued." in response.content.decode()
    jobs.assert_enqueued(process_price_batch, batch.pk, count=1)

    perform_jobs()
    page = client.get(reverse("admin:orders_pricebatch_changelist")).content.decode()
    assert '<progress value="100" max="100"' in page and "Succeeded" in page


def test_a_batch_that_has_run_takes_no_more_items(client, jobs, perform_jobs, django_capture_on_commit_callbacks):
    # Given a batch that was processed
    staff(client, "process_pricebatch", "change_pricebatch", "add_pricebatchitem", "change_pricebatchitem")
    batch = price_batch()
    with django_capture_on_commit_callbacks(execute=True):
        process(client, batch)
    perform_jobs()
    added = make_product(sku="BAG-4")

    # When staff try to add an item on its page
    url = reverse("admin:orders_pricebatch_change", args=[batch.pk])
    form = client.get(url).content.decode()
    client.post(
        url,
        {
            "description": "Sale",
            "items-TOTAL_FORMS": "1",
            "items-INITIAL_FORMS": "0",
            "items-0-product": added.pk,
            "items-0-new_price": "5.55",
        },
    )

    # Then the page offers no new item, and none was added
    assert 'name="items-0-new_price"' not in form
    assert batch.items.count() == 1 and not batch.items.filter(product=added).exists()


def test_without_the_permission_a_price_batch_cannot_be_processed(client, jobs):
    staff(client)
    batch = price_batch()

    response = process(client, batch)

    assert 'value="process_batches"' not in response.content.decode()
    jobs.assert_nothing_enqueued()


def test_adding_a_dataset_starts_its_first_chunk(client, jobs, django_capture_on_commit_callbacks):
    staff(client, "run_dataset", "add_dataset")
    make_order()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:orders_dataset_add"),
            {"description": "Totals", "operation": "recompute_totals", "chunk_size": 500},
            follow=True,
        )

    dataset = Dataset.objects.get()
    assert (dataset.status, dataset.total) == (Dataset.Status.RUNNING, 1)
    jobs.assert_enqueued(process_large_dataset, dataset.pk, after_id=0, count=1)


def test_without_the_permission_no_dataset_can_be_added(client, jobs):
    staff(client, "add_dataset")

    response = client.post(
        reverse("admin:orders_dataset_add"), {"description": "Totals", "operation": "recompute_totals"}
    )

    assert response.status_code == 403
    assert not Dataset.objects.exists()
    jobs.assert_nothing_enqueued()
