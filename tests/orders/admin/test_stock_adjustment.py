"""Stock adjustments from the admin: each request is a row on the product's page, done or refused with the reason."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from orders.models import InventoryAudit, StockAdjustment
from tests.orders.factories import make_product
from tests.support.users import login_staff
from workers.models import DeadLetter

pytestmark = pytest.mark.django_db


def ask(client, product, change: int, django_capture_on_commit_callbacks):
    url = reverse("admin:orders_product_changelist")
    data = {
        "action": "adjust_stock",
        "_selected_action": [product.pk],
        "apply": "1",
        "quantity_change": change,
        "reason": "adjustment",
    }
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(url, data, follow=True).content.decode()


def test_two_staff_removing_more_than_there_is_each_see_their_outcome_on_the_product_page(
    jobs, perform_jobs, django_capture_on_commit_callbacks
):
    # Given a product with 13 in stock, and two clerks who both see enough for their removal
    product = make_product(sku="MUG-1", stock=13)
    anna, ben = Client(), Client()
    login_staff(anna, "view_product", "adjust_stock", username="anna")
    login_staff(ben, "view_product", "adjust_stock", username="ben")

    # When both remove 10 before either job ran
    said = [ask(clerk, product, -10, django_capture_on_commit_callbacks) for clerk in (anna, ben)]
    perform_jobs()

    # Then the first is done, the second refused with the reason, and no job became a dead letter
    assert all("stock adjustment(s) queued; each product" in page for page in said)
    first, second = StockAdjustment.objects.order_by("pk")
    assert (first.requested_by.username, first.status, first.outcome) == ("anna", "done", "Done: stock is now 3.")
    assert (second.requested_by.username, second.status) == ("ben", "refused")
    assert second.outcome == "Refused: MUG-1: stock 3 cannot change by -10 (it would be -7)"
    assert not DeadLetter.objects.exists()
    product.refresh_from_db()
    assert product.stock == 3 and InventoryAudit.objects.get().adjustment == first

    # And the product's page lists both requests with their outcome
    page = ben.get(reverse("admin:orders_product_change", args=[product.pk])).content.decode()
    assert "stock adjustments asked for" in page.lower()
    assert "Done: stock is now 3." in page and "Refused: MUG-1: stock 3 cannot change by -10" in page


def test_a_redelivered_adjustment_job_changes_stock_once(
    jobs, perform_jobs, django_capture_on_commit_callbacks, client
):
    from orders.tasks import adjust_stock

    login_staff(client, "view_product", "adjust_stock")
    product = make_product(stock=5)
    ask(client, product, 4, django_capture_on_commit_callbacks)
    adjustment = StockAdjustment.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        adjust_stock.enqueue(adjustment.pk)
    perform_jobs()

    product.refresh_from_db()
    assert product.stock == 9 and InventoryAudit.objects.count() == 1
